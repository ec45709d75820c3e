/** Endpoints of agent deployments: rollouts, deployments (with their live event stream), agent bundles. */
import { z } from 'zod';
import { ErrorBodySchema, IdParamsSchema, commonErrors, withErrors } from '../common.js';
import {
  AgentBundleListSchema,
  AgentBundleSchema,
  DeploymentCreateSchema,
  DeploymentEventsQuerySchema,
  DeploymentListQuerySchema,
  DeploymentListResponseSchema,
  DeploymentSchema,
  RolloutSchema,
} from '../deployments.js';
import { endpoint } from '../endpoint.js';

export const deploymentEndpoints = {
  create: endpoint({
    method: 'POST',
    path: '/deployments',
    access: 'operator',
    scope: 'area',
    action: 'deployment.create',
    summary: 'Install, upgrade, restart or uninstall the agent on devices (a rollout)',
    description:
      'Creates one deployment per device — given as ids/names, an area, or every device in status new — and ' +
      'answers 202 with the rollout at once; the durable queue runs them, at most `batch_size` of this rollout ' +
      'at a time (default concurrency.max_workers). With `max_failures` the rollout stops (the rest are ' +
      'cancelled) once that many failed. Watch with GET /rollouts/{id} or /deployments/{id}/events.',
    tags: ['deployments'],
    body: DeploymentCreateSchema,
    response: { 202: RolloutSchema, ...withErrors(404, 409, 422) },
  }),
  list: endpoint({
    method: 'GET',
    path: '/deployments',
    access: 'viewer',
    summary: 'List deployments, newest first',
    tags: ['deployments'],
    querystring: DeploymentListQuerySchema,
    response: { 200: DeploymentListResponseSchema, ...commonErrors },
  }),
  get: endpoint({
    method: 'GET',
    path: '/deployments/:id',
    access: 'viewer',
    summary: 'One deployment with its steps and its whole log',
    tags: ['deployments'],
    params: IdParamsSchema,
    response: { 200: DeploymentSchema, ...withErrors(404) },
  }),
  events: endpoint({
    method: 'GET',
    path: '/deployments/:id/events',
    access: 'viewer',
    summary: 'Follow a deployment live (Server-Sent Events)',
    description:
      '`event: deployment` (the deployment without its log; first, and on every status or step change), ' +
      '`event: log` (id = seq; one log line), `event: end` (the finished deployment; then the stream closes). ' +
      'Resume after a log line with `?after=<seq>` or the Last-Event-ID header.',
    tags: ['deployments'],
    params: IdParamsSchema,
    querystring: DeploymentEventsQuerySchema,
    produces: 'text/event-stream',
    response: {
      200: z.string().describe('text/event-stream: `deployment`, `log` and `end` events (see above)'),
      ...withErrors(404, 503),
    },
  }),
  cancel: endpoint({
    method: 'POST',
    path: '/deployments/:id/cancel',
    access: 'operator',
    scope: 'area',
    action: 'deployment.cancel',
    summary: 'Cancel a deployment (queued: at once; running: between two steps)',
    tags: ['deployments'],
    params: IdParamsSchema,
    response: { 200: DeploymentSchema, ...withErrors(404, 409) },
  }),
  retry: endpoint({
    method: 'POST',
    path: '/deployments/:id/retry',
    access: 'operator',
    scope: 'area',
    action: 'deployment.retry',
    summary: 'Run a failed or cancelled deployment again (as a new deployment)',
    tags: ['deployments'],
    params: IdParamsSchema,
    response: { 202: DeploymentSchema, ...withErrors(404, 409) },
  }),
} as const;

export const rolloutEndpoints = {
  get: endpoint({
    method: 'GET',
    path: '/rollouts/:id',
    access: 'viewer',
    summary: 'A rollout with the counts and every deployment of it',
    tags: ['deployments'],
    params: IdParamsSchema,
    response: { 200: RolloutSchema, ...withErrors(404) },
  }),
  cancel: endpoint({
    method: 'POST',
    path: '/rollouts/:id/cancel',
    access: 'operator',
    scope: 'area',
    action: 'rollout.cancel',
    summary: 'Cancel every unfinished deployment of a rollout',
    tags: ['deployments'],
    params: IdParamsSchema,
    response: { 200: RolloutSchema, ...withErrors(404) },
  }),
} as const;

export const agentBundleEndpoints = {
  list: endpoint({
    method: 'GET',
    path: '/agent-bundles',
    access: 'viewer',
    summary: 'Agent versions this server can deploy, newest first',
    tags: ['deployments'],
    response: { 200: AgentBundleListSchema, ...commonErrors },
  }),
  upload: endpoint({
    method: 'POST',
    path: '/agent-bundles',
    access: 'admin',
    action: 'bundle.upload',
    summary: 'Upload an agent bundle (opsplane-agent-<version>.tar.gz as the body)',
    description:
      'Validated (layout, manifest, checksums) before it is stored; a version is immutable once stored ' +
      '(the same file again: 200; a different file under a stored version: 409).',
    tags: ['deployments'],
    consumes: ['application/gzip', 'application/octet-stream'],
    response: { 201: AgentBundleSchema, 200: AgentBundleSchema, 409: ErrorBodySchema, ...commonErrors },
  }),
} as const;
