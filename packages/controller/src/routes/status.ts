/** GET /api/v1/status — who this controller is and how many agents it holds. */
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { ControllerStatusResponseSchema, ErrorBodySchema } from '@opsplane/models';
import type { RouteOptions } from '../context.js';

export const statusRoutes: FastifyPluginAsyncZod<RouteOptions> = async (app, { ctx }) => {
  app.get(
    '/status',
    {
      schema: {
        tags: ['controller'],
        summary: 'Controller identity, version and agent counts',
        description:
          'agent_count counts the agents listed by GET /agents (connected plus recently offline); online_agent_count only the connected ones.',
        response: { 200: ControllerStatusResponseSchema, 401: ErrorBodySchema },
      },
    },
    async () => ({
      id: ctx.config.id,
      area: ctx.config.area,
      version: ctx.version,
      start_time: new Date(ctx.startTimeMs).toISOString(),
      agent_count: ctx.registry.size,
      online_agent_count: ctx.registry.connectedCount,
      uptime_seconds: Math.round((Date.now() - ctx.startTimeMs) / 1000),
      address: ctx.advertisedAddress(),
    }),
  );
};
