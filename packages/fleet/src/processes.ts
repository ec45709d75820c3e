/**
 * The one process spawner of the repository (the fleet's daemons, `opsplane demo`'s etcd and
 * server, and — through @opsplane/test-support's `spawnTracked` — every process a test starts).
 *
 * Each child runs in its own process group (detached), so a terminal's Ctrl-C reaches only the
 * parent, which then stops its children in the order it wants; stop() and kill() signal the
 * whole group, so helpers a child started go with it. Output is split into lines (handed to
 * `onLine`, e.g. the demo's prefixed log) and the last part kept for error messages.
 *
 * If the parent exits without stopping a child (a crash, or a test file that forgot), an exit
 * hook sends each live child's group its `exitSignal` (SIGKILL by default; the demo asks for
 * SIGTERM so that agents stop their packages themselves). A parent killed by a signal runs no
 * exit hook: see guard.ts for how a test fleet cleans up after that.
 *
 * Also here: small /proc helpers for cleaning up processes by pid (pidAlive, terminatePids,
 * processesUsing).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { sleep } from '@opsplane/kit';

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface SpawnProcessOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Run as this user/group (a root parent starting e.g. PostgreSQL, which refuses root). */
  uid?: number;
  gid?: number;
  /** Receives every line the child writes to stdout or stderr (without the newline). */
  onLine?: (line: string) => void;
  /** How much output output() keeps. Default 200 kB. */
  keepBytes?: number;
  /** Sent to the child's group if this process exits while the child runs. Default SIGKILL. */
  exitSignal?: 'SIGKILL' | 'SIGTERM';
}

export interface ManagedProcess {
  readonly name: string;
  readonly child: ChildProcess;
  /** -1 when it could not be started. */
  readonly pid: number;
  /** Resolves when the process has exited (or could not be started: code -1). */
  readonly exited: Promise<ExitInfo>;
  readonly running: boolean;
  /** Set once stop() or kill() was called: an exit after that is expected. */
  readonly stopping: boolean;
  /** Combined stdout+stderr so far (the last `keepBytes`). */
  output(): string;
  /** The last `lines` lines of its output (for error messages). Default 30. */
  tail(lines?: number): string;
  /** Resolves with the output when `pattern` appears in it; rejects if the process exits first. */
  waitForOutput(pattern: RegExp | string, timeoutMs?: number): Promise<string>;
  /**
   * SIGTERM to the group, SIGKILL after `graceMs` (default 5 s); once the leader is gone,
   * anything left in its group is killed too. Resolves once it is gone (see `exited` for how).
   */
  stop(graceMs?: number): Promise<void>;
  /** SIGKILL to the group; resolves once the leader is gone. */
  kill(): Promise<void>;
}

const live = new Set<ManagedProcess>();
const exitSignals = new Map<ManagedProcess, NodeJS.Signals>();
let exitHookInstalled = false;

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  if (pid <= 0) return;
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

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // Nothing can be awaited in an exit hook: signals only.
  process.once('exit', () => {
    for (const p of live) signalGroup(p.pid, exitSignals.get(p) ?? 'SIGKILL');
  });
}

/** Spawns `command` in its own process group and tracks it until it exits. */
export function spawnProcess(
  name: string,
  command: string,
  args: readonly string[],
  opts: SpawnProcessOptions = {},
): ManagedProcess {
  installExitHook();
  const keepBytes = opts.keepBytes ?? 200_000;
  const child = spawn(command, args, {
    ...(opts.cwd !== undefined ? { cwd: opts.cwd } : {}),
    ...(opts.uid !== undefined ? { uid: opts.uid } : {}),
    ...(opts.gid !== undefined ? { gid: opts.gid } : {}),
    env: opts.env ?? process.env,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  let buf = '';
  let stopping = false;
  let done = false;
  const waiters = new Set<() => void>();
  const keep = (s: string) => {
    buf = (buf + s).slice(-keepBytes);
    for (const w of waiters) w();
  };
  for (const stream of [child.stdout, child.stderr]) {
    if (!stream) continue;
    let partial = '';
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      keep(chunk);
      if (!opts.onLine) return;
      partial += chunk;
      let i: number;
      while ((i = partial.indexOf('\n')) >= 0) {
        opts.onLine(partial.slice(0, i));
        partial = partial.slice(i + 1);
      }
      // A runaway line without newline: flush it rather than grow without bound.
      if (partial.length > 64 * 1024) {
        opts.onLine(partial);
        partial = '';
      }
    });
    stream.on('end', () => {
      if (partial && opts.onLine) opts.onLine(partial);
      partial = '';
    });
  }
  const exited = new Promise<ExitInfo>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
    child.once('error', (err) => {
      keep(`cannot start ${command}: ${err.message}\n`);
      resolve({ code: -1, signal: null });
    });
  });
  const isRunning = () =>
    !done && child.pid !== undefined && child.exitCode === null && child.signalCode === null;
  const handle: ManagedProcess = {
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
    output: () => buf,
    tail(lines = 30) {
      return buf.replace(/\n$/, '').split('\n').slice(-lines).join('\n');
    },
    waitForOutput(pattern, timeoutMs = 15_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const m = typeof pattern === 'string' ? buf.includes(pattern) : pattern.test(buf);
          if (m) {
            finish();
            resolve(buf);
          } else if (!isRunning()) {
            finish();
            reject(new Error(`${name} exited before printing ${String(pattern)}:\n${buf.slice(-4000)}`));
          }
        };
        const timer = setTimeout(() => {
          finish();
          reject(new Error(`timed out waiting for ${String(pattern)} from ${name}:\n${buf.slice(-4000)}`));
        }, timeoutMs);
        const finish = () => {
          clearTimeout(timer);
          waiters.delete(check);
        };
        waiters.add(check);
        check();
      });
    },
    async stop(graceMs = 5000) {
      stopping = true;
      if (!isRunning()) return;
      signalGroup(handle.pid, 'SIGTERM');
      const t = setTimeout(() => signalGroup(handle.pid, 'SIGKILL'), graceMs);
      await exited;
      clearTimeout(t);
      // Anything left in the group (a helper the leader did not wait for) goes too.
      signalGroup(handle.pid, 'SIGKILL');
    },
    async kill() {
      stopping = true;
      if (isRunning()) signalGroup(handle.pid, 'SIGKILL');
      await exited;
    },
  };
  void exited.then(() => {
    done = true;
    live.delete(handle);
    exitSignals.delete(handle);
    for (const w of waiters) w();
  });
  if (child.pid !== undefined) {
    live.add(handle);
    exitSignals.set(handle, opts.exitSignal ?? 'SIGKILL');
  }
  return handle;
}

/**
 * The environment of an Opsplane child process: ours without any OPSPLANE_* or DATABASE_URL
 * (they would override its config file), plus `extra` (undefined values left out).
 */
export function cleanEnv(extra: Readonly<Record<string, string | undefined>>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (k.startsWith('OPSPLANE_') || k === 'DATABASE_URL') continue;
    env[k] = v;
  }
  for (const [k, v] of Object.entries(extra)) if (v !== undefined) env[k] = v;
  return env;
}

/** Every process spawned here that still runs. */
export function liveProcesses(): ManagedProcess[] {
  return [...live];
}

/** SIGKILL to the group of every process still running (last resort: a second Ctrl-C). */
export function killAllProcesses(): void {
  for (const p of live) signalGroup(p.pid, 'SIGKILL');
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
    return true; // no /proc: kill(0) said it exists
  }
}

/** SIGKILL to the group `pid` leads and to `pid` itself. */
export function killHard(pid: number): void {
  for (const target of [-pid, pid]) {
    try {
      process.kill(target, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
}

/** SIGTERM to each pid, SIGKILL to the survivors after `graceMs`; resolves with those still alive. */
export async function terminatePids(pids: readonly number[], graceMs = 3000): Promise<number[]> {
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      /* gone */
    }
  }
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline && pids.some(pidAlive)) await sleep(100);
  for (const pid of pids.filter(pidAlive)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
  await sleep(200);
  return pids.filter(pidAlive);
}

export interface ProcessInfo {
  pid: number;
  argv: string[];
  /** argv joined with spaces (for messages). */
  cmdline: string;
}

/**
 * Processes (other than this one) whose command line names `dir` or a path in it — e.g. the
 * processes of a demo over its data dir: etcd, server, controllers and agents take config or
 * data paths in it, and the sample packages run scripts from it. Linux (/proc); empty elsewhere.
 */
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
