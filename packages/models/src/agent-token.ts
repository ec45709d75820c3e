/**
 * Agent tokens: HMAC-SHA256(area secret, "<area>:<agentCode>") in lowercase hex. The platform
 * issues them when it installs an agent; a controller verifies them with nothing but its
 * area's secret (see the header of protocol.ts). Pure: the agent bundle, the fleet
 * launcher and the platform compute tokens with this one function.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

export function agentToken(secret: string, area: string, agentCode: string): string {
  if (secret === '') throw new Error('agent token secret must not be empty');
  return createHmac('sha256', secret).update(`${area}:${agentCode}`, 'utf8').digest('hex');
}

/**
 * Constant-time check of a presented token. Case-insensitive on the hex digits; false (never a
 * throw) for anything malformed, including an empty secret.
 */
export function verifyAgentToken(secret: string, area: string, agentCode: string, token: string): boolean {
  if (secret === '' || typeof token !== 'string' || !/^[0-9a-fA-F]{64}$/.test(token)) return false;
  const expected = Buffer.from(agentToken(secret, area, agentCode), 'hex');
  const presented = Buffer.from(token, 'hex');
  return expected.length === presented.length && timingSafeEqual(expected, presented);
}
