/**
 * POST /api/v1/agents/batch/{start,stop,restart,configs}: validated at the boundary with the
 * models' request schemas (so `configs.0.file_name: '../x'` is a 400 naming the field before any
 * agent hears of it), then handed to the BatchDispatcher.
 */
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import {
  BATCH_ACTIONS,
  batchResult,
  failedResults,
  BatchConfigRequestSchema,
  BatchOperationRequestSchema,
  BatchOperationResultSchema,
  ErrorBodySchema,
} from '@opsplane/models';
import type { RouteOptions } from '../context.js';
import { isForwarded } from './agent-target.js';

const errors = { 400: ErrorBodySchema, 401: ErrorBodySchema, 413: ErrorBodySchema };

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
            `including agents that are unknown, offline or time out. At most ${max} agents per request.`,
          body: BatchOperationRequestSchema,
          response: { 200: BatchOperationResultSchema, ...errors },
        },
      },
      async (req) =>
        ctx.dispatcher.run(
          req.body.agents,
          { op: 'action', action, packages: req.body.packages },
          isForwarded(req),
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
          "`success: false, error: 'no_configs: …'`, writing nothing.",
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
        );
        return batchResult(results, 0);
      }
      return ctx.dispatcher.run(
        agents,
        { op: 'configs', package: pkg, configs, config_file },
        isForwarded(req),
      );
    },
  );
};
