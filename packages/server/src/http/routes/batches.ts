/**
 * Cross-area batch jobs: POST /batches starts start/stop/restart/configs for a list of agent
 * codes or a filter over the aggregated view (services/batch-runner.ts) and answers 201 with the
 * finished job and one result per (agent, package) when it completes within `wait` (default
 * server.batch_wait), else 202 with the running job — poll GET /batches/{id}. The batch runs to
 * the end either way; a client that goes away does not cancel it. Operators and admins may run
 * batches; everyone may read them.
 */
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { NotFoundError, OpsplaneError } from '@opsplane/models';
import { actorOf } from '../audit.js';
import { principalOf } from '../auth.js';
import type { RouteOptions } from '../context.js';
import {
  BatchCreateQuerySchema,
  BatchCreateSchema,
  BatchJobSchema,
  BatchListQuerySchema,
  BatchListResponseSchema,
  ErrorBodySchema,
  IdParamsSchema,
  commonErrors,
  iso,
  isoOrNull,
  type BatchJob,
  type BatchResult,
} from '@opsplane/api';
import type { BatchJobRow, BatchResultRow } from '../../storage/schema.js';

export function toBatchJob(j: BatchJobRow, results?: BatchResultRow[]): BatchJob {
  return {
    id: j.id,
    action: j.action,
    status: j.status as BatchJob['status'],
    requested_by: j.requestedBy,
    request: j.request,
    total: j.total,
    success: j.success,
    failed: j.failed,
    created_at: iso(j.createdAt),
    finished_at: isoOrNull(j.finishedAt),
    duration_ms: j.durationMs,
    ...(results
      ? {
          results: results.map((r): BatchResult => ({
            agent_code: r.agentCode,
            package: r.package,
            area: r.area,
            success: r.success,
            ...(r.error !== null ? { error: r.error } : {}),
            ...(r.message !== null ? { message: r.message } : {}),
          })),
        }
      : {}),
  };
}

export const batchRoutes: FastifyPluginAsyncZod<RouteOptions> = async (app, { ctx }) => {
  const { store, platform } = ctx;

  app.post(
    '/batches',
    {
      config: { access: 'operator', action: 'batch.create' },
      schema: {
        summary: 'Start/stop/restart packages or push configs on agents of any area, as a recorded job',
        description:
          'Agents are given as codes (`agents`) or selected from the aggregated view (`filter`). They are grouped ' +
          'by area (device function_area, else the area the view saw them in) and the areas run concurrently. ' +
          'The job holds exactly one result per (agent, package), also for agents whose area has no online ' +
          'controller or whose controller failed (with the reason). 201: finished within `wait`, with results; ' +
          '202: still running — poll GET /batches/{id}.',
        tags: ['batches'],
        querystring: BatchCreateQuerySchema,
        body: BatchCreateSchema,
        response: { 201: BatchJobSchema, 202: BatchJobSchema, ...commonErrors },
      },
    },
    async (req, reply) => {
      const p = principalOf(req);
      const body = req.body;
      const action = `batch.${body.action}`;
      let started;
      try {
        started = await platform.batches.start(body, p.user.username);
      } catch (e) {
        await store.audit
          .record({
            ...actorOf(req),
            action,
            targetType: 'batch',
            result: 'failure',
            details: {
              agents: body.agents?.length ?? null,
              filter: body.filter ?? null,
              ...(e instanceof OpsplaneError ? { error: e.code, message: e.message } : { error: 'internal' }),
            },
          })
          .catch((err: unknown) => req.log.error({ err }, 'could not audit a failed batch'));
        throw e;
      }
      const { job, agents, done } = started;
      await store.audit.record({
        ...actorOf(req),
        action,
        targetType: 'batch',
        targetId: job.id,
        result: 'success',
        details: {
          agents,
          ...(body.filter ? { filter: body.filter } : {}),
          ...(body.packages ? { packages: body.packages } : {}),
          ...(body.package ? { package: body.package } : {}),
          ...(body.configs ? { config_files: body.configs.map((c) => c.file_name) } : {}),
        },
      });
      const waitMs = req.query.wait ?? ctx.config.server.batch_wait;
      let timer: NodeJS.Timeout | undefined;
      const finished = await Promise.race([
        done.then(() => true),
        new Promise<false>((resolve) => {
          timer = setTimeout(() => resolve(false), waitMs);
        }),
      ]).finally(() => clearTimeout(timer));
      const current = await store.batches.get(job.id);
      if (!current) throw new NotFoundError(`batch ${job.id} vanished`);
      reply.header('location', `/api/v1/batches/${job.id}`);
      if (finished && current.job.status !== 'running') {
        return reply.status(201).send(toBatchJob(current.job, current.results));
      }
      return reply.status(202).send(toBatchJob(current.job));
    },
  );

  app.get(
    '/batches',
    {
      config: { access: 'viewer' },
      schema: {
        summary: 'Batch jobs, newest first (without their results)',
        tags: ['batches'],
        querystring: BatchListQuerySchema,
        response: { 200: BatchListResponseSchema, ...commonErrors },
      },
    },
    async (req) => {
      const q = req.query;
      const { jobs, total } = await store.batches.list({
        page: q.page,
        pageSize: q.pageSize,
        action: q.action,
        status: q.status,
        requestedBy: q.requested_by,
      });
      return { batches: jobs.map((j) => toBatchJob(j)), total, page: q.page, pageSize: q.pageSize };
    },
  );

  app.get(
    '/batches/:id',
    {
      config: { access: 'viewer' },
      schema: {
        summary: 'One batch job with every (agent, package) result',
        tags: ['batches'],
        params: IdParamsSchema,
        response: { 200: BatchJobSchema, ...commonErrors, 404: ErrorBodySchema },
      },
    },
    async (req) => {
      const found = await store.batches.get(req.params.id);
      if (!found) throw new NotFoundError(`batch ${req.params.id} not found`);
      return toBatchJob(found.job, found.results);
    },
  );
};
