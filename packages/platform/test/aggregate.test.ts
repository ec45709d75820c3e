/**
 * Pool, aggregation and cross-area batch against real HTTP controllers (fake-controller.ts),
 * with one controller down (a closed port).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ControllerUnavailableError, ValidationError, type BatchOperationResult } from '@opsplane/models';
import {
  ConcurrencyLimiter,
  ControllerClientPool,
  aggregateAgents,
  batchAcrossAreas,
  type AreaResolver,
} from '../src/index.js';
import {
  closedPort,
  makeAgent,
  stall,
  sendJson,
  startFakeController,
  type FakeController,
} from './helpers/fake-controller.js';
import { MemorySource, makeController } from './helpers/memory-source.js';
import { waitFor } from '@opsplane/test-support';

const CLIENT_OPTS = { retryTimes: 1, retryIntervalMs: 5, maxRetryIntervalMs: 10, timeoutMs: 2000 };

/** Every (agent, package) asked for has exactly one result, and the counts agree. */
function assertComplete(res: BatchOperationResult, agents: string[], packages: string[]) {
  const keys = res.results.map((r) => `${r.agent_code}|${r.package}`);
  const expected = agents.flatMap((a) => packages.map((p) => `${a}|${p}`));
  assert.deepEqual([...keys].sort(), [...expected].sort());
  assert.equal(new Set(keys).size, keys.length, 'no duplicates');
  assert.equal(res.total, res.results.length);
  assert.equal(res.success, res.results.filter((r) => r.success).length);
  assert.equal(res.failed, res.total - res.success);
}

describe('ControllerClientPool', () => {
  let a: FakeController;
  let b: FakeController;
  before(async () => {
    a = await startFakeController({ id: 'ctrl-a' });
    b = await startFakeController({ id: 'ctrl-b' });
  });
  after(async () => {
    await a.close();
    await b.close();
  });

  test('one client per controller, freshest online first, following updates and deletes', async () => {
    const source = new MemorySource();
    source.put(makeController('area-1', 'ctrl-a', a.address, { last_heartbeat: '2024-01-15T10:30:00Z' }));
    const pool = new ControllerClientPool(source, { clientOptions: CLIENT_OPTS });
    try {
      assert.deepEqual(pool.keys(), ['area-1/ctrl-a']);
      // An update after construction arrives through the subscription.
      source.put(makeController('area-1', 'ctrl-b', b.address, { last_heartbeat: '2024-01-15T10:31:00Z' }));
      source.put(
        makeController('area-1', 'ctrl-x', '127.0.0.1:1', {
          status: 'offline',
          last_heartbeat: '2024-01-15T11:00:00Z',
        }),
      );
      assert.deepEqual(pool.keys(), ['area-1/ctrl-a', 'area-1/ctrl-b', 'area-1/ctrl-x']);
      assert.deepEqual(
        pool.onlineControllers('area-1').map((p) => p.controller.id),
        ['ctrl-b', 'ctrl-a'],
      );
      const clients = pool.clientsForArea('area-1');
      assert.equal(clients.length, 2);
      assert.equal(pool.getClient('area-1'), clients[0]);
      assert.equal((await pool.getClient('area-1').getStatus()).id, 'ctrl-b');

      // Same address: same client. New address: new client, the old one closed.
      const clientA = pool.getClientFor('area-1', 'ctrl-a');
      source.put(makeController('area-1', 'ctrl-a', a.address, { last_heartbeat: '2024-01-15T10:32:00Z' }));
      assert.equal(pool.getClientFor('area-1', 'ctrl-a'), clientA);
      assert.equal(pool.getClient('area-1'), clientA, 'ctrl-a now has the freshest heartbeat');
      source.put(
        makeController('area-1', 'ctrl-a', `localhost:${a.port}`, { last_heartbeat: '2024-01-15T10:32:00Z' }),
      );
      const movedA = pool.getClientFor('area-1', 'ctrl-a');
      assert.notEqual(movedA, clientA);
      assert.equal(clientA?.closed, true);
      assert.equal(movedA?.baseUrl, `http://localhost:${a.port}`);

      source.delete('area-1', 'ctrl-a');
      assert.equal(movedA?.closed, true);
      assert.deepEqual(pool.keys(), ['area-1/ctrl-b', 'area-1/ctrl-x']);
      source.delete('area-1', 'ctrl-b');
      assert.throws(() => pool.getClient('area-1'), ControllerUnavailableError);
      assert.throws(
        () => pool.getClient('nowhere'),
        (e: unknown) => e instanceof ControllerUnavailableError && e.area === 'nowhere',
      );
    } finally {
      await pool.close();
    }
    assert.equal(source.listeners, 0, 'close unsubscribes');
    assert.equal(pool.size, 0);
  });

  test('close closes every client', async () => {
    const source = new MemorySource();
    source.put(makeController('area-1', 'ctrl-a', a.address));
    const pool = new ControllerClientPool(source, { clientOptions: CLIENT_OPTS });
    const c = pool.getClient('area-1');
    await c.getStatus();
    await pool.close();
    await pool.close();
    assert.equal(c.closed, true);
    assert.throws(() => pool.getClient('area-1'));
  });

  test("each area's controllers get that area's token; refreshArea() picks up a new one", async () => {
    const tokens = new Map([
      ['area-1', 'token-one'],
      ['area-2', 'token-two'],
    ]);
    const source = new MemorySource();
    source.put(makeController('area-1', 'ctrl-a', a.address));
    source.put(makeController('area-2', 'ctrl-b', b.address));
    const pool = new ControllerClientPool(source, {
      clientOptions: { ...CLIENT_OPTS, apiToken: 'shared-token' },
      apiTokenFor: (area) => tokens.get(area),
    });
    const lastAuth = (fc: FakeController) => fc.hits.at(-1)?.headers.authorization;
    try {
      await pool.getClient('area-1').getStatus();
      await pool.getClient('area-2').getStatus();
      assert.equal(lastAuth(a), 'Bearer token-one');
      assert.equal(lastAuth(b), 'Bearer token-two');

      const before1 = pool.getClient('area-1');
      const before2 = pool.getClient('area-2');
      tokens.set('area-1', 'token-one-rotated');
      pool.refreshArea('area-1');
      assert.notEqual(pool.getClient('area-1'), before1, 'new client for the refreshed area');
      assert.equal(pool.getClient('area-2'), before2, 'other areas keep their clients');
      await pool.getClient('area-1').getStatus();
      assert.equal(lastAuth(a), 'Bearer token-one-rotated');
      await waitFor(() => before1.closed, { what: 'the replaced client to close' });
    } finally {
      await pool.close();
    }
  });
});

describe('aggregateAgents and batchAcrossAreas across areas', () => {
  let ctrlA: FakeController;
  let ctrlB: FakeController;
  let ctrlC: FakeController;
  let downPort: number;
  let source: MemorySource;
  let pool: ControllerClientPool;

  before(async () => {
    // area-1: A and B both up; agent a2 moved from A (stale record) to B (fresh record).
    ctrlA = await startFakeController({
      id: 'ctrl-a',
      area: 'area-1',
      agents: [
        makeAgent('a1'),
        makeAgent('a2', { status: 'offline', last_heartbeat: '2024-01-15T10:00:00Z' }),
        makeAgent('a3'),
        makeAgent('a4'),
        makeAgent('a5'),
      ],
    });
    ctrlB = await startFakeController({
      id: 'ctrl-b',
      area: 'area-1',
      agents: [
        makeAgent('a2', { last_heartbeat: '2024-01-15T10:31:00Z', hostname: 'moved' }),
        makeAgent('a6'),
      ],
    });
    // area-2: C up, D down (closed port) with the freshest heartbeat, so it is tried first.
    ctrlC = await startFakeController({
      id: 'ctrl-c',
      area: 'area-2',
      agents: [makeAgent('c1', { area_id: 'area-2' }), makeAgent('c2')],
    });
    downPort = await closedPort();
    source = new MemorySource();
    source.put(makeController('area-1', 'ctrl-a', ctrlA.address, { last_heartbeat: '2024-01-15T10:30:05Z' }));
    source.put(makeController('area-1', 'ctrl-b', ctrlB.address, { last_heartbeat: '2024-01-15T10:30:03Z' }));
    source.put(makeController('area-2', 'ctrl-c', ctrlC.address, { last_heartbeat: '2024-01-15T10:30:00Z' }));
    source.put(
      makeController('area-2', 'ctrl-d', `127.0.0.1:${downPort}`, { last_heartbeat: '2024-01-15T10:30:09Z' }),
    );
    // area-3: its only controller is offline.
    source.put(makeController('area-3', 'ctrl-e', '127.0.0.1:1', { status: 'offline' }));
    pool = new ControllerClientPool(source, { clientOptions: CLIENT_OPTS });
  });
  after(async () => {
    await pool.close();
    await Promise.all([ctrlA.close(), ctrlB.close(), ctrlC.close()]);
  });

  test('lists every page of every online controller, dedupes by newest heartbeat, reports failures', async () => {
    ctrlA.hits.length = 0;
    const res = await aggregateAgents(pool, {
      pageSize: 2,
      limiter: new ConcurrencyLimiter(2),
      areas: ['area-1', 'area-4'],
    });
    assert.deepEqual(
      res.agents.map((x) => `${x.area}/${x.controller_id}/${x.id}`),
      [
        'area-1/ctrl-a/a1',
        'area-1/ctrl-b/a2',
        'area-1/ctrl-a/a3',
        'area-1/ctrl-a/a4',
        'area-1/ctrl-a/a5',
        'area-1/ctrl-b/a6',
        'area-2/ctrl-c/c1',
        'area-2/ctrl-c/c2',
      ],
    );
    const a2 = res.agents.find((x) => x.id === 'a2');
    assert.equal(a2?.status, 'online');
    assert.equal(a2?.hostname, 'moved');
    assert.equal(a2?.last_heartbeat, '2024-01-15T10:31:00Z');
    assert.equal(a2?.agent.hostname, 'moved');
    assert.equal(a2?.service_count, 2);
    assert.equal(a2?.agent_code, 'a2');
    // Three pages of two from A, with the camelCase parameter.
    assert.deepEqual(
      ctrlA.hits.map((h) => h.url),
      [
        '/api/v1/agents?page=1&pageSize=2',
        '/api/v1/agents?page=2&pageSize=2',
        '/api/v1/agents?page=3&pageSize=2',
      ],
    );
    assert.deepEqual(
      res.errors.map((e) => `${e.area}/${e.controller_id}:${e.error.code}`),
      [
        'area-2/ctrl-d:controller_unavailable',
        'area-3/ctrl-e:controller_unavailable',
        'area-4/:controller_unavailable',
      ],
    );
    assert.match(res.errors[0]?.error.message ?? '', /ECONNREFUSED/);
  });

  test('aggregateAgents honours an abort signal', async () => {
    await assert.rejects(aggregateAgents(pool, { signal: AbortSignal.abort() }), { name: 'AbortError' });
  });

  test('batch: exactly one result per (agent, package), whatever fails where', async () => {
    const groups = new Map<string, string[]>([
      ['area-1', ['a1', 'a6', 'ghost1']], // a6 is on B: A says not connected, B does it
      ['area-2', ['c1']], // D is down: C does it
      ['area-3', ['e1', 'e2']], // no online controller
      ['area-9', ['z1']], // no controller at all
    ]);
    const packages = ['nginx', 'redis'];
    const res = await batchAcrossAreas(pool, { action: 'restart', packages }, groups);
    const agents = [...groups.values()].flat();
    assertComplete(res, agents, packages);
    const byAgent = (code: string) => res.results.filter((r) => r.agent_code === code);
    for (const ok of ['a1', 'a6', 'c1'])
      assert.ok(
        byAgent(ok).every((r) => r.success),
        `${ok} succeeded`,
      );
    assert.match(byAgent('a6')[0]?.message ?? '', /ctrl-b/);
    assert.match(byAgent('c1')[0]?.message ?? '', /ctrl-c/);
    assert.ok(byAgent('ghost1').every((r) => !r.success && r.error?.startsWith('agent_not_found')));
    for (const e of ['e1', 'e2']) {
      assert.deepEqual(
        byAgent(e).map((r) => r.error),
        packages.map(() => "controller_unavailable: no online controller for area 'area-3'"),
      );
    }
    assert.ok(
      byAgent('z1').every(
        (r) => r.error === "controller_unavailable: no online controller for area 'area-9'",
      ),
    );
    assert.equal(res.total, 14);
    assert.equal(res.success, 6);
    assert.equal(res.failed, 8);
    // Results come back in the caller's agent order.
    assert.deepEqual([...new Set(res.results.map((r) => r.agent_code))], agents);
  });

  test('batch with an area resolver: unknown areas and resolver failures become failed results', async () => {
    const areaOf: AreaResolver = async (code) => {
      if (code === 'broken') throw new Error('inventory unavailable');
      return code.startsWith('a') ? 'area-1' : code.startsWith('c') ? 'area-2' : undefined;
    };
    const res = await batchAcrossAreas(
      pool,
      {
        action: 'configs',
        package: 'nginx',
        configs: [{ file_name: 'nginx.conf', content: 'x' }],
        agents: ['a1', 'c2', 'mystery', 'broken', 'a1', 'bad/code'],
      },
      areaOf,
    );
    assertComplete(res, ['a1', 'c2', 'mystery', 'broken', 'bad/code'], ['nginx']);
    const err = (code: string) => res.results.find((r) => r.agent_code === code)?.error ?? '';
    assert.equal(res.success, 2);
    assert.match(err('mystery'), /^agent_not_found: no area known/);
    assert.match(err('broken'), /inventory unavailable/);
    assert.match(err('bad/code'), /^validation_failed/);
    await assert.rejects(
      batchAcrossAreas(pool, { action: 'start', packages: ['../x'] }, new Map([['area-1', ['a1']]])),
      ValidationError,
    );
  });

  test('batch without packages: one result per package the controller reports, "" for the unreachable', async () => {
    const res = await batchAcrossAreas(
      pool,
      { action: 'stop' },
      new Map([
        ['area-1', ['a1']],
        ['area-3', ['e1']],
      ]),
    );
    assert.deepEqual(
      res.results.map((r) => `${r.agent_code}|${r.package}|${r.success}`),
      ['a1|nginx|true', 'a1|redis|true', 'e1||false'],
    );
    assert.equal(res.total, 3);
  });

  test('batch: results a controller forgets are filled, duplicates and extras dropped', async () => {
    const sloppy = await startFakeController({
      id: 'ctrl-m',
      area: 'area-m',
      agents: [makeAgent('m1'), makeAgent('m2')],
      mangleBatch: (rs) => [
        ...rs.slice(1), // forgets the first
        ...rs.slice(1, 2), // repeats one
        { agent_code: 'intruder', package: 'nginx', success: true }, // nobody asked
        { agent_code: 'm2', package: 'unasked', success: true },
      ],
    });
    source.put(makeController('area-m', 'ctrl-m', sloppy.address));
    try {
      const res = await batchAcrossAreas(
        pool,
        { action: 'start', packages: ['nginx', 'redis'] },
        new Map([['area-m', ['m1', 'm2']]]),
      );
      assertComplete(res, ['m1', 'm2'], ['nginx', 'redis']);
      const missing = res.results.find((r) => r.agent_code === 'm1' && r.package === 'nginx');
      assert.equal(missing?.success, false);
      assert.equal(missing?.error, "upstream_error: no result from controller 'area-m/ctrl-m'");
      assert.equal(res.success, 3);
    } finally {
      source.delete('area-m', 'ctrl-m');
      await sloppy.close();
    }
  });

  test('batch: a controller that does not answer by the deadline gives outcome_unknown; others are unaffected', async () => {
    const slow = await startFakeController({ id: 'ctrl-s', area: 'area-s', agents: [makeAgent('s1')] });
    slow.intercept = async (_req, res) => {
      await stall(res, 5000);
      if (!res.destroyed) sendJson(res, 200, { total: 0, success: 0, failed: 0, results: [] });
      return true;
    };
    source.put(makeController('area-s', 'ctrl-s', slow.address));
    try {
      const t0 = Date.now();
      const res = await batchAcrossAreas(
        pool,
        { action: 'start', packages: ['nginx'] },
        new Map([
          ['area-s', ['s1']],
          ['area-1', ['a1']],
        ]),
        { timeoutMs: 300, pollMs: 50 },
      );
      assert.ok(Date.now() - t0 < 1200, `took ${Date.now() - t0} ms for a 300 ms deadline`);
      assertComplete(res, ['s1', 'a1'], ['nginx']);
      const s1 = res.results.find((r) => r.agent_code === 's1');
      // The request was sent and not answered: it may have reached the agent.
      assert.equal(s1?.reason, 'outcome_unknown');
      assert.match(s1?.error ?? '', /^outcome_unknown: no answer from the agent in time \(timeout: /);
      assert.equal(res.results.find((r) => r.agent_code === 'a1')?.success, true);
      await assert.rejects(
        batchAcrossAreas(pool, { action: 'start' }, new Map([['area-s', ['s1']]]), {
          signal: AbortSignal.timeout(50),
        }),
        { name: 'TimeoutError' },
      );
    } finally {
      source.delete('area-s', 'ctrl-s');
      await slow.close();
    }
  });

  test('batch: large areas are split into several requests', async () => {
    ctrlA.hits.length = 0;
    const res = await batchAcrossAreas(
      pool,
      { action: 'start', packages: ['nginx'] },
      new Map([['area-1', ['a1', 'a3', 'a4', 'a5']]]),
      {
        maxAgentsPerRequest: 3,
      },
    );
    assertComplete(res, ['a1', 'a3', 'a4', 'a5'], ['nginx']);
    assert.equal(res.success, 4);
    assert.equal(ctrlA.hits.filter((h) => h.method === 'POST').length, 2);
  });
});
