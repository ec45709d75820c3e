/**
 * Child processes started by tests: tracked so that every one is killed when the test ends
 * (or when the test process exits), with their output kept for failure messages.
 */
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';

export interface TrackedProcess {
  readonly child: ChildProcess;
  readonly name: string;
  /** Combined stdout+stderr so far (last 200 kB). */
  output(): string;
  /** Resolves when the process has exited. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves once it is gone. */
  stop(graceMs?: number): Promise<void>;
  /** SIGKILL, resolves once it is gone. */
  kill(): Promise<void>;
  /** Resolves when `pattern` appears in the output. */
  waitForOutput(pattern: RegExp | string, timeoutMs?: number): Promise<string>;
}

const live = new Set<TrackedProcess>();

process.once('exit', () => {
  for (const p of live) {
    try {
      if (p.child.pid) process.kill(-p.child.pid, 'SIGKILL');
    } catch {
      try {
        p.child.kill('SIGKILL');
      } catch {
        /* already gone */
      }
    }
  }
});

/**
 * Spawns a process in its own process group (so its children die with it) and tracks it.
 * Set OPSPLANE_TEST_VERBOSE=1 to mirror its output on stderr.
 */
export function spawnTracked(
  name: string,
  command: string,
  args: readonly string[],
  options: SpawnOptions = {},
): TrackedProcess {
  const child = spawn(command, args, { ...options, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let buf = '';
  const waiters = new Set<() => void>();
  const onData = (d: Buffer) => {
    const s = d.toString();
    buf = (buf + s).slice(-200_000);
    if (process.env.OPSPLANE_TEST_VERBOSE) process.stderr.write(`[${name}] ${s}`);
    for (const w of waiters) w();
  };
  child.stdout?.on('data', onData);
  child.stderr?.on('data', onData);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => {
      live.delete(tracked);
      for (const w of waiters) w();
      resolve({ code, signal });
    });
    child.once('error', () => {
      live.delete(tracked);
      resolve({ code: -1, signal: null });
    });
  });
  const isRunning = () => child.exitCode === null && child.signalCode === null;
  const signalGroup = (sig: NodeJS.Signals) => {
    try {
      if (child.pid) process.kill(-child.pid, sig);
    } catch {
      try {
        child.kill(sig);
      } catch {
        /* gone */
      }
    }
  };
  const tracked: TrackedProcess = {
    child,
    name,
    output: () => buf,
    exited,
    async stop(graceMs = 5000) {
      if (!isRunning()) return;
      signalGroup('SIGTERM');
      const t = setTimeout(() => signalGroup('SIGKILL'), graceMs);
      await exited;
      clearTimeout(t);
    },
    async kill() {
      if (!isRunning()) return;
      signalGroup('SIGKILL');
      await exited;
    },
    waitForOutput(pattern, timeoutMs = 15_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const m = typeof pattern === 'string' ? buf.includes(pattern) : pattern.test(buf);
          if (m) {
            done();
            resolve(buf);
          } else if (!isRunning()) {
            done();
            reject(new Error(`${name} exited before printing ${String(pattern)}:\n${buf.slice(-4000)}`));
          }
        };
        const timer = setTimeout(() => {
          done();
          reject(new Error(`timed out waiting for ${String(pattern)} from ${name}:\n${buf.slice(-4000)}`));
        }, timeoutMs);
        const done = () => {
          clearTimeout(timer);
          waiters.delete(check);
        };
        waiters.add(check);
        check();
      });
    },
  };
  live.add(tracked);
  return tracked;
}

/** Stops every process still tracked (for after() hooks). */
export async function stopAll(): Promise<void> {
  await Promise.all([...live].map((p) => p.stop(2000)));
}
