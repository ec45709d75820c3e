/** Operational endpoints outside /api/v1: liveness and Prometheus metrics. */
import { endpoint } from '../endpoint.js';
import { HealthSchema } from '../system.js';

export const systemEndpoints = {
  health: endpoint({
    method: 'GET',
    path: '/healthz',
    access: 'public',
    summary: 'Liveness: 200 when the server and its database answer',
    tags: ['system'],
    response: { 200: HealthSchema, 503: HealthSchema },
  }),
  metrics: endpoint({
    method: 'GET',
    path: '/metrics',
    access: 'metrics',
    summary: 'Prometheus metrics (text exposition format)',
    description: 'Bearer metrics_token (server.metrics_token) or any authenticated user.',
    tags: ['system'],
    produces: 'text/plain',
    response: {},
  }),
} as const;
