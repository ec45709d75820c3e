/** Revocations and issued certificates (services/pki.ts). */
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { ENDPOINTS } from '@opsplane/api';
import { actorOf } from '../auth.js';
import type { RouteOptions } from '../context.js';
import { endpointRoute } from '../route.js';

const R = ENDPOINTS.revocations;
const C = ENDPOINTS.certificates;

export const pkiRoutes: FastifyPluginAsyncZod<RouteOptions> = async (app, { ctx }) => {
  const { pki } = ctx;
  app.route({
    ...endpointRoute(R.revoke),
    handler: async (req) => pki.revokeAgent(actorOf(req), req.params.code, req.body.reason),
  });
  app.route({
    ...endpointRoute(R.list),
    handler: async () => ({ revocations: await pki.listRevocations() }),
  });
  app.route({
    ...endpointRoute(R.reinstate),
    handler: async (req, reply) => {
      await pki.reinstateAgent(actorOf(req), req.params.code);
      return reply.status(204).send(null);
    },
  });
  app.route({ ...endpointRoute(C.list), handler: async () => pki.listCertificates() });
};
