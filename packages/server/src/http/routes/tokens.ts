/** API tokens: list, create (the secret is in that answer only), revoke — services/api-tokens.ts. */
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { ENDPOINTS } from '@opsplane/api';
import { principalOf } from '../auth.js';
import type { RouteOptions } from '../context.js';
import { endpointRoute } from '../route.js';

const E = ENDPOINTS.tokens;

export const tokenRoutes: FastifyPluginAsyncZod<RouteOptions> = async (app, { ctx }) => {
  const { tokens } = ctx;

  app.route({
    ...endpointRoute(E.list),
    handler: async (req) => tokens.list(principalOf(req), req.query.all),
  });
  app.route({
    ...endpointRoute(E.create),
    handler: async (req, reply) => reply.status(201).send(await tokens.create(principalOf(req), req.body)),
  });
  app.route({
    ...endpointRoute(E.revoke),
    handler: async (req, reply) => {
      await tokens.revoke(principalOf(req), req.params.id);
      return reply.status(204).send(null);
    },
  });
};
