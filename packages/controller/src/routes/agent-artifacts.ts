/**
 * Agents download artifacts here (AGENT_ARTIFACT_PATH/{sha256}, GET and HEAD), authenticated as
 * their WebSocket is (agent-auth.ts: agent token or client certificate, revocation honoured) —
 * never with the API token. Only complete, verified artifacts are served; an unknown one is a
 * 404 `artifact_not_found` (the agent retries later: the platform may still be uploading it).
 * `Range` gives 206 with Content-Range, so an interrupted download resumes.
 */
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import {
  AGENT_ARTIFACT_PATH,
  ARTIFACT_REF_HEADER,
  ErrorBodySchema,
  OpsplaneError,
  UnauthorizedError,
} from '@opsplane/models';
import { authenticateAgent } from '../agent-auth.js';
import type { CachedArtifact } from '../artifact-cache.js';
import { parseRange, type ByteRange } from '../artifact-relay.js';
import type { RouteOptions } from '../context.js';
import { ArtifactParamsSchema } from './artifacts.js';

const Bytes = z.any().describe('the artifact bytes (application/octet-stream)');
const responses = {
  200: Bytes,
  206: Bytes,
  401: ErrorBodySchema,
  403: ErrorBodySchema,
  404: ErrorBodySchema,
  416: ErrorBodySchema,
};

export const agentArtifactRoutes: FastifyPluginAsyncZod<RouteOptions> = async (app, { ctx }) => {
  const { metrics } = ctx;
  // preValidation, after the input-hygiene check of the URL: unsafe text is a 400 whoever asks.
  app.addHook('preValidation', async (req) => {
    const who = authenticateAgent(req.raw, ctx.agentAuth);
    if (!who.ok) {
      metrics.artifactDownloads.inc({ outcome: who.code });
      req.log.warn(
        { remote: req.socket.remoteAddress, agent: who.claimed, why: who.why },
        'artifact download refused',
      );
      if (who.status === 403) throw new OpsplaneError('revoked', who.why, { status: 403 });
      throw new UnauthorizedError(who.why);
    }
    req.log.debug({ agent: who.code, url: req.url }, 'artifact download');
  });

  /** The artifact and the range to send, with the headers both GET and HEAD answer. */
  const prepare = (
    req: FastifyRequest,
    sha256: string,
    reply: FastifyReply,
  ): { artifact: CachedArtifact; range: ByteRange; partial: boolean } => {
    const artifact = ctx.artifacts.get(sha256);
    if (!artifact) {
      metrics.artifactDownloads.inc({ outcome: 'not_found' });
      throw new OpsplaneError(
        'artifact_not_found',
        `this controller holds no verified artifact ${sha256} (yet); retry later`,
        { status: 404 },
      );
    }
    const requested = parseRange(req.headers.range, artifact.size);
    const range = requested ?? { start: 0, end: artifact.size - 1 };
    reply
      .header('accept-ranges', 'bytes')
      .header('content-type', 'application/octet-stream')
      .header('content-length', String(Math.max(0, range.end - range.start + 1)))
      .header('etag', `"${sha256}"`);
    if (artifact.ref)
      reply.header(ARTIFACT_REF_HEADER, Buffer.from(JSON.stringify(artifact.ref)).toString('base64url'));
    if (requested) {
      reply.code(206).header('content-range', `bytes ${range.start}-${range.end}/${artifact.size}`);
    }
    return { artifact, range, partial: requested !== undefined };
  };

  const schema = {
    tags: ['agent downloads'],
    params: ArtifactParamsSchema,
    response: responses,
    security: [],
  };

  app.get(
    `${AGENT_ARTIFACT_PATH}/:sha256`,
    {
      // HEAD has its own route: the generated one would read (and pace) the whole file.
      exposeHeadRoute: false,
      // Like the agent socket: many agents of a zone may share one NAT address; the bandwidth
      // limit is what bounds their downloads.
      config: { rateLimit: false },
      schema: {
        ...schema,
        summary: 'Download an artifact (agents; Range resumes)',
        description:
          'Authenticated like the agent WebSocket (agent token headers or client certificate), not with the API ' +
          'token. Serves only complete, verified artifacts; 404 artifact_not_found otherwise. ' +
          '`Range: bytes=N-` answers 206. All downloads share the bandwidth limit (artifacts.bandwidth).',
      },
    },
    async (req, reply) => {
      const { artifact, range, partial } = prepare(req, req.params.sha256, reply);
      metrics.artifactDownloads.inc({ outcome: partial ? 'resumed' : 'hit' });
      if (artifact.size === 0) return reply.send(Buffer.alloc(0));
      return reply.send(ctx.relay.stream(artifact, range));
    },
  );

  app.head(
    `${AGENT_ARTIFACT_PATH}/:sha256`,
    {
      config: { rateLimit: false },
      schema: { ...schema, summary: 'Whether an artifact can be downloaded, and its size' },
    },
    async (req, reply) => {
      prepare(req, req.params.sha256, reply);
      return reply.send();
    },
  );
};
