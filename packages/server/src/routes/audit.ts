/** Reading the audit log (every role may read; nobody may change it through the API). */
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type { RouteOptions } from '../api/context.js';
import { AuditListResponseSchema, AuditQuerySchema } from '../api/schemas/audit.js';
import { commonErrors } from '../api/schemas/common.js';

export const auditRoutes: FastifyPluginAsyncZod<RouteOptions> = async (app, { ctx }) => {
  app.get(
    '/audit',
    {
      config: { access: 'viewer' },
      schema: {
        summary: 'Audit log, newest first; filter by actor, action, target, result and time',
        tags: ['audit'],
        querystring: AuditQuerySchema,
        response: { 200: AuditListResponseSchema, ...commonErrors },
      },
    },
    async (req) => {
      const { entries, total } = await ctx.store.audit.list(req.query);
      return { entries, total, page: req.query.page, pageSize: req.query.pageSize };
    },
  );
};
