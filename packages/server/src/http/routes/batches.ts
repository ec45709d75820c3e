/**
 * Cross-area batch jobs (services/batches.ts): 201 with the finished job and one result per
 * (agent, package) when it completes within `wait` (default server.batch_wait), else 202 with
 * the running job — poll GET /batches/{id}.
 */
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { API_PREFIX, ENDPOINTS } from '@opsplane/api';
import { principalOf } from '../auth.js';
import type { RouteOptions } from '../context.js';
import { endpointRoute } from '../route.js';
import { resumeAfter, streamEvents } from '../sse.js';

const E = ENDPOINTS.batches;

export const batchRoutes: FastifyPluginAsyncZod<RouteOptions> = async (app, { ctx }) => {
  const { batches } = ctx;
  app.route({
    ...endpointRoute(E.create),
    handler: async (req, reply) => {
      const { finished, job } = await batches.create(
        principalOf(req),
        req.body,
        req.query.wait ?? ctx.config.server.batch_wait,
      );
      reply.header('location', `${API_PREFIX}/batches/${job.id}`);
      return reply.status(finished ? 201 : 202).send(job);
    },
  });
  app.route({ ...endpointRoute(E.list), handler: async (req) => batches.list(req.query) });
  app.route({ ...endpointRoute(E.get), handler: async (req) => batches.get(req.params.id) });
  app.route({
    ...endpointRoute(E.events),
    handler: async (req, reply) =>
      streamEvents(req, reply, (signal) =>
        batches.follow(req.params.id, resumeAfter(req, req.query.after), signal),
      ),
  });
};
