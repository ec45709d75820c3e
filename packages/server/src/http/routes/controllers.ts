/**
 * Controllers: the live list from discovery (with what the last agent-view refresh got from
 * each) and the persisted history of when each controller came and went. Read-only, any role.
 */
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type { RouteOptions } from '../context.js';
import {
  ControllerHistoryQuerySchema,
  ControllerHistoryResponseSchema,
  ControllerListQuerySchema,
  ControllerListResponseSchema,
  commonErrors,
  iso,
  isoOrNull,
  type LiveController,
} from '@opsplane/api';

export const controllerRoutes: FastifyPluginAsyncZod<RouteOptions> = async (app, { ctx }) => {
  const { platform } = ctx;

  app.get(
    '/controllers',
    {
      config: { access: 'viewer' },
      schema: {
        summary: 'Controllers registered in etcd now (live, from discovery)',
        description:
          'status comes from the heartbeat; listed_agents / last_error say what the last refresh of the ' +
          'agent view got from each controller. `discovery.synced` is false while etcd has not been read.',
        tags: ['controllers'],
        querystring: ControllerListQuerySchema,
        response: { 200: ControllerListResponseSchema, ...commonErrors },
      },
    },
    async (req) => {
      const controllers: LiveController[] = platform
        .listControllers()
        .filter(
          (c) =>
            (!req.query.area || c.area === req.query.area) &&
            (!req.query.status || c.status === req.query.status),
        )
        .map((c) => {
          const listing = platform.view.listingOf(`${c.area}/${c.id}`);
          return {
            area: c.area,
            id: c.id,
            address: c.address,
            status: c.status,
            version: c.version,
            agent_count: c.agent_count,
            last_heartbeat: c.last_heartbeat,
            start_time: c.start_time,
            metadata: c.metadata,
            listed_agents: listing?.listed ?? null,
            last_error: listing?.error ?? null,
          };
        });
      return { controllers, total: controllers.length, discovery: platform.discoveryState() };
    },
  );

  app.get(
    '/controllers/history',
    {
      config: { access: 'viewer' },
      schema: {
        summary: 'When each controller came and went (newest first)',
        tags: ['controllers'],
        querystring: ControllerHistoryQuerySchema,
        response: { 200: ControllerHistoryResponseSchema, ...commonErrors },
      },
    },
    async (req) => {
      await platform.tracker.flush();
      const rows = await ctx.store.controllersHistory.list({
        ...(req.query.area ? { area: req.query.area } : {}),
        ...(req.query.controller_id ? { controllerId: req.query.controller_id } : {}),
        limit: req.query.limit,
      });
      return {
        history: rows.map((r) => ({
          id: r.id,
          area: r.area,
          controller_id: r.controllerId,
          address: r.address,
          version: r.version,
          came_at: iso(r.cameAt),
          went_at: isoOrNull(r.wentAt),
          last_seen_at: iso(r.lastSeenAt),
        })),
      };
    },
  );
};
