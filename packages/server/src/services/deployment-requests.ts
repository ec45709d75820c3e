/**
 * Deployments as the API serves them: create a rollout (audited), list and read deployments
 * with their steps and log, follow one live, cancel, retry, read and cancel rollouts, list and
 * upload agent bundles. The running of deployments is deployments.ts (the queue and the steps);
 * this is the request side, and the one place deployment, rollout and bundle rows become the
 * API's shapes.
 */
import { ConflictError, NotFoundError, OpsplaneError, ValidationError } from '@opsplane/models';
import {
  iso,
  isFinished,
  isoOrNull,
  type AgentBundle,
  type AgentBundleList,
  type Deployment,
  type DeploymentCreate,
  type DeploymentListQuery,
  type DeploymentListResponse,
  type DeploymentLogLine,
  type DeploymentStatus,
  type Rollout,
} from '@opsplane/api';
import type { StoredBundle } from '../storage/agent-bundles.js';
import { DeviceNotFoundError } from './install-targets.js';
import type { DeploymentLogRow, DeploymentRow, RolloutRow } from '../storage/schema.js';
import type { Store } from '../storage/store.js';
import type { AuditTrail } from './audit-trail.js';
import { requireInAreas, type AreaActor } from './access.js';
import type { DeploymentService } from './deployments.js';

export function toDeployment(d: DeploymentRow, log?: DeploymentLogRow[]): Deployment {
  return {
    id: d.id,
    rollout_id: d.rolloutId,
    type: d.type as Deployment['type'],
    device_id: d.deviceId,
    device_name: d.deviceName,
    area: d.area,
    version: d.version,
    status: d.status as DeploymentStatus,
    attempt: d.attempt,
    retry_of: d.retryOf,
    cancel_requested: d.cancelRequested,
    steps: d.steps.map((s) => ({
      name: s.name,
      status: s.status,
      started_at: s.startedAt,
      finished_at: s.finishedAt,
      message: s.message,
    })),
    error: d.error,
    error_code: d.errorCode,
    requested_by: d.requestedBy,
    created_at: iso(d.createdAt),
    started_at: isoOrNull(d.startedAt),
    finished_at: isoOrNull(d.finishedAt),
    duration_ms: d.startedAt && d.finishedAt ? d.finishedAt.getTime() - d.startedAt.getTime() : null,
    ...(log ? { log: log.map(toLogLine) } : {}),
  };
}

export const toLogLine = (l: DeploymentLogRow): DeploymentLogLine => ({
  seq: l.id,
  at: iso(l.at),
  level: l.level as DeploymentLogLine['level'],
  step: l.step,
  message: l.message,
});

export function toRollout(r: RolloutRow, rows: DeploymentRow[]): Rollout {
  const counts = { total: rows.length, queued: 0, running: 0, succeeded: 0, failed: 0, cancelled: 0 };
  for (const d of rows) counts[d.status as DeploymentStatus]++;
  return {
    id: r.id,
    type: r.type as Rollout['type'],
    version: r.version,
    batch_size: r.batchSize,
    max_failures: r.maxFailures,
    status: r.status as Rollout['status'],
    requested_by: r.requestedBy,
    created_at: iso(r.createdAt),
    finished_at: isoOrNull(r.finishedAt),
    counts,
    deployments: rows.map((d) => toDeployment(d)),
  };
}

const toBundle = (b: StoredBundle, newest: string | undefined): AgentBundle => ({
  version: b.version,
  sha256: b.sha256,
  bytes: b.bytes,
  node: b.node,
  added_at: iso(b.addedAt),
  default: b.version === newest,
});

/** One event of a deployment's live stream (Server-Sent Events on the wire). */
export interface DeploymentEvent {
  event: 'deployment' | 'log' | 'end';
  data: unknown;
  /** The log line's seq, for resuming. */
  id?: number;
}

export class DeploymentRequests {
  constructor(
    private readonly store: Store,
    private readonly svc: DeploymentService,
    private readonly audit: AuditTrail,
  ) {}

  async create(actor: AreaActor, body: DeploymentCreate): Promise<Rollout> {
    const created = await this.audit.run(
      actor,
      { action: `deployment.${body.type}`, targetType: 'rollout', details: { request: body } },
      async (tx, spec) => {
        const r = await this.svc.createRollout(tx, body, actor.username, undefined, (areas) =>
          requireInAreas(actor, areas, 'operator', `this ${body.type}`),
        );
        spec.targetId = r.rollout.id;
        spec.details = {
          ...spec.details,
          devices: r.deployments.map((d) => d.deviceName),
          version: r.rollout.version,
        };
        return r;
      },
    );
    this.svc.wake();
    return toRollout(created.rollout, created.deployments);
  }

  async list(q: DeploymentListQuery): Promise<DeploymentListResponse> {
    const { store } = this;
    let deviceId: string | undefined;
    if (q.device !== undefined) {
      const d = /^[0-9a-f-]{36}$/i.test(q.device)
        ? await store.devices.get(q.device)
        : await store.devices.getByName(q.device);
      if (!d) return { items: [], total: 0, page: q.page, pageSize: q.pageSize };
      deviceId = d.id;
    }
    const { items, total } = await store.deployments.list({
      page: q.page,
      pageSize: q.pageSize,
      status: q.status,
      type: q.type,
      deviceId,
      rolloutId: q.rollout,
    });
    return { items: items.map((d) => toDeployment(d)), total, page: q.page, pageSize: q.pageSize };
  }

  async get(id: string): Promise<Deployment> {
    const d = await this.store.deployments.get(id);
    if (!d) throw new NotFoundError(`deployment ${id} not found`);
    return toDeployment(d, await this.store.deployments.logs(d.id));
  }

  /**
   * The live events of a deployment after log line `after`, until it finishes, `signal` aborts
   * or the server stops. The database is the source of truth (another server may run the
   * deployment); local events only make this look sooner.
   */
  async *follow(id: string, after: number, signal: AbortSignal): AsyncGenerator<DeploymentEvent | 'idle'> {
    const { store, svc } = this;
    if (!(await store.deployments.get(id))) throw new NotFoundError(`deployment ${id} not found`);
    if (svc.stopping) {
      // Not a stream that ends at once: clients would take that for a finished deployment.
      throw new OpsplaneError('shutting_down', 'the server is stopping; reconnect in a moment', {
        status: 503,
      });
    }
    let wake: (() => void) | undefined;
    const onAny = (dep: string) => {
      if (dep === id) wake?.();
    };
    const onStop = () => wake?.();
    svc.on('log', onAny);
    svc.on('change', onAny);
    svc.on('shutdown', onStop);
    signal.addEventListener('abort', onStop, { once: true });
    let lastShape = '';
    try {
      while (!signal.aborted && !svc.stopping) {
        const d = await store.deployments.get(id);
        if (!d) return;
        const shape = JSON.stringify([d.status, d.steps, d.cancelRequested]);
        if (shape !== lastShape) {
          lastShape = shape;
          yield { event: 'deployment', data: toDeployment(d) };
        }
        for (const line of await store.deployments.logs(id, after, 1000)) {
          yield { event: 'log', data: toLogLine(line), id: line.id };
          after = line.id;
        }
        if (isFinished(d.status as DeploymentStatus)) {
          for (const line of await store.deployments.logs(id, after, 10_000))
            yield { event: 'log', data: toLogLine(line), id: line.id };
          yield { event: 'end', data: toDeployment(d) };
          return;
        }
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, 1000);
          wake = () => {
            clearTimeout(t);
            resolve();
          };
        });
        wake = undefined;
        yield 'idle';
      }
    } finally {
      svc.off('log', onAny);
      svc.off('change', onAny);
      svc.off('shutdown', onStop);
      signal.removeEventListener('abort', onStop);
    }
  }

  async cancel(actor: AreaActor, id: string): Promise<Deployment> {
    const { store } = this;
    const cur = await store.deployments.get(id);
    if (!cur) throw new NotFoundError(`deployment ${id} not found`);
    requireInAreas(actor, [cur.area], 'operator', `cancelling deployment ${id}`);
    if (isFinished(cur.status as DeploymentStatus))
      throw new ConflictError(`deployment ${id} already ${cur.status}`);
    await this.audit.run(
      actor,
      { action: 'deployment.cancel', targetType: 'deployment', targetId: id },
      (tx) => tx.deployments.cancelDeployment(id, `cancelled by ${actor.username}`),
    );
    const d = await store.deployments.get(id);
    if (d && isFinished(d.status as DeploymentStatus)) await store.deployments.settleRollout(d.rolloutId);
    this.svc.emit('change', id);
    return toDeployment(d ?? cur);
  }

  async retry(actor: AreaActor, id: string): Promise<Deployment> {
    const { store } = this;
    const cur = await store.deployments.get(id);
    if (!cur) throw new NotFoundError(`deployment ${id} not found`);
    requireInAreas(actor, [cur.area], 'operator', `retrying deployment ${id}`);
    if (cur.status !== 'failed' && cur.status !== 'cancelled') {
      throw new ConflictError(`only a failed or cancelled deployment can be retried; ${id} is ${cur.status}`);
    }
    if (!cur.deviceId) throw new DeviceNotFoundError(`the device of deployment ${id} was deleted`);
    const deviceId = cur.deviceId;
    const rollout = await store.deployments.rolloutOf(cur.rolloutId);
    const created = await this.audit.run(
      actor,
      { action: 'deployment.retry', targetType: 'deployment', targetId: id },
      (tx) =>
        this.svc.createRollout(
          tx,
          {
            type: cur.type as Deployment['type'],
            devices: [deviceId],
            ...(cur.version ? { version: cur.version } : {}),
            batch_size: 1,
            accept_changed_host_key: rollout?.acceptChangedHostKey ?? false,
          },
          actor.username,
          id,
        ),
    );
    this.svc.wake();
    return toDeployment(created.deployments[0] as DeploymentRow);
  }

  async rollout(id: string): Promise<Rollout> {
    const found = await this.store.deployments.rollout(id);
    if (!found) throw new NotFoundError(`rollout ${id} not found`);
    return toRollout(found.rollout, found.deployments);
  }

  async cancelRollout(actor: AreaActor, id: string): Promise<Rollout> {
    const { store } = this;
    const found = await store.deployments.rollout(id);
    if (!found) throw new NotFoundError(`rollout ${id} not found`);
    requireInAreas(
      actor,
      new Set(found.deployments.map((d) => d.area)),
      'operator',
      `cancelling rollout ${id}`,
    );
    await this.audit.run(actor, { action: 'rollout.cancel', targetType: 'rollout', targetId: id }, (tx) =>
      tx.deployments.cancelRollout(id, `cancelled by ${actor.username}`, 'cancelled'),
    );
    await store.deployments.settleRollout(id);
    for (const d of found.deployments) this.svc.emit('change', d.id);
    return this.rollout(id);
  }

  async bundles(): Promise<AgentBundleList> {
    const all = await this.svc.bundles.list();
    return { items: all.map((b) => toBundle(b, all[0]?.version)) };
  }

  /** Stores an uploaded bundle (validated first; a version is immutable); `created` false when it was there. */
  async uploadBundle(actor: AreaActor, body: unknown): Promise<{ bundle: AgentBundle; created: boolean }> {
    if (!Buffer.isBuffer(body) || body.length === 0) {
      throw new ValidationError('send the bundle as the request body with content-type application/gzip');
    }
    const { bundle, created } = await this.audit.run(
      actor,
      { action: 'bundle.upload', targetType: 'agent_bundle' },
      async (_tx, spec) => {
        const r = await this.svc.bundles.add(body);
        spec.targetId = r.bundle.version;
        spec.details = { sha256: r.bundle.sha256, bytes: r.bundle.bytes };
        return r;
      },
    );
    const newest = (await this.svc.bundles.list())[0]?.version;
    return { bundle: toBundle(bundle, newest), created };
  }
}
