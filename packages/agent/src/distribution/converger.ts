/**
 * Convergence on the desired state the platform gave: persists it (so a restarted agent resumes
 * without the platform), then, one run at a time, brings each package to its desired version —
 * fetch and verify, unpack side by side, write configs, switch the link, reload and start,
 * health-gate, roll back on failure — removes packages the desired state dropped, and keeps the
 * DistributionStatus that hello, heartbeats and the `distribution` op report. Drift of config
 * files is checked periodically and, when the policy says so, corrected (journaled).
 */
import { randomUUID } from 'node:crypto';
import { readdir, rm } from 'node:fs/promises';
import type { DesiredPackage, DesiredState, DistributionStatus, PackageDistribution } from '@opsplane/models';
import type { Logger } from '../log.js';
import type { OperationJournal } from '../operations/operation-journal.js';
import { applyConfigUpdate } from '../packages/config-writer.js';
import type { PackageRunner } from '../packages/package-runner.js';
import type { Supervisor } from '../packages/supervisor.js';
import { SerialQueue } from '../util/serial-queue.js';
import { withTimeout } from '../util/timers.js';
import type { ArtifactFetcher } from './artifact-fetcher.js';
import type { ConvergenceRecord, DesiredStore } from './desired-store.js';
import { asDistributionError, DistributionError, SupersededError } from './errors.js';
import type { PackageInstaller } from './package-installer.js';

/** The agent-upgrade step (see agent-upgrader.ts); absent = agent upgrades are refused. */
export interface AgentUpgradeStep {
  /** Brings the agent to `desired.agent` (may end the process); returns its status part. */
  converge(d: DesiredState, signal: AbortSignal): Promise<DistributionStatus['agent']>;
  /** The agent part to report now (e.g. after a rolled back upgrade), if any. */
  current(d: DesiredState | undefined): DistributionStatus['agent'] | undefined;
}

export interface ConvergerOptions {
  supervisor: Supervisor;
  store: DesiredStore;
  fetcher: ArtifactFetcher;
  installer: PackageInstaller;
  journal: OperationJournal;
  logger: Logger;
  /** How often config drift is checked (the heartbeat interval). */
  driftCheckMs: number;
  agentUpgrade?: AgentUpgradeStep;
  /** Called when the status changed (e.g. to send it early). */
  onStatus?: (s: DistributionStatus) => void;
}

export type AcceptOutcome =
  { ok: true; status: DistributionStatus } | { ok: false; error: { code: string; message: string } };

const now = () => new Date().toISOString();

export class Converger {
  private desired: DesiredState | undefined;
  private record: ConvergenceRecord = {
    status: { policy: '', revision: 0, state: 'none', packages: [], updated_at: now() },
    previous: {},
    failed: {},
    applied_configs: {},
  };
  private readonly queue = new SerialQueue();
  private next: DesiredState | undefined;
  private abort: AbortController | undefined;
  private driftTimer: NodeJS.Timeout | undefined;
  private closed = false;
  private readonly log: Logger;

  constructor(private readonly opts: ConvergerOptions) {
    this.log = opts.logger;
  }

  /** Loads what was persisted and, with a desired state on disk, resumes converging on it. */
  async open(): Promise<void> {
    this.desired = await this.opts.store.loadDesired();
    const rec = await this.opts.store.loadRecord();
    if (rec) this.record = rec;
    this.driftTimer = setInterval(() => this.driftTick(), Math.max(1000, this.opts.driftCheckMs));
    this.driftTimer.unref();
    if (this.desired) {
      this.log.info(
        { policy: this.desired.policy, revision: this.desired.revision },
        'resuming convergence on the persisted desired state',
      );
      this.schedule(this.desired);
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.driftTimer);
    this.next = undefined;
    this.abort?.abort();
    // A health gate in flight may take long; the supervisor's shutdown does not wait for it.
    await withTimeout(this.queue.idle(), 10_000, undefined);
  }

  /** What hello/heartbeats report; undefined when no desired state was ever given. */
  status(): DistributionStatus | undefined {
    if (!this.desired) return undefined;
    const agent = this.opts.agentUpgrade?.current(this.desired);
    const s = this.record.status;
    if (!agent) return s;
    // The agent part changes outside of runs (a trial confirmed after the new version connected).
    const state =
      s.state === 'applying'
        ? 'applying'
        : s.state === 'failed' || agent.state === 'failed'
          ? 'failed'
          : agent.state === 'applying'
            ? 'applying'
            : 'applied';
    return { ...s, state, agent };
  }

  /** The `desired_state` op: refuse an older revision, persist, answer, converge in the background. */
  async accept(d: DesiredState): Promise<AcceptOutcome> {
    const held = this.desired;
    if (held && held.policy === d.policy && d.revision < held.revision)
      return {
        ok: false,
        error: {
          code: 'stale_revision',
          message: `revision ${d.revision} of policy ${d.policy} is older than the revision ${held.revision} this agent holds`,
        },
      };
    if (held && held.policy === d.policy && d.revision === held.revision) {
      return { ok: true, status: this.status() ?? this.record.status }; // idempotent
    }
    await this.opts.store.saveDesired(d);
    this.desired = d;
    this.record.status = {
      ...this.record.status,
      policy: d.policy,
      revision: d.revision,
      state: 'applying',
      packages: d.packages.map((p) => {
        const had = this.record.status.packages.find((x) => x.name === p.name);
        return {
          name: p.name,
          desired_version: p.version,
          version: had?.version ?? '',
          state: 'applying',
          rolled_back: false,
          config_hash: had?.config_hash ?? '',
          drift: false,
        };
      }),
      updated_at: now(),
    };
    await this.saveRecord();
    this.schedule(d);
    return { ok: true, status: this.status() ?? this.record.status };
  }

  /** Resolves once every queued run has finished (tests, shutdown). */
  idle(): Promise<void> {
    return this.queue.idle();
  }

  private schedule(d: DesiredState): void {
    // A newer desired state supersedes the pending one, and cuts a download in flight short.
    this.next = d;
    this.abort?.abort();
    void this.queue.run(async () => {
      const target = this.next;
      if (!target || this.closed) return;
      this.next = undefined;
      const ac = new AbortController();
      this.abort = ac;
      try {
        await this.converge(target, ac.signal);
      } catch (e) {
        if (!(e instanceof SupersededError))
          this.log.error({ err: (e as Error).message }, 'convergence run failed');
      } finally {
        if (this.abort === ac) this.abort = undefined;
      }
    });
  }

  private async saveRecord(): Promise<void> {
    this.record.status.updated_at = now();
    await this.opts.store.saveRecord(this.record);
    const s = this.status();
    if (s) this.opts.onStatus?.(s);
  }

  private entry(p: DesiredPackage): PackageDistribution {
    let e = this.record.status.packages.find((x) => x.name === p.name);
    if (!e) {
      e = {
        name: p.name,
        desired_version: p.version,
        version: '',
        state: 'applying',
        rolled_back: false,
        config_hash: '',
        drift: false,
      };
      this.record.status.packages.push(e);
    }
    e.desired_version = p.version;
    return e;
  }

  private async converge(d: DesiredState, signal: AbortSignal): Promise<void> {
    this.log.info({ policy: d.policy, revision: d.revision, packages: d.packages.length }, 'converging');
    // Entries of packages no longer desired go; the rest are reported in the desired order.
    this.record.status.packages = d.packages.map((p) => this.entry(p));
    for (const p of d.packages) {
      if (signal.aborted) throw new SupersededError();
      const e = this.entry(p);
      try {
        await this.convergePackage(d, p, e, signal);
      } catch (err) {
        if (err instanceof SupersededError) throw err;
        const de = asDistributionError(err);
        this.log.error({ package: p.name, code: de.code, err: de.message }, 'package did not converge');
        e.state = 'failed';
        e.error = { code: de.code, message: de.message };
        if (!de.code.startsWith('package_unmanaged'))
          this.record.failed[p.name] = { sha256: p.artifact.sha256, revision: d.revision };
      }
      await this.saveRecord();
    }
    await this.removeUndesired(d);
    if (d.agent && this.opts.agentUpgrade) {
      await this.opts.agentUpgrade.converge(d, signal);
    }
    // Packages only; status() folds the agent part in.
    this.record.status.state = this.record.status.packages.some((x) => x.state === 'failed')
      ? 'failed'
      : 'applied';
    await this.saveRecord();
    this.log.info({ revision: d.revision, state: this.record.status.state }, 'convergence run done');
  }

  private async convergePackage(
    d: DesiredState,
    p: DesiredPackage,
    e: PackageDistribution,
    signal: AbortSignal,
  ): Promise<void> {
    const inst = this.opts.installer;
    const link = await inst.linkState(p.name);
    if (link.kind === 'unmanaged')
      throw new DistributionError(
        'package_unmanaged',
        `packages_dir/${p.name} exists and is not managed by distribution; it is left untouched`,
      );
    const current = link.kind === 'managed' ? link.version : '';
    e.version = current;
    const failed = this.record.failed[p.name];
    if (
      failed &&
      failed.sha256 === p.artifact.sha256 &&
      failed.revision === d.revision &&
      current !== p.version
    ) {
      // This very artifact already failed at this revision: report it, do not loop on it.
      e.state = 'failed';
      return;
    }
    const pending = this.record.previous[p.name];
    if (current === p.version && pending === undefined) {
      await this.ensureConfigs(d, p, e);
      e.state = 'applied';
      e.rolled_back = false;
      delete e.error;
      return;
    }
    if (current !== p.version) {
      const ref = p.artifact;
      if (ref.kind !== 'package' || ref.name !== p.name || ref.version !== p.version)
        throw new DistributionError(
          'artifact_mismatch',
          `the artifact is ${ref.kind} ${ref.name} ${ref.version}, the desired state wants package ${p.name} ${p.version}`,
        );
      const os = process.platform === 'win32' ? 'windows' : process.platform;
      const arch = process.arch;
      if ((ref.os !== 'any' && ref.os !== os) || (ref.arch !== 'any' && ref.arch !== arch))
        throw new DistributionError(
          'artifact_platform',
          `the artifact is built for ${ref.os}/${ref.arch}, this host is ${os}/${arch}`,
        );
      e.state = 'applying';
      delete e.error;
      await this.saveRecord();
      // Transient problems show in the status while the download keeps retrying.
      const file = await this.opts.fetcher.fetch(ref, signal, (message) => {
        e.error = { code: 'artifact_download_retrying', message };
      });
      delete e.error;
      const dir = await inst.unpack(ref, file);
      // Unpacked: the archive is not needed any more (a re-install fetches it again).
      await rm(file, { force: true });
      await inst.writeConfigs(await inst.configDir(dir), p.configs);
      // On disk before the switch: a restart in between knows what to roll back to.
      this.record.previous[p.name] = current;
      await this.saveRecord();
      await inst.switchTo(p.name, p.version);
      this.log.info({ package: p.name, from: current || undefined, to: p.version }, 'switched version');
    }
    const prev = this.record.previous[p.name] ?? '';
    const runner = await this.opts.supervisor.reloadPackageIfChanged(p.name);
    const verdict = await this.healthGate(runner, d.health_timeout_ms);
    if (verdict.ok) {
      delete this.record.previous[p.name];
      delete this.record.failed[p.name];
      this.record.applied_configs[p.name] = p.config_hash;
      e.version = p.version;
      e.state = 'applied';
      e.rolled_back = false;
      delete e.error;
      e.config_hash = await this.configHashNow(p);
      e.drift = p.configs.length > 0 && e.config_hash !== p.config_hash;
      this.log.info({ package: p.name, version: p.version }, 'package converged');
      return;
    }
    this.log.warn(
      { package: p.name, version: p.version, reason: verdict.reason, back_to: prev || undefined },
      'health gate failed; rolling back',
    );
    await inst.switchTo(p.name, prev === '' ? undefined : prev);
    const back = await this.opts.supervisor.reloadPackage(p.name);
    if (back) await back.start();
    delete this.record.previous[p.name];
    this.record.failed[p.name] = { sha256: p.artifact.sha256, revision: d.revision };
    e.version = prev;
    e.state = 'failed';
    e.rolled_back = true;
    e.error = {
      code: verdict.code,
      message: `${p.name} ${p.version} did not become healthy: ${verdict.reason}`,
    };
    e.config_hash = prev === '' ? '' : await this.configHashNow(p);
  }

  /** Starts the package and waits for its health verdict (a crash loop is a failure). */
  private async healthGate(
    runner: PackageRunner | undefined,
    timeoutMs: number,
  ): Promise<{ ok: true } | { ok: false; code: string; reason: string }> {
    if (!runner?.currentManifest)
      return {
        ok: false,
        code: 'invalid_manifest',
        reason: runner?.status().last_error ?? 'no package.yaml',
      };
    const started = await runner.start();
    if (!started.success)
      return { ok: false, code: 'start_failed', reason: started.error ?? 'did not start' };
    const v = await runner.exclusive((ctl) => ctl.waitHealthy(timeoutMs));
    if ('success' in v) return { ok: false, code: 'health_check_failed', reason: v.error ?? 'unavailable' };
    return v.healthy ? { ok: true } : { ok: false, code: 'health_check_failed', reason: v.reason };
  }

  private async configHashNow(p: DesiredPackage): Promise<string> {
    const dir = this.opts.supervisor.get(p.name)?.currentManifest?.configDir;
    return dir ? this.opts.installer.currentConfigHash(dir, p.configs) : '';
  }

  /**
   * Same version as desired: a policy whose configs changed is applied (write + restart, health
   * checked, journaled); otherwise the files are compared and drift reported (and corrected).
   */
  private async ensureConfigs(d: DesiredState, p: DesiredPackage, e: PackageDistribution): Promise<void> {
    const hash = await this.configHashNow(p);
    e.config_hash = hash;
    const policyChanged = (this.record.applied_configs[p.name] ?? '') !== p.config_hash;
    e.drift = p.configs.length > 0 && hash !== p.config_hash && !policyChanged;
    if (p.configs.length === 0 || hash === p.config_hash) {
      this.record.applied_configs[p.name] = p.config_hash;
      return;
    }
    if (!policyChanged && !d.correct_drift) return;
    await this.rewriteConfigs(p, policyChanged ? 'policy' : 'drift');
    e.config_hash = await this.configHashNow(p);
    e.drift = e.config_hash !== p.config_hash;
    if (!e.drift) this.record.applied_configs[p.name] = p.config_hash;
  }

  private async rewriteConfigs(p: DesiredPackage, why: 'policy' | 'drift'): Promise<void> {
    this.log.info({ package: p.name, why }, 'rewriting config files from the policy');
    const r = await this.opts.journal.run(`${why}-${randomUUID()}`, p.name, 'configs', () =>
      applyConfigUpdate(this.opts.supervisor, { package: p.name, configs: p.configs }, { logger: this.log }),
    );
    if (!r.success) throw new DistributionError('config_update_failed', r.error ?? 'config update failed');
  }

  /** Packages installed by distribution that the desired state no longer names: stopped, unlinked. */
  private async removeUndesired(d: DesiredState): Promise<void> {
    const want = new Set(d.packages.map((p) => p.name));
    const names = await readdir(this.opts.installer.packagesDir).catch(() => [] as string[]);
    for (const name of names) {
      if (name.startsWith('.') || want.has(name)) continue;
      if ((await this.opts.installer.linkState(name)).kind !== 'managed') continue;
      this.log.info({ package: name }, 'package no longer desired; stopping and unlinking it');
      await this.opts.installer.switchTo(name, undefined);
      await this.opts.supervisor.removePackage(name);
      delete this.record.previous[name];
      delete this.record.applied_configs[name];
    }
  }

  /** Periodic: recompute config hashes of applied packages; correct drift when the policy says so. */
  private driftTick(): void {
    const d = this.desired;
    if (!d || this.closed || this.queue.busy) return;
    void this.queue.run(async () => {
      let changed = false;
      for (const p of d.packages) {
        const e = this.record.status.packages.find((x) => x.name === p.name);
        if (!e || e.state !== 'applied') continue;
        const before = `${e.config_hash}/${e.drift}`;
        try {
          await this.ensureConfigs(d, p, e);
        } catch (err) {
          const de = asDistributionError(err, 'config_update_failed');
          e.error = { code: de.code, message: de.message };
          changed = true;
        }
        if (`${e.config_hash}/${e.drift}` !== before) changed = true;
      }
      if (changed) await this.saveRecord();
    });
  }
}
