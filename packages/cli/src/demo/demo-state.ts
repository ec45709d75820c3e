/**
 * What `opsplane demo` keeps in its data dir between runs:
 *
 * - `demo.lock` — `{pid, started_at, api_url?}` of the running demo. Created atomically; a live
 *   pid means "already running" (the second run says so and exits 1), a dead one is a stale lock
 *   that the next run takes over.
 * - `secrets.json` (0600) — the generated admin password, each area's agent secret and
 *   controller API token, so that a re-run finds the same credentials (the server database,
 *   the agents' tokens and the operator's memory all depend on them).
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, linkSync, readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { pidAlive, processesUsing, type ProcessInfo } from '@opsplane/fleet';

export const LOCK_FILE = 'demo.lock';
export const SECRETS_FILE = 'secrets.json';

export interface LockInfo {
  pid: number;
  started_at: string;
  api_url?: string;
  data_dir?: string;
}

export interface HeldLock {
  readonly path: string;
  /** Rewrites the lock's content (e.g. once the API URL is known). */
  update(extra: Partial<LockInfo>): void;
  /** Removes the lock if it is still ours. */
  release(): void;
}

export type LockResult = { ok: true; lock: HeldLock; tookOver?: LockInfo } | { ok: false; holder: LockInfo };

function readLock(path: string): LockInfo | undefined {
  try {
    const parsed = JSON.parse(readFileSync(path, 'utf8')) as Partial<LockInfo>;
    return typeof parsed.pid === 'number' ? (parsed as LockInfo) : { pid: 0, started_at: '' };
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    return { pid: 0, started_at: '' }; // unreadable / half-written: treat as stale
  }
}

/** The pid is alive and (where /proc says) still a node process — not a recycled pid. */
function holderAlive(info: LockInfo): boolean {
  if (!pidAlive(info.pid)) return false;
  try {
    const cmd = readFileSync(`/proc/${info.pid}/cmdline`, 'utf8');
    return /node|opsplane|demo/.test(cmd);
  } catch {
    return true;
  }
}

/** Reads the lock of `dataDir` without taking it: the live holder, or undefined. */
export function runningDemo(dataDir: string): LockInfo | undefined {
  const info = readLock(join(dataDir, LOCK_FILE));
  return info && holderAlive(info) ? info : undefined;
}

/**
 * Takes the lock of `dataDir` (which must exist). Atomic: the content is written to a temp file
 * that is then hard-linked into place, which fails if a lock exists.
 */
export function acquireLock(dataDir: string, info: Omit<LockInfo, 'pid' | 'started_at'> = {}): LockResult {
  const path = join(dataDir, LOCK_FILE);
  let content: LockInfo = { pid: process.pid, started_at: new Date().toISOString(), ...info };
  let tookOver: LockInfo | undefined;
  for (let attempt = 0; attempt < 5; attempt++) {
    const tmp = `${path}.${process.pid}.tmp`;
    writeFileSync(tmp, JSON.stringify(content, null, 2) + '\n');
    try {
      linkSync(tmp, path);
      unlinkSync(tmp);
      const lock: HeldLock = {
        path,
        update(extra) {
          content = { ...content, ...extra };
          if (readLock(path)?.pid !== process.pid) return;
          // temp + rename: the lock is in place at every moment, never half-written
          writeFileSync(tmp, JSON.stringify(content, null, 2) + '\n');
          renameSync(tmp, path);
        },
        release() {
          const cur = readLock(path);
          if (cur?.pid === process.pid) {
            try {
              unlinkSync(path);
            } catch {
              /* already gone */
            }
          }
        },
      };
      return { ok: true, lock, ...(tookOver ? { tookOver } : {}) };
    } catch (e) {
      unlinkSync(tmp);
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    const holder = readLock(path);
    if (holder === undefined) continue; // released meanwhile
    if (holderAlive(holder)) return { ok: false, holder };
    // Stale: remove it unless someone replaced it since we read it.
    const again = readLock(path);
    if (again && again.pid === holder.pid && again.started_at === holder.started_at) {
      try {
        unlinkSync(path);
      } catch {
        /* someone else took it over */
      }
      tookOver = holder;
    }
    content = { ...content, started_at: new Date().toISOString() };
  }
  throw new Error(`cannot take the lock ${path} (it keeps changing)`);
}

/**
 * Processes left over from a demo over `dataDir` that did not stop cleanly (it was killed hard):
 * node or etcd processes whose command line names a path in the data dir.
 */
export function leftoverProcesses(dataDir: string): ProcessInfo[] {
  const runtimes = new Set(['node', 'etcd', basename(process.execPath)]);
  return processesUsing(dataDir).filter((p) => runtimes.has(basename(p.argv[0] ?? '')) && !isDemoCli(p));
}

/**
 * Leftovers in the order a clean shutdown stops them: agents (which stop their packages and
 * keep the packages' desired state), controllers, server, etcd, then anything else (packages).
 */
export function shutdownOrder(procs: readonly ProcessInfo[]): ProcessInfo[][] {
  const role = (p: ProcessInfo): number => {
    const sub = p.argv.find((a) => ['agent', 'controller', 'server'].includes(a));
    if (sub === 'agent') return 0;
    if (sub === 'controller') return 1;
    if (sub === 'server') return 2;
    return basename(p.argv[0] ?? '') === 'etcd' ? 3 : 4;
  };
  const groups: ProcessInfo[][] = [[], [], [], [], []];
  for (const p of procs) groups[role(p)]?.push(p);
  return groups.filter((g) => g.length > 0);
}

/** `opsplane demo …` itself (e.g. a second run being refused) is not a leftover. */
export function isDemoCli(p: ProcessInfo): boolean {
  return p.argv.includes('demo') && p.argv.some((a) => /(main\.js|opsplane)$/.test(a));
}

// ------------------------------------------------------------------------------------ secrets

export interface AreaSecrets {
  agent_secret: string;
  controller_token: string;
}

export interface DemoSecrets {
  /** Only when generated by the demo (OPSPLANE_ADMIN_PASSWORD is never written down). */
  admin_password?: string;
  areas: Record<string, AreaSecrets>;
  /** Passwords of etcd's users (root, the server's, the controllers'), when etcd runs with authentication. */
  etcd?: { root: string; server: string; controller: string };
}

const random = (bytes: number) => randomBytes(bytes).toString('base64url');

/** A password that reads well in a banner: 4 groups of 5 from an unambiguous alphabet. */
export function generatePassword(): string {
  const alphabet = 'abcdefghijkmnpqrstuvwxyzACDEFGHJKLMNPQRSTUVWXYZ23456789';
  const bytes = randomBytes(20);
  let s = '';
  for (let i = 0; i < 20; i++) {
    s += alphabet[(bytes[i] as number) % alphabet.length];
    if (i % 5 === 4 && i < 19) s += '-';
  }
  return s;
}

/**
 * Loads `secrets.json`, adds whatever is missing (an area's secrets; the admin password unless
 * `adminFromEnv`), writes it back with mode 0600 when something changed.
 */
export function loadOrCreateSecrets(
  dataDir: string,
  areas: readonly string[],
  opts: { adminFromEnv: boolean },
): DemoSecrets {
  const path = join(dataDir, SECRETS_FILE);
  let s: DemoSecrets = { areas: {} };
  let changed = false;
  try {
    const parsed = JSON.parse(readFileSync(path, 'utf8')) as Partial<DemoSecrets>;
    s = { ...parsed, areas: { ...(parsed.areas ?? {}) } };
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw new Error(
        `${path} is not valid JSON (${(e as Error).message}); fix it or start over with --fresh`,
      );
    }
    changed = true;
  }
  for (const area of areas) {
    const a = s.areas[area];
    if (!a || typeof a.agent_secret !== 'string' || a.agent_secret.length < 16 || !a.controller_token) {
      s.areas[area] = { agent_secret: random(32), controller_token: random(32) };
      changed = true;
    }
  }
  if (!s.etcd?.root || !s.etcd.server || !s.etcd.controller) {
    s.etcd = { root: random(24), server: random(24), controller: random(24) };
    changed = true;
  }
  if (!opts.adminFromEnv && !s.admin_password) {
    s.admin_password = generatePassword();
    changed = true;
  }
  if (changed) {
    writeFileSync(path, JSON.stringify(s, null, 2) + '\n', { mode: 0o600 });
    chmodSync(path, 0o600);
  }
  return s;
}
