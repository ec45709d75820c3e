/**
 * The platform's side of the artifact relay (under /api/v1, behind api_token):
 * HEAD /artifacts/{sha256} (what the cache holds: ARTIFACT_BYTES_HEADER, ARTIFACT_COMPLETE_HEADER;
 * 404 when nothing), PUT /artifacts/{sha256}?offset=N (append the artifact's bytes from N; the
 * ref rides in ARTIFACT_REF_HEADER as base64url JSON), GET /artifacts (the cache's contents),
 * and POST /agents/desired-state (hand agents their desired state).
 */
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type { FastifyRequest } from 'fastify';
import { z } from 'zod';
import {
  ARTIFACT_BYTES_HEADER,
  ARTIFACT_COMPLETE_HEADER,
  ARTIFACT_REF_HEADER,
  ArtifactCacheListSchema,
  ArtifactCacheStatusSchema,
  ArtifactRefSchema,
  DesiredStatePushRequestSchema,
  DesiredStatePushResultSchema,
  ErrorBodySchema,
  OpsplaneError,
  Sha256Schema,
  ValidationError,
  formatIssues,
  type ArtifactCacheStatus,
  type ArtifactRef,
} from '@opsplane/models';
import type { RouteOptions } from '../context.js';
import { ArtifactOffsetError } from '../artifact-cache.js';
import { isForwarded } from './agent-target.js';

export const ArtifactParamsSchema = z.object({ sha256: Sha256Schema });
const UploadQuerySchema = z.object({
  offset: z.coerce.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER),
});

const errors = { 400: ErrorBodySchema, 401: ErrorBodySchema };

/** The upload stream of a PUT, kept aside by the octet-stream parser (the route reads it itself). */
const uploads = new WeakMap<FastifyRequest, AsyncIterable<Uint8Array>>();
const EMPTY: AsyncIterable<Uint8Array> = { async *[Symbol.asyncIterator]() {} };

function statusHeaders(s: ArtifactCacheStatus): Record<string, string> {
  return { [ARTIFACT_BYTES_HEADER]: String(s.bytes), [ARTIFACT_COMPLETE_HEADER]: String(s.complete) };
}

function refFromHeader(req: FastifyRequest, sha256: string): ArtifactRef {
  const raw = req.headers[ARTIFACT_REF_HEADER];
  const text = Array.isArray(raw) ? raw[0] : raw;
  if (!text)
    throw new ValidationError(
      `the ${ARTIFACT_REF_HEADER} header (base64url JSON of the ArtifactRef) is required`,
    );
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(text, 'base64url').toString('utf8'));
  } catch {
    throw new ValidationError(`${ARTIFACT_REF_HEADER} is not base64url JSON`);
  }
  const parsed = ArtifactRefSchema.safeParse(json);
  if (!parsed.success) {
    throw new ValidationError(
      `${ARTIFACT_REF_HEADER}: ${formatIssues(parsed.error.issues)}`,
      parsed.error.issues,
    );
  }
  if (parsed.data.sha256 !== sha256) {
    throw new OpsplaneError(
      'artifact_ref_mismatch',
      `the ref names sha256 ${parsed.data.sha256}, the path ${sha256}`,
      {
        status: 400,
      },
    );
  }
  return parsed.data;
}

export const artifactRoutes: FastifyPluginAsyncZod<RouteOptions> = async (app, { ctx }) => {
  const cache = ctx.artifacts;
  // Artifact bytes are streamed to disk as they come (no body limit: the ref's size bounds them).
  app.addContentTypeParser('application/octet-stream', (req, payload, done) => {
    uploads.set(req, payload);
    done(null, undefined);
  });

  app.get(
    '/artifacts',
    {
      schema: {
        tags: ['artifacts'],
        summary: "The artifact cache's contents (complete and partial uploads)",
        response: { 200: ArtifactCacheListSchema, ...errors },
      },
    },
    async () => cache.list(),
  );

  app.head(
    '/artifacts/:sha256',
    {
      schema: {
        tags: ['artifacts'],
        summary: 'What the cache holds of one artifact',
        description:
          `${ARTIFACT_BYTES_HEADER}: bytes held (a partial upload resumes there); ${ARTIFACT_COMPLETE_HEADER}: ` +
          'true once all bytes arrived and verified. 404 when it holds nothing.',
        params: ArtifactParamsSchema,
      },
    },
    async (req, reply) => {
      const s = cache.status(req.params.sha256);
      if (!s) return reply.code(404).send();
      return reply.headers(statusHeaders(s)).code(200).send();
    },
  );

  app.put(
    '/artifacts/:sha256',
    {
      schema: {
        tags: ['artifacts'],
        summary: "Upload an artifact's bytes from `offset` (resumable)",
        description:
          `Body: application/octet-stream, the bytes from \`offset\` to the end. Header ${ARTIFACT_REF_HEADER}: ` +
          'base64url of the ArtifactRef JSON. `offset` must equal the bytes held (else 409 ' +
          `artifact_offset_mismatch with ${ARTIFACT_BYTES_HEADER}). Once all bytes are here the sha256 and ` +
          '(with artifacts.keys) the signature are checked; a mismatch drops them: 422 artifact_invalid or the ' +
          'signature code (artifact_bad_signature, artifact_untrusted_key, artifact_unsigned).',
        params: ArtifactParamsSchema,
        querystring: UploadQuerySchema,
        response: {
          200: ArtifactCacheStatusSchema,
          ...errors,
          409: ErrorBodySchema,
          413: ErrorBodySchema,
          422: ErrorBodySchema,
        },
      },
    },
    async (req, reply) => {
      const ref = refFromHeader(req, req.params.sha256);
      try {
        const s = await cache.write(ref, req.query.offset, uploads.get(req) ?? EMPTY);
        return reply.headers(statusHeaders(s)).send(s);
      } catch (err) {
        if (err instanceof ArtifactOffsetError) reply.header(ARTIFACT_BYTES_HEADER, String(err.bytes));
        throw err;
      }
    },
  );

  app.post(
    '/agents/desired-state',
    {
      schema: {
        tags: ['distribution'],
        summary: 'Hand agents their desired state',
        description:
          'Each agent persists its desired state and converges on it in the background; the result is its ' +
          'status when it accepted, or why not (agent_not_connected when no controller of the area holds it, ' +
          "the agent's own refusal, e.g. an older revision). Agents held by a peer controller are asked there.",
        body: DesiredStatePushRequestSchema,
        response: { 200: DesiredStatePushResultSchema, ...errors, 413: ErrorBodySchema },
      },
    },
    async (req) => ctx.desiredStates.push(req.body, isForwarded(req)),
  );
};
