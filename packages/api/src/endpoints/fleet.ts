/**
 * Endpoints of the fleet: controllers (live and history), agents across every area (the
 * aggregated view, one agent by code, and its packages, health and metrics through the
 * controller that holds it) and cross-area batch jobs.
 */
import {
  AgentHealthSchema,
  AgentPackagesResponseSchema,
  ConfigFileContentSchema,
  ConfigFileListSchema,
  ServiceMetricsSchema,
  SystemMetricsSchema,
} from '@opsplane/models';
import { IdParamsSchema, commonErrors, withErrors } from '../common.js';
import { endpoint } from '../endpoint.js';
import { z } from 'zod';
import {
  AgentCodeParamsSchema,
  BatchEventsQuerySchema,
  AgentDetailSchema,
  AgentListQuerySchema,
  AgentListResponseSchema,
  BatchCreateQuerySchema,
  BatchCreateSchema,
  BatchJobSchema,
  BatchListQuerySchema,
  BatchListResponseSchema,
  ControllerHistoryQuerySchema,
  ControllerHistoryResponseSchema,
  ControllerListQuerySchema,
  ControllerListResponseSchema,
  ConfigFileParamsSchema,
  ConfigParamsSchema,
  MetricsHistoryQuerySchema,
  MetricsHistorySchema,
  ServiceMetricsQuerySchema,
} from '../platform.js';

const agentErrors = withErrors(404, 502, 503, 504);

export const controllerEndpoints = {
  list: endpoint({
    method: 'GET',
    path: '/controllers',
    access: 'viewer',
    summary: 'Controllers registered in etcd now (live, from discovery)',
    description:
      'status comes from the heartbeat; listed_agents / last_error say what the last refresh of the ' +
      'agent view got from each controller. `discovery.synced` is false while etcd has not been read.',
    tags: ['controllers'],
    querystring: ControllerListQuerySchema,
    response: { 200: ControllerListResponseSchema, ...commonErrors },
  }),
  history: endpoint({
    method: 'GET',
    path: '/controllers/history',
    access: 'viewer',
    summary: 'When each controller came and went (newest first)',
    tags: ['controllers'],
    querystring: ControllerHistoryQuerySchema,
    response: { 200: ControllerHistoryResponseSchema, ...commonErrors },
  }),
} as const;

export const agentEndpoints = {
  list: endpoint({
    method: 'GET',
    path: '/agents',
    access: 'viewer',
    summary: 'Every agent of every area (aggregated view): filter, search (q), sort, paginate',
    description:
      'Served from the in-memory view the server keeps warm (rebuilt every server.agents_refresh_interval ' +
      'and whenever controllers come, go or change). `errors` lists the controllers or areas the last ' +
      'refresh could not list; `stale` says the view is older than cache.agent_ttl or discovery is not ' +
      'synced. Operators may pass refresh=true to rebuild it first.',
    tags: ['agents'],
    querystring: AgentListQuerySchema,
    response: { 200: AgentListResponseSchema, ...commonErrors },
  }),
  byCode: endpoint({
    method: 'GET',
    path: '/agents/by-code/:code',
    access: 'viewer',
    summary: "One agent, live from its controller, joined with its device (the guide's GetAgentByCode)",
    description:
      "device (by agent code) → its function_area → the area's online controllers → the agent. Agents " +
      'without a device are found through the area the aggregated view saw them in. 404 agent_not_found ' +
      'when neither knows the code or no controller of the area knows the agent; 503 when the area has no ' +
      'online controller; 504 on timeout; 502 when a controller fails or rejects the credentials.',
    tags: ['agents'],
    params: AgentCodeParamsSchema,
    response: { 200: AgentDetailSchema, ...agentErrors },
  }),
  packages: endpoint({
    method: 'GET',
    path: '/agents/:code/packages',
    access: 'viewer',
    summary: "The agent's packages, from the controller that holds it",
    tags: ['agents'],
    params: AgentCodeParamsSchema,
    response: { 200: AgentPackagesResponseSchema, ...agentErrors },
  }),
  health: endpoint({
    method: 'GET',
    path: '/agents/:code/health',
    access: 'viewer',
    summary: "The agent's health (overall and per package), from its controller",
    tags: ['agents'],
    params: AgentCodeParamsSchema,
    response: { 200: AgentHealthSchema, ...agentErrors },
  }),
  systemMetrics: endpoint({
    method: 'GET',
    path: '/agents/:code/metrics/system',
    access: 'viewer',
    summary: "The agent host's system metrics (cpu, load, memory, disks, network), from its controller",
    tags: ['agents'],
    params: AgentCodeParamsSchema,
    response: { 200: SystemMetricsSchema, ...agentErrors },
  }),
  serviceMetrics: endpoint({
    method: 'GET',
    path: '/agents/:code/metrics/services',
    access: 'viewer',
    summary: 'Per-package metrics of the agent (cpu, rss, restarts, uptime, pid), from its controller',
    tags: ['agents'],
    params: AgentCodeParamsSchema,
    querystring: ServiceMetricsQuerySchema,
    response: { 200: ServiceMetricsSchema, ...agentErrors },
  }),
  metricsHistory: endpoint({
    method: 'GET',
    path: '/agents/:code/metrics/history',
    access: 'viewer',
    summary:
      "The agent's system metrics and each package's cpu, rss and restarts over time (kept by the server)",
    description:
      'The server samples every online agent every server.metrics_history.interval (default 1m) and keeps ' +
      'server.metrics_history.retention (default 24h). Points are oldest first; gaps mean no sample ' +
      '(the agent was offline or its controller did not answer).',
    tags: ['agents'],
    params: AgentCodeParamsSchema,
    querystring: MetricsHistoryQuerySchema,
    response: { 200: MetricsHistorySchema, ...commonErrors },
  }),
  configFiles: endpoint({
    method: 'GET',
    path: '/agents/:code/packages/:package/configs',
    access: 'operator',
    scope: 'area',
    summary: "The files in a package's config dir on the agent (read-only)",
    tags: ['agents'],
    params: ConfigParamsSchema,
    response: { 200: ConfigFileListSchema, ...agentErrors },
  }),
  configFile: endpoint({
    method: 'GET',
    path: '/agents/:code/packages/:package/configs/:file',
    access: 'operator',
    scope: 'area',
    summary:
      'One config file of a package as it is on the agent now (read-only), e.g. to diff a push against',
    description:
      'Operators only: config files may hold secrets. `exists: false` when the package has no such file. ' +
      "The agent reads only plain file names inside the package's config dir.",
    tags: ['agents'],
    params: ConfigFileParamsSchema,
    response: { 200: ConfigFileContentSchema, ...agentErrors },
  }),
} as const;

export const batchEndpoints = {
  create: endpoint({
    method: 'POST',
    path: '/batches',
    access: 'operator',
    scope: 'area',
    action: 'batch.create',
    summary: 'Start/stop/restart packages or push configs on agents of any area, as a recorded job',
    description:
      'Agents are given as codes (`agents`) or selected from the aggregated view (`filter`). They are grouped ' +
      'by area (device function_area, else the area the view saw them in) and the areas run concurrently. ' +
      'The job holds exactly one result per (agent, package), also for agents whose area has no online ' +
      'controller or whose controller failed (with the reason). 201: finished within `wait`, with results; ' +
      '202: still running — poll GET /batches/{id}.',
    tags: ['batches'],
    querystring: BatchCreateQuerySchema,
    body: BatchCreateSchema,
    response: { 201: BatchJobSchema, 202: BatchJobSchema, ...commonErrors },
  }),
  list: endpoint({
    method: 'GET',
    path: '/batches',
    access: 'viewer',
    summary: 'Batch jobs, newest first (without their results)',
    tags: ['batches'],
    querystring: BatchListQuerySchema,
    response: { 200: BatchListResponseSchema, ...commonErrors },
  }),
  get: endpoint({
    method: 'GET',
    path: '/batches/:id',
    access: 'viewer',
    summary: 'One batch job with every (agent, package) result (those known so far while it runs)',
    tags: ['batches'],
    params: IdParamsSchema,
    response: { 200: BatchJobSchema, ...withErrors(404) },
  }),
  events: endpoint({
    method: 'GET',
    path: '/batches/:id/events',
    access: 'viewer',
    summary: 'Follow a batch live (Server-Sent Events): each result as it arrives',
    description:
      '`event: job` (the job without results; first, and when its counts change), `event: result` (id = seq; ' +
      'one (agent, package) result, final), `event: end` (the finished job; then the stream closes). ' +
      'Resume after a result with `?after=<seq>` or the Last-Event-ID header.',
    tags: ['batches'],
    params: IdParamsSchema,
    querystring: BatchEventsQuerySchema,
    produces: 'text/event-stream',
    response: {
      200: z.string().describe('text/event-stream: `job`, `result` and `end` events (see above)'),
      ...withErrors(404, 503),
    },
  }),
} as const;
