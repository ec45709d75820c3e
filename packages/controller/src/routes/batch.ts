/**
 * POST /api/v1/agents/batch/{start,stop,restart,configs}: validated at the boundary with the
 * models' request schemas (so `configs.0.file_name: '../x'` is a 400 naming the field before any
 * agent hears of it), then handed to the BatchDispatcher under an operation id: the body's
 * `operation_id`, else the `Idempotency-Key` header, else a fresh one. Agents journal it, so a
 * caller that sends the same id (or key) again — after a lost answer, a dead controller — never
 * acts twice; a caller that sends none (the Go client) gets today's behaviour: each call acts.
 *
 * POST /api/v1/agents/operations: what the agents' journals say about an operation id.
 */
import { randomUUID } from 'node:crypto';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type { FastifyRequest } from 'fastify';
import {
  BATCH_ACTIONS,
  batchResult,
  failedResults,
  BatchConfigRequestSchema,
  BatchOperationRequestSchema,
  BatchOperationResultSchema,
  ErrorBodySchema,
  OperationIdSchema,
  OperationQueryRequestSchema,
  OperationQueryResultSchema,
  ValidationError,
  formatIssues,
} from '@opsplane/models';
import type { RouteOptions } from '../context.js';
import { isForwarded } from './agent-target.js';

const errors = { 400: ErrorBodySchema, 401: ErrorBodySchema, 413: ErrorBodySchema };

export const IDEMPOTENCY_KEY_HEADER = 'idempotency-key';

/** The batch's operation id: body, then Idempotency-Key, then a new one. */
function operationIdOf(req: FastifyRequest, fromBody: string | undefined): string {
  if (fromBody !== undefined) return fromBody;
  const key = req.headers[IDEMPOTENCY_KEY_HEADER];
  if (typeof key === 'string' && key !== '') {
    const parsed = OperationIdSchema.safeParse(key);
    if (!parsed.success) {
      throw new ValidationError(`Idempotency-Key: ${formatIssues(parsed.error.issues)}`, parsed.error.issues);
    }
    return parsed.data;
  }
  return `ctl-${randomUUID()}`;
}

const operationDocs =
  'Send an `operation_id` (or an `Idempotency-Key` header) to make retries safe: agents journal ' +
  'it and never act twice on the same id — a repeat answers the recorded result (`replayed`). ' +
  'Each result has a `reason`: done, failed_on_agent, interrupted, not_delivered, outcome_unknown.';

export const batchRoutes: FastifyPluginAsyncZod<RouteOptions> = async (app, { ctx }) => {
  const max = ctx.config.batch.maxAgents;
  for (const action of BATCH_ACTIONS) {
    app.post(
      `/agents/batch/${action}`,
      {
        schema: {
          tags: ['batch'],
          summary: `${action[0]?.toUpperCase()}${action.slice(1)} packages on many agents`,
          description:
            `Empty or absent \`packages\` = every package of each agent. One result per (agent, package), ` +
            `including agents that are unknown, offline or time out. At most ${max} agents per request. ` +
            operationDocs,
          body: BatchOperationRequestSchema,
          response: { 200: BatchOperationResultSchema, ...errors },
        },
      },
      async (req) =>
        ctx.dispatcher.run(
          req.body.agents,
          { op: 'action', action, packages: req.body.packages },
          {
            forwarded: isForwarded(req),
            operationId: operationIdOf(req, req.body.operation_id),
            timeoutMs: req.body.timeout_ms,
          },
        ),
    );
  }

  app.post(
    '/agents/batch/configs',
    {
      schema: {
        tags: ['batch'],
        summary: "Write config files into one package's config directory on many agents",
        description:
          `file_name must be a plain file name (no path, no '..', not hidden). At most ${max} agents per request. ` +
          '`configs: null` or `[]` (what the Go client sends for no files) is answered per agent with ' +
          "`success: false, error: 'no_configs: …'`, writing nothing. " +
          operationDocs,
        body: BatchConfigRequestSchema,
        response: { 200: BatchOperationResultSchema, ...errors },
      },
    },
    async (req) => {
      const { agents, package: pkg, configs, config_file } = req.body;
      if (configs.length === 0) {
        const results = failedResults(
          [...new Set(agents)],
          [pkg],
          'no_configs: the request has no config files (configs is null or empty); nothing was written',
          'not_delivered',
          { operation_id: operationIdOf(req, req.body.operation_id) },
        );
        return batchResult(results, 0);
      }
      return ctx.dispatcher.run(
        agents,
        { op: 'configs', package: pkg, configs, config_file },
        {
          forwarded: isForwarded(req),
          operationId: operationIdOf(req, req.body.operation_id),
          timeoutMs: req.body.timeout_ms,
        },
      );
    },
  );

  app.post(
    '/agents/operations',
    {
      schema: {
        tags: ['batch'],
        summary: "What the agents' journals say about an operation id (never acts)",
        description:
          'Per agent and package: in_flight, done or interrupted (with the recorded result), unknown (the ' +
          'agent has no record of it: it never reached the agent), or unreachable (no controller of the ' +
          'area holds the agent now).',
        body: OperationQueryRequestSchema,
        response: { 200: OperationQueryResultSchema, ...errors },
      },
    },
    async (req) => ({
      operation_id: req.body.operation_id,
      entries: await ctx.dispatcher.query(
        req.body.agents,
        req.body.operation_id,
        req.body.packages,
        isForwarded(req),
      ),
    }),
  );
};
