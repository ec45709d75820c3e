/**
 * Distribution: artifacts (upload as a raw tar.gz stream, content with byte ranges), policies
 * and policy rollouts (services/artifacts.ts, policies.ts, policy-rollouts.ts); a rollout's
 * progress as Server-Sent Events.
 */
import { Readable } from 'node:stream';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { ENDPOINTS } from '@opsplane/api';
import { OpsplaneError } from '@opsplane/models';
import { principalOf } from '../auth.js';
import type { RouteOptions } from '../context.js';
import { endpointRoute } from '../route.js';
import { streamEvents } from '../sse.js';

const A = ENDPOINTS.artifacts;
const P = ENDPOINTS.policies;
const R = ENDPOINTS.policyRollouts;

/** `bytes=a-b`, `bytes=a-`, `bytes=-n` → [start, end] within size; 416 when unsatisfiable. */
export function parseRange(header: string, size: number): { start: number; end: number } {
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  const bad = () =>
    new OpsplaneError('range_not_satisfiable', `range '${header}' is not within the ${size} bytes`, {
      status: 416,
    });
  if (!m || (m[1] === '' && m[2] === '')) throw bad();
  let start: number;
  let end: number;
  if (m[1] === '') {
    const n = Number(m[2]);
    if (n === 0) throw bad();
    start = Math.max(0, size - n);
    end = size - 1;
  } else {
    start = Number(m[1]);
    end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  }
  if (start > end || start >= size) throw bad();
  return { start, end };
}

export const distributionRoutes: FastifyPluginAsyncZod<RouteOptions> = async (app, { ctx }) => {
  const { artifacts, policies, policyRollouts } = ctx;

  // The upload body stays a stream: the service writes it to a temporary file as it arrives
  // (its own size limit, artifacts.max_size), so it is never buffered here.
  app.addContentTypeParser(['application/gzip', 'application/octet-stream'], (_req, payload, done) =>
    done(null, payload),
  );
  // An upload refused before its body was read to the end (too large, say): close the
  // connection after the answer, so the client's unsent rest is not taken for a next request.
  app.addHook('onSend', async (req, reply) => {
    if (req.body instanceof Readable && !req.raw.complete) reply.header('connection', 'close');
  });

  app.route({ ...endpointRoute(A.list), handler: async (req) => artifacts.list(req.query) });
  app.route({
    ...endpointRoute(A.upload),
    handler: async (req, reply) => {
      if (!(req.body instanceof Readable))
        throw new OpsplaneError(
          'artifact_invalid',
          'send the tar.gz as the body, with content-type application/gzip or application/octet-stream',
          { status: 400 },
        );
      const { artifact, created } = await artifacts.upload(principalOf(req), req.query, req.body);
      return reply.code(created ? 201 : 200).send(artifact);
    },
  });
  app.route({ ...endpointRoute(A.keys), handler: async () => artifacts.keys() });
  app.route({ ...endpointRoute(A.get), handler: async (req) => artifacts.get(req.params.sha256) });
  app.route({
    ...endpointRoute(A.content),
    handler: async (req, reply) => {
      const a = await artifacts.row(req.params.sha256);
      const range = req.headers.range;
      const { start, end } = range ? parseRange(range, a.size) : { start: 0, end: a.size - 1 };
      // Opened before the headers go: a content store that is down is a 503 with its code.
      const body = a.size === 0 ? Buffer.alloc(0) : Readable.from(await artifacts.open(a.sha256, start, end));
      reply
        .header('content-type', 'application/gzip')
        .header('accept-ranges', 'bytes')
        .header('content-length', String(end - start + 1))
        .header('etag', `"${a.sha256}"`)
        .header('content-disposition', `attachment; filename="${a.name}-${a.version}.tar.gz"`);
      if (range) reply.code(206).header('content-range', `bytes ${start}-${end}/${a.size}`);
      // A stream is sent as is (no serializer): typed as the schema's string.
      return reply.send(body as unknown as string);
    },
  });
  app.route({
    ...endpointRoute(A.delete),
    handler: async (req, reply) => {
      await artifacts.delete(principalOf(req), req.params.sha256);
      return reply.status(204).send(null);
    },
  });

  app.route({ ...endpointRoute(P.list), handler: async () => policies.list() });
  app.route({
    ...endpointRoute(P.create),
    handler: async (req, reply) => reply.code(201).send(await policies.create(principalOf(req), req.body)),
  });
  app.route({ ...endpointRoute(P.get), handler: async (req) => policies.get(req.params.id) });
  app.route({
    ...endpointRoute(P.update),
    handler: async (req) => policies.update(principalOf(req), req.params.id, req.body),
  });
  app.route({
    ...endpointRoute(P.delete),
    handler: async (req, reply) => {
      await policies.delete(principalOf(req), req.params.id);
      return reply.status(204).send(null);
    },
  });
  app.route({ ...endpointRoute(P.revisions), handler: async (req) => policies.revisions(req.params.id) });
  app.route({ ...endpointRoute(P.agents), handler: async (req) => policies.agents(req.params.id) });

  app.route({
    ...endpointRoute(R.create),
    handler: async (req, reply) =>
      reply.code(202).send(await policyRollouts.create(principalOf(req), req.body)),
  });
  app.route({ ...endpointRoute(R.list), handler: async (req) => policyRollouts.list(req.query) });
  app.route({ ...endpointRoute(R.get), handler: async (req) => policyRollouts.get(req.params.id) });
  app.route({
    ...endpointRoute(R.pause),
    handler: async (req) => policyRollouts.pause(principalOf(req), req.params.id),
  });
  app.route({
    ...endpointRoute(R.resume),
    handler: async (req) => policyRollouts.resume(principalOf(req), req.params.id),
  });
  app.route({
    ...endpointRoute(R.cancel),
    handler: async (req) => policyRollouts.cancel(principalOf(req), req.params.id),
  });
  app.route({
    ...endpointRoute(R.events),
    handler: async (req, reply) =>
      streamEvents(req, reply, (signal) => policyRollouts.follow(req.params.id, signal)),
  });
};
