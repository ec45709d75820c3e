/**
 * Deployments: POST /deployments creates a rollout (one deployment per device) that the durable
 * queue runs; GET reads them with their steps and log; /deployments/{id}/events streams a
 * deployment live (Server-Sent Events); cancel and retry; /rollouts/{id} for the whole request;
 * /agent-bundles lists and uploads the agent versions this server can deploy. Operators deploy,
 * admins upload bundles, everyone reads.
 */
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { ConflictError, NotFoundError, OpsplaneError, ValidationError } from '@opsplane/models';
import { audited } from '../api/audit.js';
import { principalOf } from '../api/auth.js';
import type { RouteOptions } from '../api/context.js';
import { commonErrors, ErrorBodySchema, IdParamsSchema, iso, isoOrNull } from '../api/schemas/common.js';
import {
  AgentBundleSchema,
  DeploymentCreateSchema,
  DeploymentListQuerySchema,
  DeploymentListResponseSchema,
  DeploymentSchema,
  isFinished,
  RolloutSchema,
  type AgentBundle,
  type Deployment,
  type DeploymentLogLine,
  type DeploymentStatus,
  type Rollout,
} from '../api/schemas/deployments.js';
import type { DeploymentLogRow, DeploymentRow, RolloutRow } from '../db/schema.js';
import type { StoredBundle } from '../storage/agent-bundles.js';
import type { DeploymentService } from '../services/deployments.js';
import { DeviceNotFoundError } from '../services/install-targets.js';

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

const EventsQuerySchema = z
  .object({
    after: z
      .string()
      .regex(/^\d{1,15}$/)
      .transform(Number)
      .optional(),
  })
  .strict();

export const deploymentRoutes: FastifyPluginAsyncZod<
  RouteOptions & { deployments: DeploymentService }
> = async (app, { ctx, deployments: svc }) => {
  const { store } = ctx;

  const getRollout = async (id: string): Promise<Rollout> => {
    const found = await store.deployments.rollout(id);
    if (!found) throw new NotFoundError(`rollout ${id} not found`);
    return toRollout(found.rollout, found.deployments);
  };

  app.post(
    '/deployments',
    {
      config: { access: 'operator', action: 'deployment.create' },
      schema: {
        summary: 'Install, upgrade, restart or uninstall the agent on devices (a rollout)',
        description:
          'Creates one deployment per device — given as ids/names, an area, or every device in status new — and ' +
          'answers 202 with the rollout at once; the durable queue runs them, at most `batch_size` of this rollout ' +
          'at a time (default concurrency.max_workers). With `max_failures` the rollout stops (the rest are ' +
          'cancelled) once that many failed. Watch with GET /rollouts/{id} or /deployments/{id}/events.',
        tags: ['deployments'],
        body: DeploymentCreateSchema,
        response: {
          202: RolloutSchema,
          404: ErrorBodySchema,
          409: ErrorBodySchema,
          422: ErrorBodySchema,
          ...commonErrors,
        },
      },
    },
    async (req, reply) => {
      const p = principalOf(req);
      const body = req.body;
      const created = await audited(
        ctx,
        req,
        { action: `deployment.${body.type}`, targetType: 'rollout', details: { request: body } },
        async (tx, spec) => {
          const r = await svc.createRollout(tx, body, p.user.username);
          spec.targetId = r.rollout.id;
          spec.details = {
            ...spec.details,
            devices: r.deployments.map((d) => d.deviceName),
            version: r.rollout.version,
          };
          return r;
        },
      );
      svc.wake();
      return reply.code(202).send(toRollout(created.rollout, created.deployments));
    },
  );

  app.get(
    '/deployments',
    {
      schema: {
        summary: 'List deployments, newest first',
        tags: ['deployments'],
        querystring: DeploymentListQuerySchema,
        response: { 200: DeploymentListResponseSchema, ...commonErrors },
      },
    },
    async (req) => {
      const q = req.query;
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
    },
  );

  app.get(
    '/deployments/:id',
    {
      schema: {
        summary: 'One deployment with its steps and its whole log',
        tags: ['deployments'],
        params: IdParamsSchema,
        response: { 200: DeploymentSchema, 404: ErrorBodySchema, ...commonErrors },
      },
    },
    async (req) => {
      const d = await store.deployments.get(req.params.id);
      if (!d) throw new NotFoundError(`deployment ${req.params.id} not found`);
      return toDeployment(d, await store.deployments.logs(d.id));
    },
  );

  app.get(
    '/deployments/:id/events',
    {
      schema: {
        summary: 'Follow a deployment live (Server-Sent Events)',
        description:
          '`event: deployment` (the deployment without its log; first, and on every status or step change), ' +
          '`event: log` (id = seq; one log line), `event: end` (the finished deployment; then the stream closes). ' +
          'Resume after a log line with `?after=<seq>` or the Last-Event-ID header.',
        tags: ['deployments'],
        params: IdParamsSchema,
        querystring: EventsQuerySchema,
        produces: ['text/event-stream'],
        response: {
          200: z.string().describe('text/event-stream: `deployment`, `log` and `end` events (see above)'),
          404: ErrorBodySchema,
          503: ErrorBodySchema,
          ...commonErrors,
        },
      },
    },
    async (req, reply) => {
      const id = req.params.id;
      const first = await store.deployments.get(id);
      if (!first) throw new NotFoundError(`deployment ${id} not found`);
      if (svc.stopping) {
        // Not a 200 that ends at once: clients would take that for a finished stream.
        throw new OpsplaneError('shutting_down', 'the server is stopping; reconnect in a moment', {
          status: 503,
        });
      }
      const lastEventId = Number(req.headers['last-event-id']);
      let after = req.query.after ?? (Number.isInteger(lastEventId) ? lastEventId : 0);
      reply.hijack();
      const res = reply.raw;
      res.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-cache, no-transform',
        connection: 'keep-alive',
        'x-accel-buffering': 'no',
      });
      const send = (event: string, data: unknown, eventId?: number) =>
        res.write(
          `${eventId !== undefined ? `id: ${eventId}\n` : ''}event: ${event}\ndata: ${JSON.stringify(data)}\n\n`,
        );
      let closed = false;
      let wake: (() => void) | undefined;
      const onAny = (dep: string) => {
        if (dep === id) wake?.();
      };
      const onShutdown = () => {
        closed = true;
        wake?.();
      };
      svc.on('log', onAny);
      svc.on('change', onAny);
      svc.on('shutdown', onShutdown);
      req.raw.on('close', () => {
        closed = true;
        wake?.();
      });
      let lastShape = '';
      try {
        // The database is the source of truth (another server may run the deployment); local
        // events only make us look sooner.
        while (!closed && !svc.stopping) {
          const d = await store.deployments.get(id);
          if (!d) break;
          const shape = JSON.stringify([d.status, d.steps, d.cancelRequested]);
          if (shape !== lastShape) {
            lastShape = shape;
            send('deployment', toDeployment(d));
          }
          for (const line of await store.deployments.logs(id, after, 1000)) {
            send('log', toLogLine(line), line.id);
            after = line.id;
          }
          if (isFinished(d.status as DeploymentStatus)) {
            const rest = await store.deployments.logs(id, after, 10_000);
            for (const line of rest) send('log', toLogLine(line), line.id);
            send('end', toDeployment(d));
            break;
          }
          await new Promise<void>((resolve) => {
            const t = setTimeout(resolve, 1000);
            wake = () => {
              clearTimeout(t);
              resolve();
            };
          });
          wake = undefined;
          if (!closed) res.write(': keep-alive\n\n');
        }
      } catch (err) {
        req.log.warn({ err, deployment: id }, 'deployment event stream failed');
      } finally {
        svc.off('log', onAny);
        svc.off('change', onAny);
        svc.off('shutdown', onShutdown);
        res.end();
      }
    },
  );

  app.post(
    '/deployments/:id/cancel',
    {
      config: { access: 'operator', action: 'deployment.cancel' },
      schema: {
        summary: 'Cancel a deployment (queued: at once; running: between two steps)',
        tags: ['deployments'],
        params: IdParamsSchema,
        response: { 200: DeploymentSchema, 404: ErrorBodySchema, 409: ErrorBodySchema, ...commonErrors },
      },
    },
    async (req) => {
      const id = req.params.id;
      const cur = await store.deployments.get(id);
      if (!cur) throw new NotFoundError(`deployment ${id} not found`);
      if (isFinished(cur.status as DeploymentStatus))
        throw new ConflictError(`deployment ${id} already ${cur.status}`);
      await audited(ctx, req, { action: 'deployment.cancel', targetType: 'deployment', targetId: id }, (tx) =>
        tx.deployments.cancelDeployment(id, `cancelled by ${principalOf(req).user.username}`),
      );
      const d = await store.deployments.get(id);
      if (d && isFinished(d.status as DeploymentStatus)) await store.deployments.settleRollout(d.rolloutId);
      svc.emit('change', id);
      return toDeployment(d ?? cur);
    },
  );

  app.post(
    '/deployments/:id/retry',
    {
      config: { access: 'operator', action: 'deployment.retry' },
      schema: {
        summary: 'Run a failed or cancelled deployment again (as a new deployment)',
        tags: ['deployments'],
        params: IdParamsSchema,
        response: { 202: DeploymentSchema, 404: ErrorBodySchema, 409: ErrorBodySchema, ...commonErrors },
      },
    },
    async (req, reply) => {
      const id = req.params.id;
      const cur = await store.deployments.get(id);
      if (!cur) throw new NotFoundError(`deployment ${id} not found`);
      if (cur.status !== 'failed' && cur.status !== 'cancelled') {
        throw new ConflictError(
          `only a failed or cancelled deployment can be retried; ${id} is ${cur.status}`,
        );
      }
      if (!cur.deviceId) throw new DeviceNotFoundError(`the device of deployment ${id} was deleted`);
      const deviceId = cur.deviceId;
      const rollout = await store.deployments.rolloutOf(cur.rolloutId);
      const created = await audited(
        ctx,
        req,
        { action: 'deployment.retry', targetType: 'deployment', targetId: id },
        (tx) =>
          svc.createRollout(
            tx,
            {
              type: cur.type as Deployment['type'],
              devices: [deviceId],
              ...(cur.version ? { version: cur.version } : {}),
              batch_size: 1,
              accept_changed_host_key: rollout?.acceptChangedHostKey ?? false,
            },
            principalOf(req).user.username,
            id,
          ),
      );
      svc.wake();
      return reply.code(202).send(toDeployment(created.deployments[0]!));
    },
  );

  app.get(
    '/rollouts/:id',
    {
      schema: {
        summary: 'A rollout with the counts and every deployment of it',
        tags: ['deployments'],
        params: IdParamsSchema,
        response: { 200: RolloutSchema, 404: ErrorBodySchema, ...commonErrors },
      },
    },
    async (req) => getRollout(req.params.id),
  );

  app.post(
    '/rollouts/:id/cancel',
    {
      config: { access: 'operator', action: 'rollout.cancel' },
      schema: {
        summary: 'Cancel every unfinished deployment of a rollout',
        tags: ['deployments'],
        params: IdParamsSchema,
        response: { 200: RolloutSchema, 404: ErrorBodySchema, ...commonErrors },
      },
    },
    async (req) => {
      const id = req.params.id;
      const found = await store.deployments.rollout(id);
      if (!found) throw new NotFoundError(`rollout ${id} not found`);
      await audited(ctx, req, { action: 'rollout.cancel', targetType: 'rollout', targetId: id }, (tx) =>
        tx.deployments.cancelRollout(id, `cancelled by ${principalOf(req).user.username}`, 'cancelled'),
      );
      await store.deployments.settleRollout(id);
      for (const d of found.deployments) svc.emit('change', d.id);
      return getRollout(id);
    },
  );

  app.get(
    '/agent-bundles',
    {
      schema: {
        summary: 'Agent versions this server can deploy, newest first',
        tags: ['deployments'],
        response: { 200: z.object({ items: z.array(AgentBundleSchema) }), ...commonErrors },
      },
    },
    async () => {
      const all = await svc.bundles.list();
      return { items: all.map((b) => toBundle(b, all[0]?.version)) };
    },
  );

  // The body is the raw .tar.gz.
  app.addContentTypeParser(
    ['application/gzip', 'application/octet-stream'],
    { parseAs: 'buffer', bodyLimit: 256 * 1024 * 1024 },
    (_req, body, done) => done(null, body),
  );

  app.post(
    '/agent-bundles',
    {
      config: { access: 'admin', action: 'bundle.upload' },
      schema: {
        summary: 'Upload an agent bundle (opsplane-agent-<version>.tar.gz as the body)',
        description:
          'Validated (layout, manifest, checksums) before it is stored; a version is immutable once stored.',
        tags: ['deployments'],
        consumes: ['application/gzip'],
        response: { 201: AgentBundleSchema, 200: AgentBundleSchema, 409: ErrorBodySchema, ...commonErrors },
      },
    },
    async (req, reply) => {
      const body = req.body as unknown;
      if (!Buffer.isBuffer(body) || body.length === 0) {
        throw new ValidationError('send the bundle as the request body with content-type application/gzip');
      }
      const { bundle, created } = await audited(
        ctx,
        req,
        { action: 'bundle.upload', targetType: 'agent_bundle' },
        async (_tx, spec) => {
          const r = await svc.bundles.add(body);
          spec.targetId = r.bundle.version;
          spec.details = { sha256: r.bundle.sha256, bytes: r.bundle.bytes };
          return r;
        },
      );
      const newest = (await svc.bundles.list())[0]?.version;
      return reply.code(created ? 201 : 200).send(toBundle(bundle, newest));
    },
  );
};
