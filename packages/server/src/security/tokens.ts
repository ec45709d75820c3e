/**
 * Opaque credentials: session ids, API tokens, agent codes. Session ids and tokens are random and
 * stored only as SHA-256 hashes, so a database dump does not let anyone log in.
 */
import { createHash, randomBytes, randomInt } from 'node:crypto';

export const API_TOKEN_PREFIX = 'opsp_';

export function sha256Hex(s: string): string {
  return createHash('sha256').update(s, 'utf8').digest('hex');
}

/** 256-bit random session id (cookie value). */
export function newSessionId(): string {
  return randomBytes(32).toString('base64url');
}

/** `opsp_` + 256 random bits; `prefix` (first 8 chars after `opsp_`) identifies it in listings. */
export function newApiToken(): { token: string; prefix: string } {
  const body = randomBytes(32).toString('base64url');
  return { token: API_TOKEN_PREFIX + body, prefix: body.slice(0, 8) };
}

export function looksLikeApiToken(s: string): boolean {
  return s.startsWith(API_TOKEN_PREFIX) && /^[A-Za-z0-9_-]{43}$/.test(s.slice(API_TOKEN_PREFIX.length));
}

// RFC 4648 base32 alphabet, lower case: safe in URLs, etcd keys, file names and host names.
const BASE32 = 'abcdefghijklmnopqrstuvwxyz234567';

/** `agt-` + 12 base32 chars (60 random bits). Uniqueness is enforced by the agent_codes table. */
export function newAgentCode(): string {
  let s = 'agt-';
  for (let i = 0; i < 12; i++) s += BASE32[randomInt(32)];
  return s;
}
