/**
 * Deployments, rollouts and agent bundles (services/deployment-requests.ts); a deployment's
 * live log as Server-Sent Events.
 */
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { ENDPOINTS } from '@opsplane/api';
import { actorOf } from '../auth.js';
import type { RouteOptions } from '../context.js';
import { endpointRoute } from '../route.js';

const D = ENDPOINTS.deployments;
const R = ENDPOINTS.rollouts;
const B = ENDPOINTS.agentBundles;

export const deploymentRoutes: FastifyPluginAsyncZod<RouteOptions> = async (app, { ctx }) => {
  const requests = ctx.deploymentRequests;

  app.route({
    ...endpointRoute(D.create),
    handler: async (req, reply) => reply.code(202).send(await requests.create(actorOf(req), req.body)),
  });
  app.route({ ...endpointRoute(D.list), handler: async (req) => requests.list(req.query) });
  app.route({ ...endpointRoute(D.get), handler: async (req) => requests.get(req.params.id) });

  app.route({
    ...endpointRoute(D.events),
    handler: async (req, reply) => {
      const lastEventId = Number(req.headers['last-event-id']);
      const after = req.query.after ?? (Number.isInteger(lastEventId) ? lastEventId : 0);
      const closed = new AbortController();
      req.raw.on('close', () => closed.abort());
      const events = requests.follow(req.params.id, after, closed.signal);
      // The first step checks the deployment exists (404) before the 200 is sent.
      const first = await events.next();
      reply.hijack();
      const res = reply.raw;
      res.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-cache, no-transform',
        connection: 'keep-alive',
        'x-accel-buffering': 'no',
      });
      try {
        for (let r = first; !r.done; r = await events.next()) {
          const e = r.value;
          if (e === 'idle') {
            if (!closed.signal.aborted) res.write(': keep-alive\n\n');
            continue;
          }
          res.write(
            `${e.id !== undefined ? `id: ${e.id}\n` : ''}event: ${e.event}\ndata: ${JSON.stringify(e.data)}\n\n`,
          );
        }
      } catch (err) {
        req.log.warn({ err, deployment: req.params.id }, 'deployment event stream failed');
      } finally {
        res.end();
      }
    },
  });

  app.route({
    ...endpointRoute(D.cancel),
    handler: async (req) => requests.cancel(actorOf(req), req.params.id),
  });
  app.route({
    ...endpointRoute(D.retry),
    handler: async (req, reply) => reply.code(202).send(await requests.retry(actorOf(req), req.params.id)),
  });
  app.route({ ...endpointRoute(R.get), handler: async (req) => requests.rollout(req.params.id) });
  app.route({
    ...endpointRoute(R.cancel),
    handler: async (req) => requests.cancelRollout(actorOf(req), req.params.id),
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
      const { bundle, created } = await requests.uploadBundle(actorOf(req), req.body);
      return reply.code(created ? 201 : 200).send(bundle);
    },
  });
};
