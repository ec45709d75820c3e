/** Reading the audit log (every role may read; nobody may change it through the API). */
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type { RouteOptions } from '../context.js';
import { AuditListResponseSchema, AuditQuerySchema, commonErrors } from '@opsplane/api';

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
