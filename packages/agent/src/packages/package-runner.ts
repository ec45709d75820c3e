/**
 * The life of one package: desired state (what the operator asked for), the current process,
 * crash handling per restart policy (exponential backoff, give up after max_retries fast
 * crashes), its health monitor, and the status the controller sees. Operations on one package
 * run strictly one after another through a SerialQueue.
 */
import { randomUUID } from 'node:crypto';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import type {
  HealthStatus,
  PackageOpResult,
  PackageRunState,
  PackageStatus,
  ServiceHealth,
} from '@opsplane/models';
import type { Logger } from '../log.js';
import { TOKEN_ENV } from '../config.js';
import type { ManifestError } from '../errors.js';
import { SpawnError } from '../errors.js';
import { HealthMonitor, type Verdict } from '../health/health-monitor.js';
import type { ProbeContext } from '../health/checks.js';
import { backoffDelay, formatDuration } from '@opsplane/kit';
import { SerialQueue } from '../util/serial-queue.js';
import { errorMessage, withTimeout } from '../util/timers.js';
import { findGroupLeaderByEnv } from '../proc/procfs.js';
import { loadManifest, type PackageManifest } from './manifest.js';
import { PackageLog } from './package-log.js';
import { PackageProcess, type ExitInfo } from './package-process.js';
import { opFail, opOk } from './results.js';
import type { PackageStateRecord } from './state-store.js';

export type DesiredState = 'running' | 'stopped';

/** Internal phase; `backoff` (waiting to restart after a crash) is reported as `starting`. */
type Phase = 'stopped' | 'starting' | 'running' | 'backoff' | 'stopping' | 'failed';

export interface RunnerOptions {
  name: string;
  dir: string;
  manifest?: PackageManifest;
  manifestError?: ManifestError;
  logsDir: string;
  logMaxBytes: number;
  logKeep: number;
  logger: Logger;
  /** Called whenever something worth persisting changed; resolves once it is on disk. */
  onPersist: () => Promise<void>;
}

/** What a config update may do while it holds the package's queue. */
export interface RunnerControl {
  readonly manifest: PackageManifest;
  isRunning(): boolean;
  /** Stops (if running) and starts the package; throws SpawnError when it cannot start. */
  restartNow(): Promise<void>;
  /** Waits for a health verdict on the current process (see HealthMonitor.waitForVerdict). */
  waitHealthy(budgetMs: number): Promise<Verdict>;
  healthBudgetMs(): number;
}

/** Environment variable carrying a package process's spawn id (see doSpawn). */
export const SPAWN_ID_ENV = 'OPSPLANE_SPAWN_ID';

/** The agent's own secrets never reach packages. */
function packageEnv(m: PackageManifest): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env[TOKEN_ENV];
  return {
    ...env,
    OPSPLANE_PACKAGE: m.name,
    OPSPLANE_PACKAGE_DIR: m.packageDir,
    OPSPLANE_CONFIG_DIR: m.configDir,
    ...m.env,
  };
}

export class PackageRunner {
  readonly name: string;
  readonly dir: string;
  private manifest: PackageManifest | undefined;
  private manifestError: string | undefined;
  private monitor: HealthMonitor | undefined;
  private readonly log: PackageLog;
  private readonly logger: Logger;
  private readonly onPersist: () => Promise<void>;
  /** The spawn id written to state.json before a spawn whose pid is not recorded yet. */
  private pendingSpawnId: string | undefined;
  private readonly queue = new SerialQueue();

  private proc: PackageProcess | undefined;
  private expectedExit: PackageProcess | undefined;
  private desired: DesiredState = 'stopped';
  private phase: Phase = 'stopped';
  private restarts = 0;
  private consecutiveCrashes = 0;
  private lastError: string | undefined;
  private restartTimer: NodeJS.Timeout | undefined;
  private resetTimer: NodeJS.Timeout | undefined;
  private closing = false;

  constructor(opts: RunnerOptions) {
    this.name = opts.name;
    this.dir = opts.dir;
    this.logger = opts.logger.child({ package: opts.name });
    this.onPersist = opts.onPersist;
    this.log = new PackageLog(join(opts.logsDir, `${opts.name}.log`), opts.logMaxBytes, opts.logKeep);
    if (opts.manifest) this.setManifest(opts.manifest);
    else {
      this.manifestError = opts.manifestError?.message ?? 'no manifest';
      this.phase = 'failed';
    }
  }

  // ---------------------------------------------------------------- queries

  get currentManifest(): PackageManifest | undefined {
    return this.manifest;
  }

  get desiredState(): DesiredState {
    return this.desired;
  }

  get logPath(): string {
    return this.log.path;
  }

  /** Copy-truncate the log when it is over its size cap. */
  rotateLog(): Promise<boolean> {
    return this.log.rotateIfNeeded();
  }

  /** Live process, if any: for metrics. */
  processInfo(): { pid: number; startedAt: number } | undefined {
    return this.proc?.alive ? { pid: this.proc.pid, startedAt: this.proc.startedAt } : undefined;
  }

  get restartCount(): number {
    return this.restarts;
  }

  private reportedState(): PackageRunState {
    if (!this.manifest) return 'failed';
    if (this.phase === 'backoff') return 'starting';
    if (this.phase === 'running' && this.proc && this.monitor && this.monitor.checkType !== 'process') {
      const young = Date.now() - this.proc.startedAt < this.manifest.healthCheck.startPeriodMs;
      if (young && !this.monitor.everPassed) return 'starting';
    }
    return this.phase;
  }

  /** Health as the controller sees it; `unknown` for a package the operator stopped. */
  healthStatus(): HealthStatus {
    if (!this.manifest || this.phase === 'failed') return 'unhealthy';
    if (this.proc?.alive && this.monitor) return this.monitor.healthStatus;
    if (this.desired === 'stopped') return 'unknown';
    return 'unhealthy'; // should run but does not (restart pending)
  }

  /**
   * Whether this package's health counts in the agent's overall status. A package the operator
   * stopped (or that finished cleanly and was not to be restarted) is not a problem, so it is
   * left out; failed packages and broken manifests count.
   */
  countsTowardOverall(): boolean {
    if (!this.manifest || this.phase === 'failed') return true;
    return !(this.desired === 'stopped' && !this.proc?.alive);
  }

  status(): PackageStatus {
    const proc = this.proc?.alive ? this.proc : undefined;
    const uptimeMs = proc ? Math.max(0, Date.now() - proc.startedAt) : 0;
    return {
      name: this.name,
      version: this.manifest?.version ?? '',
      is_running: proc !== undefined,
      duration: Math.round(uptimeMs * 1e6),
      status: this.reportedState(),
      ...(proc ? { pid: proc.pid } : {}),
      restarts: this.restarts,
      uptime_seconds: Math.round(uptimeMs / 10) / 100,
      health_status: this.healthStatus(),
      ...(this.manifestError !== undefined
        ? { last_error: `invalid manifest: ${this.manifestError}` }
        : this.lastError !== undefined
          ? { last_error: this.lastError }
          : {}),
    };
  }

  serviceHealth(): ServiceHealth {
    const now = new Date().toISOString();
    const checkType = this.manifest?.healthCheck.type;
    const base = { name: this.name, checked_at: now, ...(checkType ? { check_type: checkType } : {}) };
    if (!this.manifest)
      return { ...base, status: 'unhealthy', message: `invalid manifest: ${this.manifestError ?? ''}` };
    if (this.phase === 'failed') return { ...base, status: 'unhealthy', message: this.lastError ?? 'failed' };
    if (this.proc?.alive && this.monitor) return this.monitor.current();
    if (this.desired === 'stopped') return { ...base, status: 'unknown', message: 'stopped' };
    return { ...base, status: 'unhealthy', message: `not running: ${this.lastError ?? 'restart pending'}` };
  }

  /** For state.json: desired state plus the identity of the process we leave behind. */
  stateRecord(): PackageStateRecord {
    const p = this.proc?.alive ? this.proc : undefined;
    const spawnId = this.pendingSpawnId ?? p?.spawnId;
    return {
      desired: this.desired,
      ...(p && p.startTime !== undefined
        ? { pid: p.pid, start_time: p.startTime, started_at: new Date(p.startedAt).toISOString() }
        : {}),
      ...(spawnId !== undefined ? { spawn_id: spawnId } : {}),
    };
  }

  // ---------------------------------------------------------------- operations

  start(): Promise<PackageOpResult> {
    return this.queue.run(async () => {
      if (this.closing) return opFail(this.name, 'agent_unavailable', 'agent is shutting down');
      if (this.proc?.alive) {
        this.setDesired('running');
        const pid = this.proc.pid;
        return opOk(this.name, `already running (pid ${pid})`, { old_pid: pid, new_pid: pid });
      }
      const reload = await this.reloadManifest();
      if (reload) return reload;
      this.setDesired('running');
      this.consecutiveCrashes = 0;
      this.lastError = undefined;
      return this.spawnForOp('started');
    });
  }

  stop(): Promise<PackageOpResult> {
    return this.queue.run(async () => {
      if (this.closing) return opFail(this.name, 'agent_unavailable', 'agent is shutting down');
      this.setDesired('stopped');
      if (!this.proc?.alive) {
        const pending = this.phase === 'backoff';
        this.clearRestartTimer();
        if (this.manifest) this.phase = 'stopped';
        this.onPersist();
        return opOk(this.name, pending ? 'stopped (pending restart cancelled)' : 'already stopped');
      }
      const { info, pid, killed } = await this.doStop();
      return opOk(
        this.name,
        `stopped (pid ${pid}, ${info.description}${killed ? ', SIGKILL after stop_grace' : ''})`,
        { old_pid: pid },
      );
    });
  }

  restart(): Promise<PackageOpResult> {
    return this.queue.run(async () => {
      if (this.closing) return opFail(this.name, 'agent_unavailable', 'agent is shutting down');
      const reload = await this.reloadManifest();
      if (reload) return reload;
      this.setDesired('running');
      let prefix = 'started (was not running)';
      let oldPid: number | undefined;
      if (this.proc?.alive) {
        const { pid } = await this.doStop();
        this.restarts++;
        oldPid = pid;
        prefix = `restarted (old pid ${pid})`;
      }
      this.consecutiveCrashes = 0;
      this.lastError = undefined;
      return this.spawnForOp(prefix, oldPid);
    });
  }

  /** Runs `fn` with exclusive control of the package (no start/stop/restart meanwhile). */
  exclusive<T>(fn: (ctl: RunnerControl) => Promise<T>): Promise<T | PackageOpResult> {
    return this.queue.run(async () => {
      if (this.closing) return opFail(this.name, 'agent_unavailable', 'agent is shutting down');
      const manifest = this.manifest;
      if (!manifest) return opFail(this.name, 'invalid_manifest', this.manifestError ?? 'no manifest');
      const ctl: RunnerControl = {
        manifest,
        isRunning: () => this.proc?.alive === true || this.phase === 'backoff',
        restartNow: async () => {
          if (this.proc?.alive) {
            await this.doStop();
            this.restarts++;
          }
          this.consecutiveCrashes = 0;
          this.lastError = undefined;
          this.setDesired('running');
          await this.doSpawn();
        },
        waitHealthy: async (budgetMs) => {
          const proc = this.proc;
          if (!proc?.alive || !this.monitor) return { healthy: false, reason: 'process is not running' };
          return this.monitor.waitForVerdict(budgetMs, proc.exited);
        },
        healthBudgetMs: () => this.monitor?.verdictBudgetMs() ?? 10_000,
      };
      return fn(ctl);
    });
  }

  /**
   * At agent start: adopt the process a previous agent run left behind (same pid and /proc
   * start time), or start the package if it should run.
   */
  resume(record: PackageStateRecord | undefined): Promise<void> {
    return this.queue.run(async () => {
      if (!this.manifest) return;
      const adopted = record ? await this.findLeftBehind(record) : undefined;
      {
        if (adopted && record) {
          this.logger.info({ pid: adopted.pid }, 'adopted package process left by the previous agent run');
          this.attach(adopted);
          this.desired = record.desired;
          if (record.desired === 'stopped') await this.doStop(); // it was being stopped when the agent went down
          this.onPersist();
          return;
        }
      }
      this.desired = record?.desired ?? (this.manifest.autostart ? 'running' : 'stopped');
      if (this.desired === 'running') {
        try {
          await this.doSpawn();
        } catch (e) {
          this.markSpawnFailure(e);
        }
      }
      this.onPersist();
    });
  }

  /**
   * The process a previous agent run left running for this package: the recorded pid if it is
   * still that very process (same /proc start time), else the process started with the recorded
   * spawn id (spawned, then the agent died before it wrote the pid down).
   */
  private async findLeftBehind(record: PackageStateRecord): Promise<PackageProcess | undefined> {
    const startedAt = record.started_at ? Date.parse(record.started_at) : Date.now();
    if (record.pid !== undefined && record.start_time !== undefined) {
      const byPid = await PackageProcess.adopt(
        record.pid,
        record.start_time,
        Number.isFinite(startedAt) ? startedAt : Date.now(),
        record.spawn_id,
      );
      if (byPid) return byPid;
    }
    if (record.spawn_id === undefined) return undefined;
    const found = await findGroupLeaderByEnv(SPAWN_ID_ENV, record.spawn_id);
    if (!found) return undefined;
    this.logger.warn(
      { pid: found.pid, spawn_id: record.spawn_id },
      'found a package process started just before the previous agent run ended; adopting it',
    );
    return PackageProcess.adopt(found.pid, found.startTime, Date.now(), record.spawn_id);
  }

  /**
   * The agent is stopping. With `stopPackage` the process is stopped (desired state is kept, so
   * the next agent run starts it again); otherwise it is left running and detached, to be
   * adopted by the next run. Waits for an in-flight operation at most `waitMs`.
   */
  async shutdown(stopPackage: boolean, waitMs: number): Promise<void> {
    this.closing = true;
    this.clearRestartTimer();
    await withTimeout(this.queue.idle(), waitMs, undefined);
    clearTimeout(this.resetTimer);
    if (stopPackage && this.proc?.alive) {
      await this.doStop();
      return;
    }
    this.monitor?.end();
    this.proc?.detach();
  }

  // ---------------------------------------------------------------- internals

  private setManifest(m: PackageManifest): void {
    this.manifest = m;
    this.manifestError = undefined;
    const ctx: ProbeContext = {
      isRunning: () => this.proc?.alive === true,
      cwd: m.packageDir,
      env: packageEnv(m),
    };
    if (this.monitor) this.monitor.reconfigure(m.healthCheck, ctx);
    else this.monitor = new HealthMonitor(m.name, m.healthCheck, ctx, this.logger);
  }

  /**
   * Re-reads package.yaml before an explicit (re)start so that manifest edits (and fixes of a
   * broken one) take effect. Returns a failure result when it is broken, else undefined.
   */
  private async reloadManifest(): Promise<PackageOpResult | undefined> {
    try {
      this.setManifest(await loadManifest(this.dir));
      if (this.phase === 'failed' && !this.proc?.alive) this.phase = 'stopped';
      return undefined;
    } catch (e) {
      const msg = errorMessage(e);
      this.logger.error({ err: msg }, 'package manifest is invalid');
      if (!this.proc?.alive) {
        this.manifest = undefined;
        this.manifestError = msg;
        this.phase = 'failed';
      }
      return opFail(this.name, 'invalid_manifest', msg);
    }
  }

  private setDesired(d: DesiredState): void {
    if (this.desired !== d) {
      this.desired = d;
      this.onPersist();
    }
  }

  private clearRestartTimer(): void {
    clearTimeout(this.restartTimer);
    this.restartTimer = undefined;
    if (this.phase === 'backoff') this.phase = 'stopped';
  }

  private async spawnForOp(verb: string, oldPid?: number): Promise<PackageOpResult> {
    try {
      await this.doSpawn();
      return opOk(this.name, `${verb} (pid ${this.proc?.pid ?? '?'})`, {
        old_pid: oldPid,
        new_pid: this.proc?.pid,
      });
    } catch (e) {
      this.markSpawnFailure(e);
      return {
        ...opFail(this.name, 'start_failed', errorMessage(e)),
        ...(oldPid !== undefined ? { old_pid: oldPid } : {}),
      };
    }
  }

  private markSpawnFailure(e: unknown): void {
    this.phase = 'failed';
    this.lastError = errorMessage(e);
    this.logger.error({ err: this.lastError }, 'package failed to start');
    this.onPersist();
  }

  /** Starts the process; throws SpawnError. Caller holds the queue. */
  private async doSpawn(): Promise<void> {
    const m = this.manifest;
    if (!m) throw new SpawnError(`invalid manifest: ${this.manifestError ?? ''}`);
    // Once shutdown has detached everything, a late spawn would be an untracked orphan.
    if (this.closing) throw new SpawnError('agent is shutting down');
    this.clearRestartTimer();
    this.phase = 'starting';
    const cwd = await stat(m.workingDir).catch(() => undefined);
    if (!cwd?.isDirectory()) throw new SpawnError(`working_dir ${m.workingDir} does not exist`);
    // The spawn id is on disk before the process exists and travels in its environment, so a
    // crash between spawn and the pid write below leaves a process the next run finds and adopts.
    const spawnId = randomUUID();
    this.pendingSpawnId = spawnId;
    let proc: PackageProcess;
    try {
      await this.onPersist();
      proc = await PackageProcess.spawn({
        command: m.command,
        args: m.args,
        cwd: m.workingDir,
        env: { ...packageEnv(m), [SPAWN_ID_ENV]: spawnId },
        log: this.log,
        spawnId,
      });
    } finally {
      this.pendingSpawnId = undefined;
    }
    this.logger.info({ pid: proc.pid }, 'package started');
    this.attach(proc);
    await this.onPersist();
  }

  private attach(proc: PackageProcess): void {
    const m = this.manifest;
    this.proc = proc;
    this.phase = 'running';
    this.monitor?.begin(proc.startedAt);
    clearTimeout(this.resetTimer);
    if (m) {
      // A run that lasts reset_after is not a "fast" crash loop any more.
      this.resetTimer = setTimeout(() => {
        if (this.proc === proc) this.consecutiveCrashes = 0;
      }, m.restartPolicy.resetAfterMs);
      this.resetTimer.unref();
    }
    void proc.exited.then((info) => this.onExit(proc, info));
    // Spawned while shutdown was already detaching: hand it over to the next agent run too.
    if (this.closing) {
      this.monitor?.end();
      proc.detach();
    }
    this.onPersist();
  }

  /** Stops the current process. Caller holds the queue. */
  private async doStop(): Promise<{ info: ExitInfo; pid: number; killed: boolean }> {
    this.clearRestartTimer();
    const proc = this.proc;
    if (!proc)
      return { info: { code: null, signal: null, description: 'not running' }, pid: 0, killed: false };
    this.phase = 'stopping';
    this.expectedExit = proc;
    this.logger.info({ pid: proc.pid }, 'stopping package');
    const info = await proc.stop(this.manifest?.stopGraceMs ?? 10_000);
    if (this.proc === proc) this.detachProcess(proc);
    this.phase = 'stopped';
    this.onPersist();
    return { info, pid: proc.pid, killed: proc.killedAfterGrace };
  }

  private detachProcess(proc: PackageProcess): void {
    if (this.proc !== proc) return;
    this.proc = undefined;
    clearTimeout(this.resetTimer);
    this.monitor?.end();
  }

  private onExit(proc: PackageProcess, info: ExitInfo): void {
    if (this.proc !== proc) return;
    this.detachProcess(proc);
    void proc.killRemnants(); // helpers the leader left behind would clash with the next run
    if (this.expectedExit === proc || this.closing) return;
    this.handleCrash(info, proc.startedAt);
  }

  private handleCrash(info: ExitInfo, startedAt: number): void {
    const m = this.manifest;
    if (!m) return;
    const policy = m.restartPolicy;
    if (Date.now() - startedAt >= policy.resetAfterMs) this.consecutiveCrashes = 0;
    this.consecutiveCrashes++;
    const clean = info.code === 0;
    const restart = policy.policy === 'always' || (policy.policy === 'on-failure' && !clean);
    if (!restart) {
      // It ended on its own and the policy says leave it: a clean exit is a finished job.
      this.phase = clean ? 'stopped' : 'failed';
      this.lastError = clean ? undefined : info.description;
      if (clean) this.desired = 'stopped';
      this.logger.warn(
        { exit: info.description, policy: policy.policy },
        'package exited; not restarting per policy',
      );
      this.onPersist();
      return;
    }
    if (this.consecutiveCrashes >= policy.maxRetries) {
      this.phase = 'failed';
      this.lastError = `${info.description} (${this.consecutiveCrashes} crashes in a row)`;
      this.logger.error(
        { exit: info.description, crashes: this.consecutiveCrashes },
        'package keeps crashing; giving up until an explicit start',
      );
      this.onPersist();
      return;
    }
    this.lastError = info.description;
    this.phase = 'backoff';
    const wait = backoffDelay(this.consecutiveCrashes, policy.backoffInitialMs, policy.backoffMaxMs, 0.1);
    this.logger.warn(
      { exit: info.description, restartIn: formatDuration(wait), crashes: this.consecutiveCrashes },
      'package exited unexpectedly; restarting',
    );
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined;
      void this.queue.run(() => this.autoRestart());
    }, wait);
    this.onPersist();
  }

  private async autoRestart(): Promise<void> {
    if (this.closing || this.desired !== 'running' || this.proc?.alive || this.phase !== 'backoff') return;
    this.restarts++;
    try {
      await this.doSpawn();
    } catch (e) {
      this.handleCrash({ code: null, signal: null, description: errorMessage(e) }, Date.now());
    }
  }
}
