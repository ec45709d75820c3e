/**
 * One running instance of a package: either a child we spawned (own process group, no shell)
 * or a process adopted from a previous agent run (not our child, so its end is detected by
 * polling /proc). Either way it is stopped through its process group: SIGTERM, then SIGKILL
 * after the grace period.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { SpawnError } from '../errors.js';
import { isSameProcess, pidAlive, processStartTime, readProcStat, signalGroup } from '../proc/procfs.js';
import { sleep } from '@opsplane/kit';
import { withTimeout } from '../util/timers.js';
import { PackageLog } from './package-log.js';

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** "exited with code 3", "killed by signal SIGKILL", … */
  description: string;
}

export interface SpawnSpec {
  command: string;
  args: string[];
  cwd: string;
  env: NodeJS.ProcessEnv;
  log: PackageLog;
  /** The id this spawn was recorded under (state.json) before it happened. */
  spawnId?: string;
}

const ADOPTED_POLL_MS = 250;

export function describeExit(code: number | null, signal: NodeJS.Signals | null): string {
  if (signal) return `killed by signal ${signal}`;
  if (code !== null) return `exited with code ${code}`;
  return 'exited (status unknown)';
}

export class PackageProcess {
  readonly exited: Promise<ExitInfo>;
  private resolveExit!: (info: ExitInfo) => void;
  private exitInfo: ExitInfo | undefined;
  private pollTimer: NodeJS.Timeout | undefined;
  /** Set when the group got SIGKILL because the grace period ran out. */
  killedAfterGrace = false;

  private constructor(
    readonly pid: number,
    /** /proc start time (clock ticks since boot); undefined without /proc. */
    readonly startTime: string | undefined,
    /** Epoch ms when it started (as far as we know). */
    readonly startedAt: number,
    readonly adopted: boolean,
    private readonly child: ChildProcess | undefined,
    readonly spawnId?: string,
  ) {
    this.exited = new Promise((r) => {
      this.resolveExit = r;
    });
  }

  get alive(): boolean {
    return this.exitInfo === undefined;
  }

  /** Spawns without a shell in a new process group; resolves once the OS has started it. */
  static async spawn(spec: SpawnSpec): Promise<PackageProcess> {
    const fd = await spec.log.openForChild(`starting ${spec.command} ${JSON.stringify(spec.args)}`);
    let child: ChildProcess;
    try {
      child = spawn(spec.command, spec.args, {
        cwd: spec.cwd,
        env: spec.env,
        detached: true, // own process group: we signal the whole tree, and it outlives the agent
        stdio: ['ignore', fd, fd],
        shell: false,
      });
    } catch (e) {
      PackageLog.closeFd(fd);
      throw new SpawnError(
        `failed to start ${spec.command}: ${e instanceof Error ? e.message : String(e)}`,
        e,
      );
    }
    PackageLog.closeFd(fd); // the child has its own copy
    // A later 'error' (e.g. a failed kill) must never become an uncaught exception.
    child.on('error', () => undefined);
    const pid = await new Promise<number>((resolve, reject) => {
      child.once('spawn', () => resolve(child.pid ?? -1));
      child.once('error', (e: NodeJS.ErrnoException) =>
        reject(new SpawnError(`failed to start ${spec.command}: ${e.code ?? e.message}`, e)),
      );
    });
    const startTime = await processStartTime(pid);
    const proc = new PackageProcess(pid, startTime, Date.now(), false, child, spec.spawnId);
    child.once('exit', (code, signal) => proc.markExited(code, signal));
    return proc;
  }

  /**
   * Adopts a process recorded by an earlier agent run, if `pid` is still that very process
   * (same /proc start time). Returns undefined otherwise.
   */
  static async adopt(
    pid: number,
    startTime: string,
    startedAt: number,
    spawnId?: string,
  ): Promise<PackageProcess | undefined> {
    if (!(await isSameProcess(pid, startTime))) return undefined;
    const proc = new PackageProcess(pid, startTime, startedAt, true, undefined, spawnId);
    proc.schedulePoll();
    return proc;
  }

  private schedulePoll(): void {
    this.pollTimer = setTimeout(() => {
      void (async () => {
        if (!this.alive) return;
        const same =
          this.startTime !== undefined ? await isSameProcess(this.pid, this.startTime) : pidAlive(this.pid);
        if (!same) this.markExited(null, null, 'exited (adopted process; exit status unknown)');
        else if (this.pollTimer !== undefined) this.schedulePoll();
      })();
    }, ADOPTED_POLL_MS);
  }

  private markExited(code: number | null, signal: NodeJS.Signals | null, description?: string): void {
    if (this.exitInfo) return;
    clearTimeout(this.pollTimer);
    this.pollTimer = undefined;
    this.exitInfo = { code, signal, description: description ?? describeExit(code, signal) };
    this.resolveExit(this.exitInfo);
  }

  /** Signals the whole process group (falls back to the leader alone). */
  signal(sig: NodeJS.Signals): void {
    if (!signalGroup(this.pid, sig)) {
      try {
        process.kill(this.pid, sig);
      } catch {
        // gone already
      }
    }
  }

  /**
   * Kills whatever is left of the group once the leader is gone (orphaned helpers). Linux never
   * hands out a pid equal to a live process group's id, so the group is still ours — unless the
   * pid now belongs to a new process (our group was empty and the pid got reused): then skip.
   */
  async killRemnants(): Promise<void> {
    const st = await readProcStat(this.pid);
    if (st && st.state !== 'Z' && st.startTime !== this.startTime) return;
    signalGroup(this.pid, 'SIGKILL');
  }

  /** SIGTERM to the group; SIGKILL after `graceMs`; resolves when the leader has exited. */
  async stop(graceMs: number): Promise<ExitInfo> {
    if (this.exitInfo) return this.exitInfo;
    this.signal('SIGTERM');
    const first = await withTimeout(this.exited, graceMs, undefined);
    if (first) {
      await this.killRemnants();
      return first;
    }
    this.killedAfterGrace = true;
    this.signal('SIGKILL');
    const second = await withTimeout(this.exited, 10_000, undefined);
    if (second) return second;
    // Unkillable (D state) or not ours to signal: report it rather than hang forever.
    await sleep(0);
    return { code: null, signal: null, description: 'did not exit after SIGKILL' };
  }

  /**
   * The agent is going away but the process stays: stop watching it and let the agent's event
   * loop end. It will be adopted by the next agent run.
   */
  detach(): void {
    clearTimeout(this.pollTimer);
    this.pollTimer = undefined;
    this.child?.removeAllListeners('exit');
    this.child?.unref();
  }
}
