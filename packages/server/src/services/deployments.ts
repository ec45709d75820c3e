/**
 * Deployments, the service: turns a request into a rollout (devices resolved, bundle chosen,
 * credentials checked up front so that a doomed request fails at once with a 4xx), and runs each
 * claimed deployment — the install engine's walk (@opsplane/deploy) on the device's install
 * target (install-targets.ts), its progress recorded by a DeploymentRecorder (to the database and
 * to live listeners) — keeps the device's status in step, and applies the rollout's failure budget.
 */
import { EventEmitter } from 'node:events';
import type { Logger } from '@opsplane/kit';
import { ControllerUnavailableError, OpsplaneError, ValidationError } from '@opsplane/models';
import {
  connectInstaller,
  DeploymentCancelledError,
  runDeployment,
  STEPS,
  UpgradeRolledBackError,
  type LogLevel,
  type OnlineWatch,
} from '@opsplane/deploy';
import type { ServerConfig } from '../config.js';
import type { ServerMetrics } from './metrics.js';
import type { Store } from '../storage/store.js';
import type { DeploymentLogRow, DeploymentRow, StoredStep } from '../storage/schema.js';
import type {
  DeploymentCreateInput,
  DeploymentType,
  Device,
  DeviceListQuery,
  DeviceStatus,
} from '@opsplane/api';
import { matchesSelector, parseSelector } from '@opsplane/api';
import type { AgentBundleStore, StoredBundle } from '../storage/agent-bundles.js';
import { DeploymentQueue, type AbortReason } from './deployment-queue.js';
import { DeploymentRecorder, type RecorderSink } from './deployment-recorder.js';
import { toDevice } from './devices.js';
import { DeviceNotFoundError, deviceInstallOptions, installTargetOf } from './install-targets.js';
import type { PlatformServices } from './platform.js';

export interface DeploymentEvents {
  /** A log line of a deployment. */
  log: [deploymentId: string, line: DeploymentLogRow];
  /** A deployment's status or steps changed. */
  change: [deploymentId: string];
  /** The server is stopping: live streams end. */
  shutdown: [];
}

export interface DeploymentServiceOptions {
  config: ServerConfig;
  metrics?: ServerMetrics;
  store: Store;
  platform: PlatformServices;
  logger: Logger;
  bundles: AgentBundleStore;
  /** This replica's id: the owner of the deployments it runs (their lease_owner). */
  replicaId?: string;
  /**
   * The agent's TLS identity for its config — the CA bundle it pins and its own certificate
   * and key — when the server has a CA (services/pki.ts); undefined keeps token-only agents.
   */
  agentTls?: (code: string, area: string) => Promise<{ ca: string; cert: string; key: string } | undefined>;
  /** The artifact keys installed agents pin (`artifact_keys` in agent.yaml). */
  artifactKeys?: () => Promise<string[]>;
}

export class DeploymentService extends EventEmitter<DeploymentEvents> implements RecorderSink {
  readonly queue: DeploymentQueue;
  readonly bundles: AgentBundleStore;
  readonly #log: Logger;

  constructor(private readonly opts: DeploymentServiceOptions) {
    super();
    this.setMaxListeners(0);
    this.bundles = opts.bundles;
    this.#log = opts.logger.child({ component: 'deployments' });
    const d = opts.config.server.deploy;
    this.queue = new DeploymentQueue({
      repo: opts.store.deployments,
      maxWorkers: opts.config.concurrency.max_workers,
      leaseMs: d.lease_ttl,
      pollMs: d.poll_interval,
      execute: (row, signal, owner) => this.#execute(row, signal, owner),
      logger: this.#log,
      ...(opts.replicaId ? { replicaId: opts.replicaId } : {}),
    });
  }

  async start(opts: { exclusiveDatabase: boolean }): Promise<void> {
    if (opts.exclusiveDatabase) {
      // Nobody else can hold a lease on an embedded database: what is running was cut off.
      const n = await this.opts.store.deployments.expireAllLeases();
      if (n > 0) this.#log.warn({ deployments: n }, 'deployments cut off by the previous run will resume');
    }
    this.queue.start();
  }

  #stopping = false;
  get stopping(): boolean {
    return this.#stopping;
  }

  stop(): Promise<void> {
    this.#stopping = true;
    this.emit('shutdown');
    return this.queue.stop();
  }

  // ------------------------------------------------------------------------------ requests

  /** Resolves the request into devices and creates the rollout (in `tx`, with its audit record). */
  async createRollout(
    store: Store,
    input: DeploymentCreateInput,
    requestedBy: string,
    retryOf?: string,
    /** Sees the areas of the devices before anything is created (the caller's role check). */
    authorize?: (areas: readonly string[]) => void,
  ) {
    const type = input.type as DeploymentType;
    const devices = await this.#resolveDevices(store, input);
    authorize?.([...new Set(devices.map((d) => d.function_area))]);
    let bundle: StoredBundle | undefined;
    if (type === 'install' || type === 'upgrade') bundle = await this.bundles.get(input.version);
    else if (input.version !== undefined)
      throw new ValidationError(`version applies to install and upgrade only`);
    for (const d of devices) {
      deviceInstallOptions(d); // bad install_dir/scope metadata → 4xx now, not a failed deployment later
      if (bundle && !this.opts.platform.credentials.flagsOf(d.function_area).has_agent_secret) {
        throw new OpsplaneError(
          'area_not_configured',
          `area '${d.function_area}' (device ${d.name}) has no agent secret, so no agent token can be issued; ` +
            `set it with PUT /api/v1/areas/${d.function_area}/credentials`,
          { status: 422 },
        );
      }
    }
    return store.deployments.createRollout({
      type,
      version: bundle?.version ?? '',
      batchSize: input.batch_size ?? this.opts.config.concurrency.max_workers,
      maxFailures: input.max_failures ?? 0,
      acceptChangedHostKey: input.accept_changed_host_key ?? false,
      requestedBy,
      devices: devices.map((d) => ({ id: d.id, name: d.name, area: d.function_area })),
      steps: STEPS[type],
      ...(retryOf ? { retryOf } : {}),
    });
  }

  async #resolveDevices(store: Store, input: DeploymentCreateInput): Promise<Device[]> {
    if (input.devices) {
      const out: Device[] = [];
      const missing: string[] = [];
      for (const ref of new Set(input.devices)) {
        const d = /^[0-9a-f-]{36}$/i.test(ref)
          ? await store.devices.get(ref)
          : await store.devices.getByName(ref);
        if (d) out.push(toDevice(d));
        else missing.push(ref);
      }
      if (missing.length > 0)
        throw new DeviceNotFoundError(`no such device: ${missing.slice(0, 20).join(', ')}`);
      return out;
    }
    const all: Device[] = [];
    const filter: Pick<DeviceListQuery, 'function_area' | 'status'> =
      input.area !== undefined
        ? { function_area: input.area }
        : input.selector !== undefined
          ? {}
          : { status: ['new'] };
    for (let page = 1; ; page++) {
      const { rows, total } = await store.devices.list({
        page,
        pageSize: 500,
        sort: 'name',
        order: 'asc',
        ...filter,
      });
      all.push(...rows.map(toDevice));
      if (page * 500 >= total || rows.length === 0) break;
    }
    if (input.selector === undefined) return all;
    // A device's metadata is its labels.
    const selector = parseSelector(input.selector);
    const matched = all.filter((d) => matchesSelector(selector, d.metadata));
    if (matched.length === 0)
      throw new DeviceNotFoundError(
        `no device${input.area !== undefined ? ` of area ${input.area}` : ''} matches the selector '${input.selector}'`,
      );
    return matched;
  }

  /** Kicks the queue after a commit that added work. */
  wake(): void {
    this.queue.kick();
  }

  // ------------------------------------------------------------------------------ running

  async #execute(row: DeploymentRow, signal: AbortSignal, owner: string): Promise<void> {
    const rec = new DeploymentRecorder(this, row);
    try {
      await this.#run(row, signal, owner, rec);
    } finally {
      rec.close();
    }
  }

  /**
   * One claimed deployment: the walk of @opsplane/deploy on the device's install target, the
   * device's status kept in step, the outcome recorded. `signal` is the queue's (shutdown, lost
   * lease: the deployment is handed back); an operator's cancel reaches the walk through `rec`.
   */
  async #run(row: DeploymentRow, signal: AbortSignal, owner: string, rec: DeploymentRecorder): Promise<void> {
    const { store } = this.opts;
    const repo = store.deployments;
    if (row.cancelRequested) {
      await repo.finish(row.id, owner, 'cancelled', {
        code: 'cancelled',
        message: 'cancelled before it started',
      });
      await this.#finished(row);
      return;
    }
    if (row.attempt > 1) {
      await rec.reset();
      await rec.log(
        'warn',
        `resumed after the server that ran it stopped (attempt ${row.attempt}); running every step again`,
      );
    }
    const deviceRow = row.deviceId ? await store.devices.get(row.deviceId) : undefined;
    const device = deviceRow && toDevice(deviceRow);
    const rollout = await repo.rolloutOf(row.rolloutId);
    const type = row.type as DeploymentType;
    let outcome: { status: 'succeeded' | 'failed' | 'cancelled'; error?: { code: string; message: string } };
    const statusBefore = device?.status;
    try {
      if (!device) throw new DeviceNotFoundError(`device ${row.deviceName} was deleted`);
      if (type !== 'restart') await store.devices.setStatus(device.id, 'deploying');
      const bundle = row.version ? await this.bundles.get(row.version) : undefined;
      await rec.log(
        'info',
        `${type}${bundle ? ` ${bundle.version}` : ''} on ${device.name} (${device.ip}, area ${device.function_area}) by ${row.requestedBy}`,
      );
      await rec.checkCancel();
      const result = await runDeployment({
        kind: type,
        deviceName: device.name,
        reporter: rec,
        signal: AbortSignal.any([signal, rec.cancelled]),
        ...(bundle ? { bundle } : {}),
        connect: async () =>
          connectInstaller(
            await installTargetOf(store, device, this.opts.config.server.deploy.connect_timeout),
            {
              hostKeys: store.hostKeys,
              acceptChangedHostKey: rollout?.acceptChangedHostKey ?? false,
              logger: this.#log,
            },
          ),
        identity: async () => {
          const tls = await this.opts.agentTls?.(device.agent_code, device.function_area);
          const artifactKeys = await this.opts.artifactKeys?.();
          return {
            code: device.agent_code,
            area: device.function_area,
            // With a certificate the token is a fallback for controllers that still take tokens.
            token: await this.opts.platform.credentials
              .agentTokenFor(device.function_area, device.agent_code)
              .catch((e: unknown) => {
                if (tls) return '';
                throw e;
              }),
            controllers: this.#controllerUrls(device.function_area),
            ...(tls ? { tls } : {}),
            ...(artifactKeys?.length ? { artifactKeys } : {}),
          };
        },
        waitOnline: this.#onlineWatch(device),
      });
      outcome = { status: 'succeeded' };
      const status: DeviceStatus = type === 'uninstall' ? 'uninstalled' : 'online';
      await store.devices.setStatus(device.id, status, result.version);
    } catch (e) {
      if (signal.aborted) {
        // Shutdown or lost lease: not this deployment's outcome — whoever claims it next resumes it.
        this.#log.info(
          { deployment: row.id, reason: signal.reason as AbortReason },
          'deployment handed back',
        );
        if (device && statusBefore)
          await store.devices.setStatus(device.id, statusBefore).catch(() => undefined);
        return;
      }
      const err = e instanceof OpsplaneError ? e : new OpsplaneError('deploy_failed', (e as Error).message);
      if (e instanceof DeploymentCancelledError) {
        outcome = { status: 'cancelled', error: { code: 'cancelled', message: err.message } };
        if (device && statusBefore)
          await store.devices.setStatus(device.id, statusBefore).catch(() => undefined);
      } else {
        outcome = { status: 'failed', error: { code: err.code, message: err.message } };
        const rolledBack = e instanceof UpgradeRolledBackError;
        if (device)
          await store.devices.setStatus(device.id, rolledBack ? 'online' : 'failed').catch(() => undefined);
      }
      await rec.log(outcome.status === 'cancelled' ? 'warn' : 'error', `${outcome.status}: ${err.message}`);
    }
    const done = await repo.finish(row.id, owner, outcome.status, outcome.error);
    if (!done) return; // lease lost meanwhile: the other owner records the outcome
    if (done.startedAt && done.finishedAt) {
      this.opts.metrics?.deploymentDuration.observe(
        { type, status: outcome.status },
        (done.finishedAt.getTime() - done.startedAt.getTime()) / 1000,
      );
    }
    await this.#finished(row, outcome.status);
  }

  /** Applies the rollout's failure budget before the queue looks for the next deployment. */
  async #finished(row: DeploymentRow, status?: string): Promise<void> {
    await (async () => {
      const repo = this.opts.store.deployments;
      if (status === 'failed') {
        const rollout = await repo.rolloutOf(row.rolloutId);
        const counts = await repo.rolloutCounts(row.rolloutId);
        if (rollout && rollout.maxFailures > 0 && (counts.failed ?? 0) >= rollout.maxFailures) {
          await repo.cancelRollout(
            row.rolloutId,
            `rollout stopped after ${counts.failed} failure(s) (max_failures ${rollout.maxFailures})`,
            'stopped',
          );
          this.#log.warn(
            { rollout: row.rolloutId, failed: counts.failed },
            'rollout stopped: failure budget spent',
          );
        }
      }
      await repo.settleRollout(row.rolloutId);
    })()
      .catch((err: unknown) => this.#log.warn({ err, rollout: row.rolloutId }, 'rollout bookkeeping failed'))
      .finally(() => this.emit('change', row.id));
  }

  #controllerUrls(area: string): string[] {
    const list = this.opts.platform
      .listControllers()
      .filter((c) => c.area === area && c.status === 'online')
      .map((c) => (/^[a-z]+:\/\//i.test(c.address) ? c.address : `http://${c.address}`));
    if (list.length === 0) {
      throw new ControllerUnavailableError(
        area,
        `no controller of area '${area}' is online: the agent would have nowhere to connect`,
      );
    }
    return list.sort();
  }

  /**
   * How the walk sees the device's agent: through the controllers of its area (the one the view
   * says holds it first), as each of them lists it — their own timestamps, never ours.
   */
  #onlineWatch(device: Device): OnlineWatch {
    const code = device.agent_code;
    return {
      agent: code,
      area: device.function_area,
      timeoutMs: this.opts.config.server.deploy.online_timeout,
      look: async () => {
        const { value: a, controller } = await this.opts.platform.onAgent(code, (c, s) =>
          c.getAgent(code, s),
        );
        return {
          controller: controller.controller.id,
          status: a.status,
          version: a.version,
          lastHeartbeat: a.last_heartbeat,
        };
      },
    };
  }

  // RecorderSink: persist and announce.

  async appendLog(id: string, level: LogLevel, step: string | null, message: string): Promise<void> {
    const line = await this.opts.store.deployments.appendLog(id, level, step, message);
    this.emit('log', id, line);
  }

  async saveSteps(id: string, steps: StoredStep[]): Promise<void> {
    await this.opts.store.deployments.setSteps(id, steps);
    this.emit('change', id);
  }

  isCancelRequested(id: string): Promise<boolean> {
    return this.opts.store.deployments.isCancelRequested(id);
  }
}
