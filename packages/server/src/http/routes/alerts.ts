/** Alerts: list, one alert, acknowledge (services/alerts.ts). */
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { ENDPOINTS } from '@opsplane/api';
import { actorOf } from '../auth.js';
import type { RouteOptions } from '../context.js';
import { endpointRoute } from '../route.js';

const E = ENDPOINTS.alerts;

export const alertRoutes: FastifyPluginAsyncZod<RouteOptions> = async (app, { ctx }) => {
  const { alerts } = ctx;
  app.route({ ...endpointRoute(E.list), handler: async (req) => alerts.list(req.query) });
  app.route({ ...endpointRoute(E.get), handler: async (req) => alerts.get(req.params.id) });
  app.route({
    ...endpointRoute(E.acknowledge),
    handler: async (req) => alerts.acknowledge(actorOf(req), req.params.id),
  });
};
