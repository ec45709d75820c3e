/** Alerts: list, one alert, acknowledge; silences (services/alerts.ts). */
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { ENDPOINTS } from '@opsplane/api';
import { principalOf } from '../auth.js';
import type { RouteOptions } from '../context.js';
import { endpointRoute } from '../route.js';

const E = ENDPOINTS.alerts;
const S = ENDPOINTS.silences;

export const alertRoutes: FastifyPluginAsyncZod<RouteOptions> = async (app, { ctx }) => {
  const { alerts } = ctx;
  app.route({ ...endpointRoute(E.list), handler: async (req) => alerts.list(req.query) });
  app.route({ ...endpointRoute(E.get), handler: async (req) => alerts.get(req.params.id) });
  app.route({
    ...endpointRoute(E.acknowledge),
    handler: async (req) => alerts.acknowledge(principalOf(req), req.params.id),
  });
  app.route({ ...endpointRoute(S.list), handler: async (req) => alerts.silences(req.query.all) });
  app.route({
    ...endpointRoute(S.create),
    handler: async (req, reply) =>
      reply.status(201).send(await alerts.createSilence(principalOf(req), req.body)),
  });
  app.route({
    ...endpointRoute(S.expire),
    handler: async (req) => alerts.expireSilence(principalOf(req), req.params.id),
  });
};
