/**
 * Deployments, rollouts and agent bundles (services/deployment-requests.ts); a deployment's
 * live log as Server-Sent Events.
 */
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { ENDPOINTS } from '@opsplane/api';
import { principalOf } from '../auth.js';
import type { RouteOptions } from '../context.js';
import { endpointRoute } from '../route.js';
import { resumeAfter, streamEvents } from '../sse.js';

const D = ENDPOINTS.deployments;
const R = ENDPOINTS.rollouts;
const B = ENDPOINTS.agentBundles;

export const deploymentRoutes: FastifyPluginAsyncZod<RouteOptions> = async (app, { ctx }) => {
  const requests = ctx.deploymentRequests;

  app.route({
    ...endpointRoute(D.create),
    handler: async (req, reply) => reply.code(202).send(await requests.create(principalOf(req), req.body)),
  });
  app.route({ ...endpointRoute(D.list), handler: async (req) => requests.list(req.query) });
  app.route({ ...endpointRoute(D.get), handler: async (req) => requests.get(req.params.id) });

  app.route({
    ...endpointRoute(D.events),
    handler: async (req, reply) =>
      streamEvents(req, reply, (signal) =>
        requests.follow(req.params.id, resumeAfter(req, req.query.after), signal),
      ),
  });

  app.route({
    ...endpointRoute(D.cancel),
    handler: async (req) => requests.cancel(principalOf(req), req.params.id),
  });
  app.route({
    ...endpointRoute(D.retry),
    handler: async (req, reply) =>
      reply.code(202).send(await requests.retry(principalOf(req), req.params.id)),
  });
  app.route({ ...endpointRoute(R.get), handler: async (req) => requests.rollout(req.params.id) });
  app.route({
    ...endpointRoute(R.cancel),
    handler: async (req) => requests.cancelRollout(principalOf(req), req.params.id),
  });
  app.route({ ...endpointRoute(B.list), handler: async () => requests.bundles() });

  // The body of an upload is the raw .tar.gz.
  app.addContentTypeParser(
    ['application/gzip', 'application/octet-stream'],
    { parseAs: 'buffer', bodyLimit: 256 * 1024 * 1024 },
    (_req, body, done) => done(null, body),
  );
  app.route({
    ...endpointRoute(B.upload),
    handler: async (req, reply) => {
      const { bundle, created } = await requests.uploadBundle(principalOf(req), req.body);
      return reply.code(created ? 201 : 200).send(bundle);
    },
  });
};
