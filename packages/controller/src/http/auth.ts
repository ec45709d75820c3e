/**
 * Optional bearer-token guard for the controller API (`api_token`). Registered inside the
 * /api/v1 scope only, so /healthz, /metrics and the docs stay open; the agent WebSocket never
 * reaches Fastify's routing and authenticates with its own per-agent token.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { BlockList, isIP } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { ForbiddenError, UnauthorizedError } from '@opsplane/models';
import { parseCidr } from '../config.js';

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

/**
 * Source allowlist of the legacy listener (`legacy_allow`): a request from an address outside
 * every listed CIDR is a 403 before routing. Empty = any source. IPv4-mapped IPv6 peers
 * (`::ffff:10.0.0.7`) are checked as IPv4.
 */
export function allowSources(scope: FastifyInstance, cidrs: readonly string[]): void {
  if (cidrs.length === 0) return;
  const list = new BlockList();
  for (const c of cidrs) {
    const { address, prefix, family } = parseCidr(c);
    list.addSubnet(address, prefix, family);
  }
  scope.addHook('onRequest', async (req) => {
    const raw = req.socket.remoteAddress ?? '';
    const addr = raw.startsWith('::ffff:') && isIP(raw.slice(7)) === 4 ? raw.slice(7) : raw;
    const v = isIP(addr);
    if (v === 0 || !list.check(addr, v === 4 ? 'ipv4' : 'ipv6')) {
      throw new ForbiddenError(`source ${addr || 'unknown'} is not in legacy_allow`);
    }
  });
}
