/**
 * Batch operations with test agents speaking the real protocol: exactly one result per
 * (agent, package) — including unknown, offline and timed-out agents, each saying why —, "all
 * packages" when none are named, config batches, and forwarding between two controllers of one
 * area (agent held by B, request sent to A → the real result, and the reverse).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Agent, AgentRequest, BatchOperationResult, OperationResult } from '@opsplane/models';
import { startEtcd, waitFor, type EtcdHandle } from '@opsplane/test-support';
import { FORWARDED_HEADER, type RunningController } from '../src/index.js';
import { FakeAgent } from './support/fake-agent.js';
import { SECRET, getJson, postJson, startTestController } from './support/harness.js';

const TIMEOUT_MS = 800;
let etcd: EtcdHandle;
let ctrlA: RunningController;
let ctrlB: RunningController;
const fakes: FakeAgent[] = [];
let ok: FakeAgent;
let remote: FakeAgent;

async function connect(
  ctrl: RunningController,
  code: string,
  extra: Partial<Parameters<typeof FakeAgent.connect>[0]> = {},
) {
  const a = await FakeAgent.connect({ url: ctrl.url, code, area: 'area-1', secret: SECRET, ...extra });
  fakes.push(a);
  return a;
}

const batch = async (
  ctrl: RunningController,
  op: string,
  body: unknown,
  headers: Record<string, string> = {},
) => {
  const r = await postJson<BatchOperationResult>(`${ctrl.url}/api/v1/agents/batch/${op}`, body, headers);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.body;
};

/** `agent/package → success|error-prefix` for compact, exact assertions. */
function summary(results: OperationResult[]): Record<string, string> {
  return Object.fromEntries(
    results.map((r) => [
      `${r.agent_code}/${r.package}`,
      r.success ? 'ok' : ((r.error ?? '').split(':')[0] ?? ''),
    ]),
  );
}

before(async () => {
  etcd = await startEtcd();
  const overrides = { batch: { per_agent_timeout: `${TIMEOUT_MS}ms` }, agents: { request_timeout: '1s' } };
  ctrlA = await startTestController(etcd, { id: 'ctrl-a', ...overrides });
  ctrlB = await startTestController(etcd, { id: 'ctrl-b', ...overrides });
  ok = await connect(ctrlA, 'b-ok');
  await connect(ctrlA, 'b-slow', { hang: ['action', 'configs'] });
  const gone = await connect(ctrlA, 'b-gone', { packages: ['api'] });
  await gone.close();
  remote = await connect(ctrlB, 'b-remote', { packages: ['web', 'cache'] });
  // A sees B through etcd discovery once B's registration is in; until then nothing is forwarded.
  await waitFor(async () => (await getJson(`${ctrlA.url}/api/v1/agents/b-remote`)).status === 200, {
    timeoutMs: 10_000,
    what: 'controller A to reach b-remote through B',
  });
});

after(async () => {
  await Promise.all(fakes.map((a) => a.close()));
  await Promise.all([ctrlA?.stop(), ctrlB?.stop()]);
  await etcd?.stop();
});

describe('batch results', () => {
  it('returns exactly one result per (agent, package), saying why for unknown, offline and timed-out agents', async () => {
    const started = Date.now();
    const r = await batch(ctrlA, 'stop', {
      agents: ['b-ok', 'b-slow', 'b-gone', 'b-none'],
      packages: ['web', 'db'],
    });
    const took = Date.now() - started;
    assert.deepEqual(summary(r.results), {
      'b-ok/web': 'ok',
      'b-ok/db': 'ok',
      'b-slow/web': 'timeout',
      'b-slow/db': 'timeout',
      'b-gone/web': 'agent_offline',
      'b-gone/db': 'agent_offline',
      'b-none/web': 'agent_not_found',
      'b-none/db': 'agent_not_found',
    });
    assert.equal(r.results.length, 8);
    assert.equal(r.total, 8);
    assert.equal(r.success, 2);
    assert.equal(r.failed, 6);
    assert.deepEqual(
      r.results.map((x) => x.agent_code),
      ['b-ok', 'b-ok', 'b-slow', 'b-slow', 'b-gone', 'b-gone', 'b-none', 'b-none'],
    );
    assert.equal(r.results[0]?.message, 'stop web done');
    assert.match(r.results[2]?.error ?? '', new RegExp(`${TIMEOUT_MS} ms`));
    assert.match(r.results[6]?.error ?? '', /b-none/);
    assert.ok(took >= TIMEOUT_MS, `took ${took} ms`);
    assert.ok(r.duration_ms >= TIMEOUT_MS);
    const sent = ok.requests.at(-1) as Extract<AgentRequest, { op: 'action' }>;
    assert.match(
      sent.operation_id ?? '',
      /^ctl-/,
      'a caller without an id gets one made up (each call acts)',
    );
    assert.deepEqual(
      { ...sent, operation_id: undefined },
      { op: 'action', action: 'stop', packages: ['web', 'db'], operation_id: undefined },
    );
  });

  it('waits for agents concurrently: three timeouts cost one timeout, not three', async () => {
    await Promise.all([
      connect(ctrlA, 'b-slow2', { hang: ['action'] }),
      connect(ctrlA, 'b-slow3', { hang: ['action'] }),
    ]);
    const started = Date.now();
    const r = await batch(ctrlA, 'start', { agents: ['b-slow', 'b-slow2', 'b-slow3'], packages: ['web'] });
    const took = Date.now() - started;
    assert.deepEqual(summary(r.results), {
      'b-slow/web': 'timeout',
      'b-slow2/web': 'timeout',
      'b-slow3/web': 'timeout',
    });
    assert.ok(took >= TIMEOUT_MS && took < 2.5 * TIMEOUT_MS, `took ${took} ms`);
  });

  it('with no packages covers every package of each agent', async () => {
    const r = await batch(ctrlA, 'restart', { agents: ['b-ok', 'b-slow', 'b-gone', 'b-none'] });
    assert.deepEqual(summary(r.results), {
      'b-ok/web': 'ok',
      'b-ok/db': 'ok',
      'b-slow/web': 'timeout',
      'b-slow/db': 'timeout',
      'b-gone/api': 'agent_offline',
      'b-none/': 'agent_not_found',
    });
    assert.deepEqual(
      { ...ok.requests.at(-1), operation_id: undefined },
      {
        op: 'action',
        action: 'restart',
        packages: [],
        operation_id: undefined,
      },
    );
    const nullPackages = await batch(ctrlA, 'start', { agents: ['b-ok'], packages: null });
    assert.deepEqual(summary(nullPackages.results), { 'b-ok/web': 'ok', 'b-ok/db': 'ok' });
  });

  it('reports a package the agent does not have as a failure of that entry only', async () => {
    const r = await batch(ctrlA, 'start', { agents: ['b-ok'], packages: ['web', 'ghost'] });
    assert.deepEqual(summary(r.results), { 'b-ok/web': 'ok', 'b-ok/ghost': 'package_not_found' });
    assert.equal(r.success, 1);
  });

  it('dedupes repeated agents and packages', async () => {
    const r = await batch(ctrlA, 'start', { agents: ['b-ok', 'b-ok'], packages: ['web', 'web'] });
    assert.equal(r.total, 1);
  });

  it('sends config batches as op configs and returns one result per agent', async () => {
    const configs = [
      { file_name: 'app.conf', content: 'port = 8080\n' },
      { file_name: 'extra.env', content: 'A=1' },
    ];
    const r = await batch(ctrlA, 'configs', {
      agents: ['b-ok', 'b-slow', 'b-none'],
      package: 'web',
      configs,
      config_file: 'app.conf',
    });
    assert.deepEqual(summary(r.results), {
      'b-ok/web': 'ok',
      'b-slow/web': 'timeout',
      'b-none/web': 'agent_not_found',
    });
    assert.equal(r.results[0]?.message, 'wrote 2 file(s)');
    const req = ok.requests.at(-1) as Extract<AgentRequest, { op: 'configs' }>;
    assert.equal(req.op, 'configs');
    assert.equal(req.package, 'web');
    assert.deepEqual(req.configs, configs);
    assert.equal(req.config_file, 'app.conf');
  });
});

describe('several controllers in one area', () => {
  it('reaches an agent held by a peer in a batch (agent on B, request to A)', async () => {
    const before = remote.requests.length;
    const r = await batch(ctrlA, 'restart', { agents: ['b-ok', 'b-remote', 'b-none'], packages: ['web'] });
    assert.deepEqual(summary(r.results), {
      'b-ok/web': 'ok',
      'b-remote/web': 'ok',
      'b-none/web': 'agent_not_found',
    });
    assert.equal(r.results[1]?.message, 'restart web done');
    assert.equal(remote.requests.length, before + 1);
    // With no packages the peer's agent reports all of its own.
    const all = await batch(ctrlA, 'stop', { agents: ['b-remote'] });
    assert.deepEqual(summary(all.results), { 'b-remote/web': 'ok', 'b-remote/cache': 'ok' });
  });

  it('works the other way round too (agent on A, request to B)', async () => {
    const r = await batch(ctrlB, 'start', { agents: ['b-ok', 'b-remote'], packages: ['web'] });
    assert.deepEqual(summary(r.results), { 'b-ok/web': 'ok', 'b-remote/web': 'ok' });
    // An agent only A knows (offline) is reported offline through B as well, once, with A's word on it.
    const off = await batch(ctrlB, 'start', { agents: ['b-gone'], packages: ['api'] });
    assert.deepEqual(summary(off.results), { 'b-gone/api': 'agent_offline' });
    assert.match(off.results[0]?.error ?? '', /ctrl-a/);
    const offAll = await batch(ctrlB, 'start', { agents: ['b-gone'] });
    assert.deepEqual(summary(offAll.results), { 'b-gone/api': 'agent_offline' });
  });

  it('forwards single-agent reads to the peer that holds the agent', async () => {
    const a = await getJson<Agent>(`${ctrlA.url}/api/v1/agents/b-remote`);
    assert.equal(a.status, 200);
    assert.equal(a.body.controller_id, 'ctrl-b');
    assert.equal(a.body.status, 'online');
    assert.equal(a.headers.get('x-opsplane-served-by'), 'ctrl-b');
    const h = await getJson<{ agent_id: string; overall_status: string }>(
      `${ctrlA.url}/api/v1/agents/b-remote/health`,
    );
    assert.equal(h.status, 200);
    assert.equal(h.body.agent_id, 'b-remote');
    const p = await getJson<{ code?: string; error?: { code: string } }>(
      `${ctrlA.url}/api/v1/agents/b-remote/health/ghost`,
    );
    assert.equal(p.status, 404);
    assert.equal(p.body.error?.code, 'package_not_found');
    const svc = await getJson<{ services: Record<string, unknown> }>(
      `${ctrlA.url}/api/v1/agents/b-remote/metrics/services?package=cache`,
    );
    assert.deepEqual(Object.keys(svc.body.services), ['cache']);
    // The list answers for the whole area, as a Go controller's: ctrl-a lists ctrl-b's agent,
    // saying that ctrl-b holds it; a forwarded list stays local (no loops).
    const listA = await getJson<{ agents: Agent[] }>(`${ctrlA.url}/api/v1/agents?id=b-remote`);
    assert.deepEqual(
      listA.body.agents.map((x) => [x.id, x.controller_id, x.status]),
      [['b-remote', 'ctrl-b', 'online']],
    );
    const localA = await getJson<{ agents: Agent[] }>(`${ctrlA.url}/api/v1/agents?id=b-remote`, {
      [FORWARDED_HEADER]: '1',
    });
    assert.deepEqual(localA.body.agents, []);
  });

  it('answers forwarded requests only for agents it holds, and never forwards them again', async () => {
    const fwd = { [FORWARDED_HEADER]: '1' };
    const r = await batch(ctrlA, 'start', { agents: ['b-remote', 'b-ok'], packages: ['web'] }, fwd);
    assert.deepEqual(summary(r.results), { 'b-remote/web': 'agent_not_connected', 'b-ok/web': 'ok' });
    const g = await getJson<{ error: { code: string } }>(`${ctrlA.url}/api/v1/agents/b-remote`, fwd);
    assert.equal(g.status, 404);
    assert.equal(g.body.error.code, 'agent_not_found');
  });
});
