/** Controllers: live from discovery, and their history (services/controllers.ts). */
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { ENDPOINTS } from '@opsplane/api';
import type { RouteOptions } from '../context.js';
import { endpointRoute } from '../route.js';

const E = ENDPOINTS.controllers;

export const controllerRoutes: FastifyPluginAsyncZod<RouteOptions> = async (app, { ctx }) => {
  const { controllers } = ctx;
  app.route({ ...endpointRoute(E.list), handler: async (req) => controllers.list(req.query) });
  app.route({ ...endpointRoute(E.history), handler: async (req) => controllers.history(req.query) });
};
