/**
 * Revocation and secret rotation on a plain (token) controller against a real etcd: a code put
 * under revocations/agents/ is disconnected (close 4004) and refused (403) at once, deleting it
 * lets the agent back; during a rotation tokens of the previous secret still verify.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { AGENT_AREA_HEADER, AGENT_CODE_HEADER, agentToken, CLOSE_CODES } from '@opsplane/models';
import { startEtcd, waitFor, type EtcdHandle } from '@opsplane/test-support';
import type { RunningController } from '../src/index.js';
import { FakeAgent, tryUpgrade } from './support/fake-agent.js';
import { startTestController } from './support/harness.js';

const NEW = 'new-secret-0123456789abcdef';
const OLD = 'old-secret-0123456789abcdef';

let etcd: EtcdHandle;
let ctrl: RunningController;
const agents: FakeAgent[] = [];

before(async () => {
  etcd = await startEtcd();
  ctrl = await startTestController(etcd, { agent_secret: NEW, agent_secret_previous: [OLD] });
});

after(async () => {
  await Promise.all(agents.map((a) => a.close()));
  await ctrl?.stop();
  await etcd?.stop();
});

const connect = async (code: string, secret: string) => {
  const a = await FakeAgent.connect({ url: ctrl.url, code, area: 'area-1', secret });
  agents.push(a);
  return a;
};
const headers = (code: string, secret: string) => ({
  [AGENT_CODE_HEADER]: code,
  [AGENT_AREA_HEADER]: 'area-1',
  authorization: `Bearer ${agentToken(secret, 'area-1', code)}`,
});

describe('area secret rotation', () => {
  it('accepts tokens of the current and the previous secret, and no other', async () => {
    await connect('rot-new', NEW);
    await connect('rot-old', OLD);
    assert.equal(await tryUpgrade(ctrl.url, headers('rot-x', 'third-secret-0123456789')), 401);
  });
});

describe('revocation (revocations/agents/<code> in etcd)', () => {
  it('disconnects a revoked agent at once, refuses it with 403, and lets it back once reinstated', async () => {
    const a = await connect('rev-1', NEW);
    const t0 = Date.now();
    await etcd.etcdctl([
      'put',
      'revocations/agents/rev-1',
      '{"agent_code":"rev-1","reason":"test","revoked_at":"x"}',
    ]);
    const closed = await a.closed;
    assert.equal(closed.code, CLOSE_CODES.revoked);
    assert.ok(Date.now() - t0 < 5000, `closed after ${Date.now() - t0} ms`);
    assert.equal(await tryUpgrade(ctrl.url, headers('rev-1', NEW)), 403);
    // Other agents are untouched.
    assert.equal(await tryUpgrade(ctrl.url, headers('rev-2', NEW)), 101);
    await etcd.etcdctl(['del', 'revocations/agents/rev-1']);
    await waitFor(async () => (await tryUpgrade(ctrl.url, headers('rev-1', NEW))) === 101, {
      timeoutMs: 5000,
      intervalMs: 50,
      what: 'the reinstated agent to be accepted',
    });
  });

  it('refuses a code revoked before the controller started', async () => {
    await etcd.etcdctl([
      'put',
      'revocations/agents/rev-early',
      '{"agent_code":"rev-early","revoked_at":"x"}',
    ]);
    const c2 = await startTestController(etcd, { agent_secret: NEW });
    try {
      await waitFor(async () => (await tryUpgrade(c2.url, headers('rev-early', NEW))) === 403, {
        timeoutMs: 5000,
        intervalMs: 50,
        what: 'the early revocation to be enforced',
      });
    } finally {
      await c2.stop();
    }
  });
});
