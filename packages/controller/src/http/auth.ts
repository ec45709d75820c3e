/**
 * Optional bearer-token guard for the controller API (`api_token`). Registered inside the
 * /api/v1 scope only, so /healthz, /metrics and the docs stay open; the agent WebSocket never
 * reaches Fastify's routing and authenticates with its own per-agent token.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { UnauthorizedError } from '@opsplane/models';

// Comparing digests keeps the comparison constant-time whatever the presented length.
const digest = (s: string) => createHash('sha256').update(s).digest();

export function requireBearerToken(scope: FastifyInstance, token: string): void {
  const expected = digest(token);
  scope.addHook('onRequest', async (req, reply) => {
    const header = req.headers.authorization;
    const presented = header?.startsWith('Bearer ') ? header.slice(7).trim() : undefined;
    if (presented === undefined || !timingSafeEqual(digest(presented), expected)) {
      reply.header('www-authenticate', 'Bearer realm="opsplane-controller"');
      throw new UnauthorizedError(
        presented === undefined
          ? 'this controller requires Authorization: Bearer <api_token>'
          : 'invalid API token',
      );
    }
  });
}
