/**
 * Agents: the aggregated view across every area, one agent by code, and its packages, health and
 * metrics through the controller that holds it (services/agents.ts). Read-only; `refresh=true`
 * needs an operator.
 */
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { ENDPOINTS } from '@opsplane/api';
import { principalOf } from '../auth.js';
import type { RouteOptions } from '../context.js';
import { endpointRoute } from '../route.js';

const E = ENDPOINTS.agents;

export const agentRoutes: FastifyPluginAsyncZod<RouteOptions> = async (app, { ctx }) => {
  const { agents } = ctx;
  app.route({ ...endpointRoute(E.list), handler: async (req) => agents.list(principalOf(req), req.query) });
  app.route({ ...endpointRoute(E.byCode), handler: async (req) => agents.byCode(req.params.code) });
  app.route({ ...endpointRoute(E.packages), handler: async (req) => agents.packages(req.params.code) });
  app.route({ ...endpointRoute(E.health), handler: async (req) => agents.health(req.params.code) });
  app.route({
    ...endpointRoute(E.systemMetrics),
    handler: async (req) => agents.systemMetrics(req.params.code),
  });
  app.route({
    ...endpointRoute(E.serviceMetrics),
    handler: async (req) => agents.serviceMetrics(req.params.code, req.query),
  });
  app.route({
    ...endpointRoute(E.metricsHistory),
    handler: async (req) => agents.metricsHistory(req.params.code, req.query),
  });
  app.route({
    ...endpointRoute(E.configFiles),
    handler: async (req) => agents.configFiles(principalOf(req), req.params.code, req.params.package),
  });
  app.route({
    ...endpointRoute(E.configFile),
    handler: async (req) =>
      agents.configFile(principalOf(req), req.params.code, req.params.package, req.params.file),
  });
};
