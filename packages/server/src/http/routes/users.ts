/** User management (admins) and changing one's own password (everyone): services/accounts.ts. */
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { ENDPOINTS } from '@opsplane/api';
import { principalOf } from '../auth.js';
import type { RouteOptions } from '../context.js';
import { endpointRoute } from '../route.js';

const E = ENDPOINTS.users;

export const userRoutes: FastifyPluginAsyncZod<RouteOptions> = async (app, { ctx }) => {
  const { accounts } = ctx;

  app.route({ ...endpointRoute(E.list), handler: async () => accounts.listUsers() });
  app.route({
    ...endpointRoute(E.create),
    handler: async (req, reply) =>
      reply.status(201).send(await accounts.createUser(principalOf(req), req.body)),
  });
  app.route({
    ...endpointRoute(E.changeOwnPassword),
    handler: async (req, reply) => {
      await accounts.changeOwnPassword(principalOf(req), req.body);
      return reply.status(204).send(null);
    },
  });
  app.route({
    ...endpointRoute(E.get),
    handler: async (req) => accounts.getUser(principalOf(req), req.params.id),
  });
  app.route({
    ...endpointRoute(E.update),
    handler: async (req) => accounts.updateUser(principalOf(req), req.params.id, req.body),
  });
  app.route({
    ...endpointRoute(E.delete),
    handler: async (req, reply) => {
      await accounts.deleteUser(principalOf(req), req.params.id);
      return reply.status(204).send(null);
    },
  });
};
