/**
 * GET /api/v1/agents (list of the agents this controller knows — the platform merges the
 * controllers of an area) and GET /api/v1/agents/{agent_id} (forwarded to the peer that holds
 * the agent when it is not connected here).
 */
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import {
  AGENT_CONNECT_PATH,
  AGENT_FILTER_KEYS,
  AgentListQuerySchema,
  AgentNotFoundError,
  AgentSchema,
  AgentsResponseSchema,
  ErrorBodySchema,
  OpsplaneError,
  type AgentFilters,
  type AgentListQuery,
} from '@opsplane/models';
import type { RouteOptions } from '../context.js';
import { AgentParamsSchema, onAgent } from './agent-target.js';

const errors = { 400: ErrorBodySchema, 401: ErrorBodySchema, 404: ErrorBodySchema, 503: ErrorBodySchema };

export const agentRoutes: FastifyPluginAsyncZod<RouteOptions> = async (app, { ctx }) => {
  app.get(
    '/agents',
    {
      schema: {
        tags: ['agents'],
        summary: 'List the agents this controller knows',
        description:
          'Paginated with `page` (from 1) and `pageSize` (camelCase). Filters match exactly: ' +
          `${AGENT_FILTER_KEYS.join(', ')}. Any other parameter (e.g. page_size) is a 400 unknown_parameter.`,
        querystring: AgentListQuerySchema,
        response: { 200: AgentsResponseSchema, ...errors },
      },
    },
    async (req) => {
      const q = req.query as AgentListQuery;
      const filters: AgentFilters = {};
      for (const k of AGENT_FILTER_KEYS) if (q[k] !== undefined) filters[k] = q[k];
      const { agents, total } = ctx.registry.list(filters, q.page, q.pageSize);
      return { agents, total, page: q.page, pageSize: q.pageSize };
    },
  );

  // The agent WebSocket lives at this path; a plain GET gets a clear answer instead of "agent 'connect' not found".
  app.get(AGENT_CONNECT_PATH.replace('/api/v1', ''), { schema: { hide: true } }, async () => {
    throw new OpsplaneError(
      'bad_request',
      'this is the agent WebSocket endpoint; connect with a WebSocket upgrade',
      {
        status: 426,
      },
    );
  });

  app.get(
    '/agents/:agent_id',
    {
      schema: {
        tags: ['agents'],
        summary: 'One agent',
        description: 'Answered by the controller of the area that holds the agent (forwarded if needed).',
        params: AgentParamsSchema,
        response: { 200: AgentSchema, ...errors },
      },
    },
    async (req, reply) => {
      const id = req.params.agent_id;
      const r = await onAgent(
        ctx,
        req,
        reply,
        id,
        async () => {
          const rec = ctx.registry.get(id);
          if (!rec) throw new AgentNotFoundError(id);
          return ctx.registry.toAgent(rec);
        },
        (rec) => ctx.registry.toAgent(rec),
      );
      return r.kind === 'value' ? r.value : reply;
    },
  );
};
