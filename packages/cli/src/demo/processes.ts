/**
 * The demo's child processes. Each runs in its own process group (detached), so a terminal's
 * Ctrl-C reaches only the demo, which then stops them in order; stop() signals the whole group
 * (SIGTERM, SIGKILL after a grace period), so helpers a child started go with it. If the demo
 * itself exits without stopping them (a crash), an exit hook sends SIGTERM to every group.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import type { ChildLogs } from './child-logs.js';

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface DemoChild {
  readonly name: string;
  readonly child: ChildProcess;
  readonly pid: number;
  readonly exited: Promise<ExitInfo>;
  readonly running: boolean;
  /** Set once stop() or kill() was called: an exit after that is expected. */
  readonly stopping: boolean;
  /** The last lines of its output (for error messages). */
  tail(lines?: number): string;
  /** SIGTERM to the group, SIGKILL after `graceMs`; resolves once the leader is gone. */
  stop(graceMs: number): Promise<ExitInfo>;
  /** SIGKILL to the group. */
  kill(): Promise<ExitInfo>;
}

const live = new Set<DemoChild>();
let exitHookInstalled = false;

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    try {
      process.kill(pid, signal);
    } catch {
      /* gone */
    }
  }
}

/**
 * If the demo exits with children still running (it crashed), they get SIGTERM: nothing can be
 * awaited in an exit hook, but a graceful stop lets the agents stop their packages themselves.
 */
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const c of live) signalGroup(c.pid, 'SIGTERM');
  });
}

export interface SpawnChildOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  logs: ChildLogs;
}

export function spawnChild(
  name: string,
  command: string,
  args: readonly string[],
  opts: SpawnChildOptions,
): DemoChild {
  installExitHook();
  const child = spawn(command, args, {
    cwd: opts.cwd,
    env: opts.env ?? process.env,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  const kept: string[] = [];
  const keep = (l: string) => {
    kept.push(l);
    if (kept.length > 400) kept.splice(0, kept.length - 400);
  };
  opts.logs.attach(name, child.stdout, keep);
  opts.logs.attach(name, child.stderr, keep);
  let stopping = false;
  const exited = new Promise<ExitInfo>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
    child.once('error', (err) => {
      keep(`cannot start ${command}: ${err.message}`);
      resolve({ code: -1, signal: null });
    });
  });
  const isRunning = () => child.pid !== undefined && child.exitCode === null && child.signalCode === null;
  const handle: DemoChild = {
    name,
    child,
    pid: child.pid ?? -1,
    exited,
    get running() {
      return isRunning();
    },
    get stopping() {
      return stopping;
    },
    tail(lines = 30) {
      return kept.slice(-lines).join('\n');
    },
    async stop(graceMs) {
      stopping = true;
      if (isRunning()) {
        signalGroup(handle.pid, 'SIGTERM');
        const t = setTimeout(() => signalGroup(handle.pid, 'SIGKILL'), graceMs);
        const info = await exited;
        clearTimeout(t);
        // Anything left in the group (a helper the leader did not wait for) goes too.
        signalGroup(handle.pid, 'SIGKILL');
        return info;
      }
      return exited;
    },
    async kill() {
      stopping = true;
      if (isRunning()) signalGroup(handle.pid, 'SIGKILL');
      return exited;
    },
  };
  void exited.then(() => live.delete(handle));
  if (child.pid !== undefined) live.add(handle);
  return handle;
}

/** SIGKILL to every child still running (last resort: a second Ctrl-C). */
export function killAllChildren(): void {
  for (const c of live) signalGroup(c.pid, 'SIGKILL');
}

/**
 * Pids of processes (other than this one) whose command line mentions `dir` — the processes of
 * a demo run over that data dir: etcd, server, controllers and agents take config or data paths
 * in it, and the sample packages run scripts from it. Linux (/proc); empty elsewhere.
 */
export interface ProcessInfo {
  pid: number;
  argv: string[];
  /** argv joined with spaces (for messages). */
  cmdline: string;
}

export function processesUsing(dir: string): ProcessInfo[] {
  const needle = dir.endsWith('/') ? dir : `${dir}/`;
  const out: ProcessInfo[] = [];
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return out;
  }
  for (const e of entries) {
    if (!/^\d+$/.test(e)) continue;
    const pid = Number(e);
    if (pid === process.pid) continue;
    try {
      const argv = readFileSync(`/proc/${e}/cmdline`, 'utf8').split('\0').filter(Boolean);
      if (argv.some((a) => a === dir || a.includes(needle))) out.push({ pid, argv, cmdline: argv.join(' ') });
    } catch {
      /* gone, or not readable */
    }
  }
  return out;
}

/** True while `pid` exists and is not a zombie. */
export function pidAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return true;
  }
}

/** SIGTERM to each pid, SIGKILL to the survivors after `graceMs`; resolves when all are gone (or given up). */
export async function terminatePids(pids: readonly number[], graceMs = 3000): Promise<number[]> {
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      /* gone */
    }
  }
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline && pids.some(pidAlive)) await new Promise((r) => setTimeout(r, 100));
  const survivors = pids.filter(pidAlive);
  for (const pid of survivors) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
  await new Promise((r) => setTimeout(r, 200));
  return pids.filter(pidAlive);
}
