import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { agentToken, verifyAgentToken } from '../src/index.js';

test('agentToken is HMAC-SHA256(secret, "area:code") in hex', () => {
  const expected = createHmac('sha256', 'sekret').update('area-1:agent-001').digest('hex');
  assert.equal(agentToken('sekret', 'area-1', 'agent-001'), expected);
  assert.match(expected, /^[0-9a-f]{64}$/);
  assert.throws(() => agentToken('', 'a', 'b'));
});

test('verifyAgentToken accepts the right token and nothing else', () => {
  const t = agentToken('sekret', 'area-1', 'agent-001');
  assert.ok(verifyAgentToken('sekret', 'area-1', 'agent-001', t));
  assert.ok(verifyAgentToken('sekret', 'area-1', 'agent-001', t.toUpperCase()));
  assert.ok(!verifyAgentToken('other', 'area-1', 'agent-001', t));
  assert.ok(!verifyAgentToken('sekret', 'area-2', 'agent-001', t));
  assert.ok(!verifyAgentToken('sekret', 'area-1', 'agent-002', t));
  assert.ok(!verifyAgentToken('sekret', 'area-1', 'agent-001', t.slice(0, 63)));
  assert.ok(!verifyAgentToken('sekret', 'area-1', 'agent-001', ''));
  assert.ok(!verifyAgentToken('sekret', 'area-1', 'agent-001', 'z'.repeat(64)));
  assert.ok(!verifyAgentToken('', 'area-1', 'agent-001', t));
});
