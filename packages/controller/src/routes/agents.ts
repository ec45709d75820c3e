/**
 * GET /api/v1/agents — every agent of the area, as a Go controller answers: the agents this
 * controller knows merged with its online peers' (peer-agents.ts; dedupe by id, newest heartbeat
 * wins), then filtered with Go's semantics (agent-filter.ts) and paged. A forwarded request
 * (`x-opsplane-forwarded`, from a peer) is answered with this controller's own agents only.
 * GET /api/v1/agents/{agent_id} is forwarded to the peer that holds the agent when it is not
 * connected here.
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
  paginate,
  type AgentFilters,
  type AgentListQuery,
} from '@opsplane/models';
import { AgentFilter } from '../agent-filter.js';
import { mergeAgents } from '../peer-agents.js';
import type { RouteOptions } from '../context.js';
import { AgentParamsSchema, isForwarded, onAgent } from './agent-target.js';

/** Response header naming the peers whose agents are missing from a list (unreachable). */
export const PARTIAL_HEADER = 'x-opsplane-partial';

const errors = { 400: ErrorBodySchema, 401: ErrorBodySchema, 404: ErrorBodySchema, 503: ErrorBodySchema };

export const agentRoutes: FastifyPluginAsyncZod<RouteOptions> = async (app, { ctx }) => {
  app.get(
    '/agents',
    {
      schema: {
        tags: ['agents'],
        summary: 'List the agents of the area (this controller’s and its peers’)',
        description:
          'Paginated with `page` (from 1) and `pageSize` (camelCase). Filters, as the Go controller: ' +
          '`address` and `hostname` are case-insensitive regular expressions matched anywhere (RE2 syntax), ' +
          `the others (${AGENT_FILTER_KEYS.filter((k) => k !== 'address' && k !== 'hostname').join(', ')}) match exactly. ` +
          'Any other parameter (e.g. page_size) is a 400 unknown_parameter. Peers that could not be listed ' +
          `are named in the ${PARTIAL_HEADER} header.`,
        querystring: AgentListQuerySchema,
        response: { 200: AgentsResponseSchema, ...errors },
      },
    },
    async (req, reply) => {
      const q = req.query as AgentListQuery;
      const filters: AgentFilters = {};
      for (const k of AGENT_FILTER_KEYS) if (q[k] !== undefined) filters[k] = q[k];
      const filter = AgentFilter.compile(filters);
      const peers = ctx.peerAgents;
      if (!peers || isForwarded(req) || !peers.hasPeers()) {
        const { agents, total } = ctx.registry.list(filter, q.page, q.pageSize);
        return { agents, total, page: q.page, pageSize: q.pageSize };
      }
      const fromPeers = await peers.collect();
      if (fromPeers.failed.length > 0)
        reply.header(PARTIAL_HEADER, fromPeers.failed.map((f) => f.peer).join(','));
      const all = mergeAgents(ctx.registry.all(), fromPeers.agents).filter((a) => filter.matchesAgent(a));
      return {
        agents: paginate(all, q.page, q.pageSize),
        total: all.length,
        page: q.page,
        pageSize: q.pageSize,
      };
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
