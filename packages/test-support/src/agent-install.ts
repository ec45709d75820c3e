/**
 * An agent-bundle install for self-upgrade tests: the layout the deploy engine leaves
 * (`<root>/versions/<v>/` unpacked with its `.complete` marker, `<root>/current` → that version,
 * `<root>/etc/agent.yaml`) and the launcher (`node <root>/current/agent.mjs --launch`) started on
 * it as a real process, its output kept for failure messages.
 */
import { spawn } from 'node:child_process';
import { mkdir, symlink, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { readTarGz } from '@opsplane/kit';

/** Unpacks an agent bundle (tar.gz, one top dir) as `<root>/versions/<version>`, `current` → it. */
export async function installAgentBundle(root: string, bytes: Buffer, version: string): Promise<void> {
  for (const e of readTarGz(bytes)) {
    const rel = e.path.split('/').slice(1).join('/');
    if (rel === '') continue;
    const p = join(root, 'versions', version, rel);
    if (e.type === 'dir') await mkdir(p, { recursive: true });
    else {
      await mkdir(dirname(p), { recursive: true });
      await writeFile(p, e.data ?? Buffer.alloc(0));
    }
  }
  await writeFile(join(root, 'versions', version, '.complete'), '');
  await symlink(`versions/${version}`, join(root, 'current'));
}

export interface LauncherAgent {
  /** Everything the launcher and the agents it ran wrote (stdout and stderr). */
  output(): string;
  /** SIGTERM, then SIGKILL after 10 s. */
  stop(): Promise<void>;
}

/** Writes `<root>/etc/agent.yaml` from `config` and starts the launcher on `<root>/current`. */
export async function startLauncherAgent(
  root: string,
  config: Record<string, unknown>,
): Promise<LauncherAgent> {
  await mkdir(join(root, 'etc'), { recursive: true });
  const configPath = join(root, 'etc', 'agent.yaml');
  // JSON is YAML: no YAML writer needed here.
  await writeFile(configPath, JSON.stringify(config, null, 2));
  let output = '';
  const child = spawn(
    process.execPath,
    [join(root, 'current', 'agent.mjs'), '--launch', '--root', root, '--config', configPath],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, OPSPLANE_LOG_LEVEL: 'info' } },
  );
  child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
  return {
    output: () => output,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000).unref())]);
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      }
      if (process.env.OPSPLANE_TEST_VERBOSE) process.stderr.write(output);
    },
  };
}
