/** Reading the audit log (every role may read; nobody may change it through the API). */
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { ENDPOINTS } from '@opsplane/api';
import type { RouteOptions } from '../context.js';
import { endpointRoute } from '../route.js';

export const auditRoutes: FastifyPluginAsyncZod<RouteOptions> = async (app, { ctx }) => {
  app.route({ ...endpointRoute(ENDPOINTS.audit.list), handler: async (req) => ctx.audit.list(req.query) });
};
