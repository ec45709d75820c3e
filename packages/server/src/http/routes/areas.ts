/** Areas and their write-only credentials (services/areas.ts). */
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { ENDPOINTS } from '@opsplane/api';
import { principalOf } from '../auth.js';
import type { RouteOptions } from '../context.js';
import { endpointRoute } from '../route.js';

const E = ENDPOINTS.areas;

export const areaRoutes: FastifyPluginAsyncZod<RouteOptions> = async (app, { ctx }) => {
  const { areas } = ctx;
  app.route({ ...endpointRoute(E.list), handler: async () => areas.list() });
  app.route({
    ...endpointRoute(E.setCredentials),
    handler: async (req) => areas.setCredentials(principalOf(req), req.params.area, req.body),
  });
};
