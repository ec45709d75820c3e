/**
 * The alert engine on its own, over a real (PGlite) store and hand-fed live state: pending_for
 * (a blip shorter than it pages nobody; a condition that lasts fires once due, by the engine's
 * own wake-up, with first_seen when it began), re-firing as a new row, held state (an unusable
 * view resolves nothing), and deployment_failed (fires once, resolves when a later deployment
 * of the device succeeds).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { sleep, waitFor } from '@opsplane/test-support';
import type { AgentView, Alert, AlertStatus } from '@opsplane/api';
import {
  AlertEngine,
  openStore,
  type AgentsSnapshot,
  type DatabaseHandle,
  type Store,
} from '../src/index.js';
import { createDevice, deviceBody, TEST_MASTER_KEY, testEnv, testLogger, type TestEnv } from './helpers.js';

function agent(code: string, status: 'online' | 'offline'): AgentView {
  const now = new Date().toISOString();
  return {
    id: code,
    agent_code: code,
    area: 'area-1',
    controller_id: 'ctrl-a',
    device_id: null,
    device_name: null,
    address: '127.0.0.1',
    hostname: `host-${code}`,
    status,
    health_status: 'healthy',
    service_count: 0,
    last_heartbeat: now,
    register_time: now,
    last_health_check: now,
    version: '1.0.0',
    labels: {},
    services: [],
  };
}

describe('alert engine: pending_for, held state, deployment_failed', { timeout: 60_000 }, () => {
  let env: TestEnv;
  let store: Store;
  let database: DatabaseHandle;
  let engine: AlertEngine;
  let view: AgentsSnapshot | undefined;
  let version = 0;
  const sent: { event: AlertStatus; alert: Alert }[] = [];
  const PENDING_MS = 400;

  const show = (...agents: AgentView[]) => {
    view = {
      version: ++version,
      agents,
      get: (c) => agents.find((a) => a.agent_code === c),
      errorAreas: new Set(),
    };
  };
  const rows = async (subject: string) =>
    (await store.alerts.list({ page: 1, pageSize: 100 })).items.filter((a) => a.subject === subject);

  before(async () => {
    env = await testEnv('pglite');
    ({ store, database } = await openStore(env.config, testLogger(), { masterKey: TEST_MASTER_KEY }));
    engine = new AlertEngine({
      store,
      sources: {
        controllers: () => ({ synced: true, controllers: [] }),
        agents: () => view,
        subscribe: () => () => undefined,
      },
      notify: async (_tx, event, alert) => void sent.push({ event, alert }),
      intervalMs: 60_000,
      pendingForMs: PENDING_MS,
      logger: testLogger(),
    });
  });
  after(async () => {
    await engine?.stop();
    await database?.close();
    await env?.cleanup();
  });

  it('a blip shorter than pending_for pages nobody; a lasting condition fires once due', async () => {
    show(agent('a1', 'online'));
    await engine.evaluate();
    show(agent('a1', 'offline'));
    await engine.evaluate();
    assert.deepEqual(await rows('agent:a1'), [], 'pending, not firing');
    show(agent('a1', 'online'));
    await engine.evaluate();
    await sleep(PENDING_MS + 200);
    await engine.evaluate();
    assert.deepEqual(await rows('agent:a1'), []);
    assert.equal(sent.length, 0);

    show(agent('a1', 'offline'));
    const began = Date.now();
    await engine.evaluate();
    assert.deepEqual(await rows('agent:a1'), []);
    // Nothing calls evaluate() now: the engine wakes itself when the condition is due.
    const [fired] = await waitFor(
      async () => {
        const r = await rows('agent:a1');
        return r.length === 1 ? r : undefined;
      },
      { timeoutMs: 5000, what: 'the alert to fire after pending_for' },
    );
    assert.equal(fired!.status, 'firing');
    assert.ok(Date.now() - began >= PENDING_MS);
    assert.ok(
      Math.abs(Date.parse(fired!.firstSeen.toISOString()) - began) < 200,
      'first_seen = when it began',
    );
    assert.deepEqual(
      sent.map((s) => s.event),
      ['firing'],
    );

    show(agent('a1', 'online'));
    await engine.evaluate();
    assert.equal((await rows('agent:a1'))[0]?.status, 'resolved');
    assert.deepEqual(
      sent.map((s) => s.event),
      ['firing', 'resolved'],
    );
  });

  it('fires again as a new row; an unusable view neither fires nor resolves', async () => {
    show(agent('a1', 'offline'));
    await engine.evaluate();
    await sleep(PENDING_MS + 50);
    await engine.evaluate();
    const all = await rows('agent:a1');
    assert.equal(all.length, 2);
    assert.deepEqual(all.map((a) => a.status).sort(), ['firing', 'resolved']);
    view = undefined; // e.g. discovery lost etcd: the view cannot be trusted
    await engine.evaluate();
    assert.equal(
      (await rows('agent:a1')).filter((a) => a.status === 'firing').length,
      1,
      'held, not resolved',
    );
    show(); // the agent is not listed at all and has no device: nothing left to watch
    await engine.evaluate();
    assert.equal((await rows('agent:a1')).filter((a) => a.status === 'firing').length, 0);
  });

  it('deployment_failed fires once and resolves when a later deployment of the device succeeds', async () => {
    const device = await createDevice(store, { ...deviceBody(7), name: 'dep-dev' });
    const run = async (outcome: 'failed' | 'succeeded') => {
      const r = await store.deployments.createRollout({
        type: 'restart',
        version: '',
        batchSize: 1,
        maxFailures: 0,
        acceptChangedHostKey: false,
        requestedBy: 'test',
        devices: [{ id: device.id, name: device.name, area: device.function_area }],
        steps: ['connect'],
      });
      const claimed = (await store.deployments.claim({ owner: 'test', leaseMs: 60_000, limit: 1 }))[0]!;
      assert.equal(claimed.id, r.deployments[0]!.id);
      await store.deployments.finish(
        claimed.id,
        'test',
        outcome,
        outcome === 'failed' ? { code: 'ssh_unreachable', message: 'connection refused' } : undefined,
      );
      return claimed.id;
    };
    const failed = await run('failed');
    await engine.evaluate();
    await engine.evaluate();
    const [alert] = await rows(`deployment:${failed}`);
    assert.equal(alert?.status, 'firing');
    assert.equal(alert?.labels.error_code, 'ssh_unreachable');
    assert.match(alert?.message ?? '', /connection refused/);
    assert.equal((await rows(`deployment:${failed}`)).length, 1, 'fires once');

    await run('succeeded');
    await engine.evaluate();
    const after = await rows(`deployment:${failed}`);
    assert.deepEqual(
      after.map((a) => a.status),
      ['resolved'],
    );
    await engine.evaluate();
    assert.equal((await rows(`deployment:${failed}`)).length, 1, 'a resolved failure does not fire again');
  });

  it('a silenced alert fires and resolves without notifying anyone; once the silence ends it notifies again', async () => {
    const silence = await store.silences.create({
      kind: null,
      area: 'area-1',
      agentCode: 'a9',
      comment: 'maintenance',
      createdBy: 'test',
      expiresAt: new Date(Date.now() + 3600_000),
    });
    const before = sent.length;
    const notified = () => sent.slice(before).filter((s) => s.alert.subject === 'agent:a9');
    show(agent('a9', 'online'));
    await engine.evaluate();
    show(agent('a9', 'offline'));
    await engine.evaluate();
    await sleep(PENDING_MS + 50);
    await engine.evaluate();
    assert.equal((await rows('agent:a9'))[0]?.status, 'firing', 'it fires');
    show(agent('a9', 'online'));
    await engine.evaluate();
    assert.equal((await rows('agent:a9'))[0]?.status, 'resolved', 'and resolves');
    assert.deepEqual(notified(), [], 'nobody was notified');

    await store.silences.expire(silence.id);
    show(agent('a9', 'offline'));
    await engine.evaluate();
    await sleep(PENDING_MS + 50);
    await engine.evaluate();
    assert.deepEqual(
      notified().map((s) => s.event),
      ['firing'],
    );
  });
});
