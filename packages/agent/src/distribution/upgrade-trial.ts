/**
 * The agent self-upgrade's shared record between the running agent and its launcher, and the
 * `<root>` layout the deploy engine installs (`versions/<v>/agent.mjs`, `current` and `previous`
 * as relative symlinks into versions/). Node built-ins only: the launcher imports this and must
 * stay small and stable.
 *
 * The trial (data_dir/distribution/agent-upgrade.json): the old agent writes `trial` (from, to,
 * deadline) before it switches `current` and exits with UPGRADE_EXIT_CODE; the new agent marks
 * it `confirmed` once connected; the launcher marks it `rolled_back` (and switches back) when the
 * new one exits or misses the deadline first.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, readlink, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/** The agent exits with this after switching `current`: the launcher starts the new version at once. */
export const UPGRADE_EXIT_CODE = 75;
/** Set by the launcher on the agent it runs: the install root (`<root>/current/agent.mjs`). */
export const AGENT_ROOT_ENV = 'OPSPLANE_AGENT_ROOT';

export interface UpgradeTrial {
  from: string;
  to: string;
  /** ISO time by which `to` must confirm. */
  deadline: string;
  state: 'trial' | 'confirmed' | 'rolled_back';
  reason?: string;
}

export const trialPath = (dataDir: string): string => join(dataDir, 'distribution', 'agent-upgrade.json');

export async function readTrial(dataDir: string): Promise<UpgradeTrial | undefined> {
  try {
    const raw = JSON.parse(await readFile(trialPath(dataDir), 'utf8')) as Partial<UpgradeTrial>;
    if (typeof raw.from !== 'string' || typeof raw.to !== 'string' || typeof raw.deadline !== 'string')
      return undefined;
    if (raw.state !== 'trial' && raw.state !== 'confirmed' && raw.state !== 'rolled_back') return undefined;
    return raw as UpgradeTrial;
  } catch {
    return undefined;
  }
}

/** Replaced via temp + rename: the other process reads the old or the new record, never half. */
export async function writeTrial(dataDir: string, t: UpgradeTrial): Promise<void> {
  const file = trialPath(dataDir);
  await mkdir(join(dataDir, 'distribution'), { recursive: true });
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  await writeFile(tmp, JSON.stringify(t, null, 2) + '\n', { mode: 0o600 });
  await rename(tmp, file);
}

/** The version `<root>/<link>` points at ('' when absent). */
export async function linkedVersion(root: string, link: 'current' | 'previous'): Promise<string> {
  try {
    return (await readlink(join(root, link))).replace(/^.*versions\//, '').replace(/\/+$/, '');
  } catch {
    return '';
  }
}

/** Points `<root>/<link>` at `versions/<version>` (relative, as the deploy engine does), atomically. */
export async function switchLink(root: string, link: 'current' | 'previous', version: string): Promise<void> {
  const tmp = join(root, `.${link}.${randomBytes(4).toString('hex')}.new`);
  await symlink(`versions/${version}`, tmp);
  try {
    await rename(tmp, join(root, link));
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
}
