/**
 * All packages of this agent: discovers them from packages_dir, resumes them from state.json
 * (adopting processes a previous run left behind), performs start/stop/restart on named
 * packages, and persists desired state. Packages are independent: a broken manifest or a
 * crashing package affects only itself.
 */
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import {
  overallHealth,
  type AgentHealth,
  type BatchAction,
  type PackageOpResult,
  type PackageStatus,
  type ServiceHealth,
} from '@opsplane/models';
import { createLogger, type Logger } from '../log.js';
import { loadManifest, scanPackages } from './manifest.js';
import { ManifestError } from '../errors.js';
import { realpathOrUndefined } from '../util/paths.js';
import { MANIFEST_FILE, type PackageManifest } from './manifest.js';
import { PackageRunner } from './package-runner.js';
import { opFail } from './results.js';
import { StateStore, type PackageStateRecord } from './state-store.js';

export interface SupervisorOptions {
  packagesDir: string;
  dataDir: string;
  logger?: Logger;
  logMaxBytes?: number;
  logKeep?: number;
}

const LOG_ROTATE_CHECK_MS = 30_000;

export class Supervisor {
  private readonly runners = new Map<string, PackageRunner>();
  private readonly logger: Logger;
  private readonly store: StateStore;
  /** Records of packages we have no runner for (manifest gone or broken): kept, not lost. */
  private foreignRecords: Record<string, PackageStateRecord> = {};
  private rotateTimer: NodeJS.Timeout | undefined;
  private started = false;
  private closed = false;

  private constructor(
    readonly opts: Required<Omit<SupervisorOptions, 'logger'>>,
    logger: Logger,
  ) {
    this.logger = logger;
    this.store = new StateStore(join(opts.dataDir, 'state.json'), () => this.snapshot(), logger);
  }

  /** Scans packages_dir and builds the runners; nothing runs until start(). */
  static async create(opts: SupervisorOptions): Promise<Supervisor> {
    const logger = opts.logger ?? createLogger('supervisor');
    const sup = new Supervisor(
      {
        packagesDir: opts.packagesDir,
        dataDir: opts.dataDir,
        logMaxBytes: opts.logMaxBytes ?? 10 * 1024 * 1024,
        logKeep: opts.logKeep ?? 2,
      },
      logger,
    );
    if (!(await stat(opts.packagesDir).catch(() => undefined))?.isDirectory()) {
      logger.warn(
        { packages_dir: opts.packagesDir },
        'packages_dir does not exist; no packages to supervise',
      );
    }
    const entries = await scanPackages(opts.packagesDir, (dir, why) =>
      logger.warn({ dir }, `skipping package dir: ${why}`),
    );
    for (const e of entries) {
      if (e.error) logger.error({ package: e.name, err: e.error.message }, 'invalid package manifest');
      sup.runners.set(e.name, sup.newRunner(e.name, e.dir, e.manifest, e.error));
    }
    return sup;
  }

  private newRunner(
    name: string,
    dir: string,
    manifest: PackageManifest | undefined,
    error: ManifestError | undefined,
  ): PackageRunner {
    return new PackageRunner({
      name,
      dir,
      ...(manifest ? { manifest } : {}),
      ...(error ? { manifestError: error } : {}),
      logsDir: join(this.opts.dataDir, 'logs'),
      logMaxBytes: this.opts.logMaxBytes,
      logKeep: this.opts.logKeep,
      logger: this.logger,
      onPersist: () => this.persist(),
    });
  }

  /**
   * Re-reads one package from packages_dir after its directory was switched (distribution
   * installs a version by re-pointing `packages_dir/<name>`): the old process is stopped first,
   * then a fresh runner is built from the manifest now there. Nothing is started; returns the
   * new runner (its manifest may be broken — see status()), or undefined when the package is gone.
   */
  async reloadPackage(name: string): Promise<PackageRunner | undefined> {
    await this.retire(name);
    const dir = join(this.opts.packagesDir, name);
    if (!(await stat(join(dir, MANIFEST_FILE)).catch(() => undefined))) {
      await this.persist();
      return undefined;
    }
    let manifest: PackageManifest | undefined;
    let error: ManifestError | undefined;
    try {
      manifest = await loadManifest(dir);
    } catch (e) {
      error = e instanceof ManifestError ? e : new ManifestError(dir, String(e), e);
    }
    const runner = this.newRunner(name, dir, manifest, error);
    delete this.foreignRecords[name];
    this.runners.set(name, runner);
    await this.persist();
    return runner;
  }

  /** reloadPackage, unless the running runner already serves what the link points at now. */
  async reloadPackageIfChanged(name: string): Promise<PackageRunner | undefined> {
    const r = this.runners.get(name);
    const now = await realpathOrUndefined(join(this.opts.packagesDir, name));
    if (r?.currentManifest && now !== undefined && r.currentManifest.packageDir === now) return r;
    return this.reloadPackage(name);
  }

  /** Stops a package and forgets it (its directory was removed from packages_dir). */
  async removePackage(name: string): Promise<void> {
    await this.retire(name);
    delete this.foreignRecords[name];
    await this.persist();
  }

  private async retire(name: string): Promise<void> {
    const old = this.runners.get(name);
    if (!old) return;
    if (old.currentManifest) await old.stop();
    await old.shutdown(false, (old.currentManifest?.stopGraceMs ?? 10_000) + 15_000);
    this.runners.delete(name);
  }

  /** Resumes every package from state.json (adopt, start, or leave stopped). */
  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    const records = await this.store.load();
    for (const [name, rec] of Object.entries(records)) {
      const runner = this.runners.get(name);
      if (!runner?.currentManifest) this.foreignRecords[name] = rec;
      if (!runner)
        this.logger.warn({ package: name }, 'state.json names a package that is no longer installed');
    }
    await Promise.all(
      [...this.runners.values()].map((r) => (r.currentManifest ? r.resume(records[r.name]) : undefined)),
    );
    await this.persist();
    this.rotateTimer = setInterval(() => void this.rotateLogs(), LOG_ROTATE_CHECK_MS);
    this.rotateTimer.unref();
  }

  private snapshot(): Record<string, PackageStateRecord> {
    const out: Record<string, PackageStateRecord> = { ...this.foreignRecords };
    for (const r of this.runners.values()) if (r.currentManifest) out[r.name] = r.stateRecord();
    return out;
  }

  persist(): Promise<void> {
    return this.store.save();
  }

  private async rotateLogs(): Promise<void> {
    for (const r of this.runners.values()) {
      try {
        await r.rotateLog();
      } catch (e) {
        this.logger.warn({ err: e, package: r.name }, 'log rotation failed');
      }
    }
  }

  names(): string[] {
    return [...this.runners.keys()];
  }

  get(name: string): PackageRunner | undefined {
    return this.runners.get(name);
  }

  list(): PackageStatus[] {
    return [...this.runners.values()].map((r) => r.status());
  }

  statusOf(name: string): PackageStatus | undefined {
    return this.runners.get(name)?.status();
  }

  /** start/stop/restart on the named packages (empty = all); one result per name, in order. */
  async action(action: BatchAction, packages: readonly string[]): Promise<PackageOpResult[]> {
    const names = packages.length > 0 ? [...packages] : this.names();
    return Promise.all(
      names.map((name) => {
        const r = this.runners.get(name);
        if (!r) return opFail(name, 'package_not_found', `no package '${name}' on this agent`);
        if (this.closed) return opFail(name, 'agent_unavailable', 'agent is shutting down');
        return action === 'start' ? r.start() : action === 'stop' ? r.stop() : r.restart();
      }),
    );
  }

  /** ServiceHealth of one package, undefined when unknown. */
  packageHealth(name: string): ServiceHealth | undefined {
    return this.runners.get(name)?.serviceHealth();
  }

  /** Overall status leaves out packages the operator stopped (see PackageRunner.countsTowardOverall). */
  overallStatus(): ReturnType<typeof overallHealth> {
    return overallHealth(
      [...this.runners.values()].filter((r) => r.countsTowardOverall()).map((r) => r.healthStatus()),
    );
  }

  health(agentId: string): AgentHealth {
    const services: Record<string, ServiceHealth> = {};
    for (const r of this.runners.values()) services[r.name] = r.serviceHealth();
    return {
      agent_id: agentId,
      overall_status: this.overallStatus(),
      services,
      checked_at: new Date().toISOString(),
    };
  }

  /**
   * Stops supervising. By default packages keep running (detached) and state.json records them
   * for adoption by the next agent run; with `stopPackages` they are stopped first.
   */
  async shutdown(opts: { stopPackages?: boolean } = {}): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.rotateTimer);
    await Promise.all(
      [...this.runners.values()].map((r) =>
        r.shutdown(opts.stopPackages === true, (r.currentManifest?.stopGraceMs ?? 10_000) + 15_000),
      ),
    );
    await this.persist();
  }
}
