/**
 * Agents: the aggregated view across every controller of every area (filter, search, sort,
 * paginate — served from memory, see services/fleet-view.ts), one agent by code (device → area
 * → controllers of the area → agent, joined with the device), and its packages, health and
 * metrics through the controller that holds it. Read-only; `refresh=true` (rebuild the view
 * before answering) needs an operator.
 */
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import {
  ForbiddenError,
  AgentHealthSchema,
  ServiceMetricsSchema,
  SystemMetricsSchema,
} from '@opsplane/models';
import { AgentPackagesResponseSchema } from '@opsplane/platform';
import { principalOf } from '../auth.js';
import type { RouteOptions } from '../context.js';
import {
  AgentCodeParamsSchema,
  AgentDetailSchema,
  AgentListQuerySchema,
  AgentListResponseSchema,
  ErrorBodySchema,
  ServiceMetricsQuerySchema,
  commonErrors,
  roleAtLeast,
  type AgentDetail,
  type AgentSortField,
} from '@opsplane/api';
import { toAgentView } from '../../services/fleet-view.js';

const errors = {
  ...commonErrors,
  404: ErrorBodySchema,
  502: ErrorBodySchema,
  503: ErrorBodySchema,
  504: ErrorBodySchema,
};

export const agentRoutes: FastifyPluginAsyncZod<RouteOptions> = async (app, { ctx }) => {
  const { platform } = ctx;

  app.get(
    '/agents',
    {
      config: { access: 'viewer' },
      schema: {
        summary: 'Every agent of every area (aggregated view): filter, search (q), sort, paginate',
        description:
          'Served from the in-memory view the server keeps warm (rebuilt every server.agents_refresh_interval ' +
          'and whenever controllers come, go or change). `errors` lists the controllers or areas the last ' +
          'refresh could not list; `stale` says the view is older than cache.agent_ttl or discovery is not ' +
          'synced. Operators may pass refresh=true to rebuild it first.',
        tags: ['agents'],
        querystring: AgentListQuerySchema,
        response: { 200: AgentListResponseSchema, ...commonErrors },
      },
    },
    async (req) => {
      const q = req.query;
      if (q.refresh) {
        const p = principalOf(req);
        if (!roleAtLeast(p.role, 'operator'))
          throw new ForbiddenError(`refresh=true needs the operator role; you act as ${p.role}`);
        await platform.view.refresh().catch((err: unknown) => req.log.warn({ err }, 'forced refresh failed'));
      }
      const desc = q.sort.startsWith('-') ? true : q.order === 'desc';
      const sort = q.sort.replace(/^-/, '') as AgentSortField;
      const r = platform.view.query({ ...q, sort, desc });
      return {
        agents: r.agents,
        total: r.total,
        page: q.page,
        pageSize: q.pageSize,
        refreshed_at: r.refreshedAt?.toISOString() ?? null,
        stale: r.stale,
        refreshing: r.refreshing,
        errors: r.errors,
      };
    },
  );

  app.get(
    '/agents/by-code/:code',
    {
      config: { access: 'viewer' },
      schema: {
        summary: "One agent, live from its controller, joined with its device (the guide's GetAgentByCode)",
        description:
          "device (by agent code) → its function_area → the area's online controllers → the agent. Agents " +
          'without a device are found through the area the aggregated view saw them in. 404 agent_not_found ' +
          'when neither knows the code or no controller of the area knows the agent; 503 when the area has no ' +
          'online controller; 504 on timeout; 502 when a controller fails or rejects the credentials.',
        tags: ['agents'],
        params: AgentCodeParamsSchema,
        response: { 200: AgentDetailSchema, ...errors },
      },
    },
    async (req): Promise<AgentDetail> => {
      const { value, location, controller } = await platform.onAgent(req.params.code, (c, signal) =>
        c.getAgent(req.params.code, signal),
      );
      const view = toAgentView(
        {
          id: value.id,
          agent_code: value.agent_code || value.id,
          area: location.area,
          controller_id: value.controller_id || controller.controller.id,
          address: value.address,
          hostname: value.hostname,
          status: value.status,
          health_status: value.health_status,
          service_count: value.services.length,
          last_heartbeat: value.last_heartbeat,
          version: value.version,
          agent: value,
        },
        location.device
          ? {
              id: location.device.id,
              name: location.device.name,
              area: location.device.function_area,
              ip: location.device.ip,
            }
          : undefined,
      );
      return { ...view, device: location.device ?? null };
    },
  );

  const passthrough = {
    config: { access: 'viewer' as const },
    tags: ['agents'],
  };

  app.get(
    '/agents/:code/packages',
    {
      config: passthrough.config,
      schema: {
        summary: "The agent's packages, from the controller that holds it",
        tags: passthrough.tags,
        params: AgentCodeParamsSchema,
        response: { 200: AgentPackagesResponseSchema, ...errors },
      },
    },
    async (req) =>
      (await platform.onAgent(req.params.code, (c, s) => c.getAgentPackages(req.params.code, s))).value,
  );

  app.get(
    '/agents/:code/health',
    {
      config: passthrough.config,
      schema: {
        summary: "The agent's health (overall and per package), from its controller",
        tags: passthrough.tags,
        params: AgentCodeParamsSchema,
        response: { 200: AgentHealthSchema, ...errors },
      },
    },
    async (req) =>
      (await platform.onAgent(req.params.code, (c, s) => c.getAgentHealth(req.params.code, s))).value,
  );

  app.get(
    '/agents/:code/metrics/system',
    {
      config: passthrough.config,
      schema: {
        summary: "The agent host's system metrics (cpu, load, memory, disks, network), from its controller",
        tags: passthrough.tags,
        params: AgentCodeParamsSchema,
        response: { 200: SystemMetricsSchema, ...errors },
      },
    },
    async (req) =>
      (await platform.onAgent(req.params.code, (c, s) => c.getSystemMetrics(req.params.code, s))).value,
  );

  app.get(
    '/agents/:code/metrics/services',
    {
      config: passthrough.config,
      schema: {
        summary: 'Per-package metrics of the agent (cpu, rss, restarts, uptime, pid), from its controller',
        tags: passthrough.tags,
        params: AgentCodeParamsSchema,
        querystring: ServiceMetricsQuerySchema,
        response: { 200: ServiceMetricsSchema, ...errors },
      },
    },
    async (req) =>
      (
        await platform.onAgent(req.params.code, (c, s) =>
          c.getServiceMetrics(
            req.params.code,
            {
              ...(req.query.package ? { package: req.query.package } : {}),
              ...(req.query.running_only !== undefined ? { runningOnly: req.query.running_only } : {}),
            },
            s,
          ),
        )
      ).value,
  );
};
