/**
 * Where `opsplane login` keeps what later commands authenticate with:
 * `~/.config/opsplane/credentials.json` (or `$OPSPLANE_CONFIG_DIR/credentials.json`, or under
 * `$XDG_CONFIG_HOME/opsplane`), written with mode 0600 in a 0700 directory. It holds the server
 * URL and an API token (or, for viewers, who may not create tokens, the session cookie).
 */
import { chmod, mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';

export interface StoredCredentials {
  server: string;
  username: string;
  role?: string;
  /** API token (opsp_…), preferred. */
  token?: string;
  token_id?: string;
  /** Session cookie value, when no token could be created. */
  session?: string;
  expires_at?: string | null;
  created_at: string;
  /** The CA bundle the server's certificate is checked against (`login --ca`). */
  ca_file?: string;
}

export function configDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.OPSPLANE_CONFIG_DIR) return env.OPSPLANE_CONFIG_DIR;
  const base = env.XDG_CONFIG_HOME || join(homedir(), '.config');
  return join(base, 'opsplane');
}

export function credentialsPath(env: NodeJS.ProcessEnv = process.env): string {
  return join(configDir(env), 'credentials.json');
}

export async function readCredentials(
  env: NodeJS.ProcessEnv = process.env,
): Promise<StoredCredentials | undefined> {
  let text: string;
  try {
    text = await readFile(credentialsPath(env), 'utf8');
  } catch {
    return undefined;
  }
  try {
    const c = JSON.parse(text) as StoredCredentials;
    return typeof c.server === 'string' ? c : undefined;
  } catch {
    return undefined;
  }
}

export async function writeCredentials(
  c: StoredCredentials,
  env: NodeJS.ProcessEnv = process.env,
): Promise<string> {
  const dir = configDir(env);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const path = credentialsPath(env);
  const tmp = `${path}.${process.pid}.tmp`;
  // Created 0600 from the start (never briefly world-readable), then moved into place.
  await writeFile(tmp, JSON.stringify(c, null, 2) + '\n', { mode: 0o600 });
  await chmod(tmp, 0o600);
  await rename(tmp, path);
  return path;
}

export async function removeCredentials(env: NodeJS.ProcessEnv = process.env): Promise<void> {
  await rm(credentialsPath(env), { force: true });
}
