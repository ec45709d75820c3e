/** GET /api/v1/status — who this controller is and how many agents it holds. */
import { hostname, platform } from 'node:os';
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
          'agent_count counts the agents this controller knows (connected plus recently offline); online_agent_count only the connected ones. ' +
          "controller_id, function_area, system_info and etcd_status are the Go controller's keys for the same facts.",
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
      // The Go controller's names for the same facts.
      controller_id: ctx.config.id,
      function_area: ctx.config.area,
      system_info: { hostname: hostname(), os: platform() },
      etcd_status: ctx.isRegistered() ? 'connected' : 'disconnected',
    }),
  );
};
