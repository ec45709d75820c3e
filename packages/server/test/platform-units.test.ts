/**
 * The platform services' pure parts: the agent index against a brute-force reference, the
 * `areas:` configuration (file, OPSPLANE_AREAS_FILE, overrides; never printable), the recorded
 * batch request (no config contents), and how controller errors map to API errors.
 */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { inspect } from 'node:util';
import { ValidationError } from '@opsplane/models';
import { ControllerHttpError } from '@opsplane/platform';
import { tempDir } from '@opsplane/test-support';
import { AgentListQuerySchema, BatchCreateSchema, type AgentSortField, type AgentView } from '@opsplane/api';
import { AgentIndex, loadServerConfig, recordedRequest, upstreamError } from '../src/index.js';

function fakeAgents(n: number, seed = 1): AgentView[] {
  let x = seed;
  const rnd = () => (x = (x * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  const statuses = ['online', 'offline', 'unknown'] as const;
  const health = ['healthy', 'degraded', 'unhealthy', 'unknown'];
  return Array.from({ length: n }, (_, i) => {
    const id = `agt-${String(Math.floor(rnd() * 1e9)).padStart(9, '0')}-${i}`;
    return {
      id,
      agent_code: id,
      area: `area-${Math.floor(rnd() * 5)}`,
      controller_id: `ctl-${Math.floor(rnd() * 3)}`,
      device_id: rnd() < 0.5 ? `dev-${i}` : null,
      device_name: rnd() < 0.5 ? `host-${Math.floor(rnd() * 100)}` : null,
      address: `10.0.${Math.floor(rnd() * 255)}.${i % 255}`,
      hostname: `h${Math.floor(rnd() * 1000)}`,
      status: statuses[Math.floor(rnd() * 3)] as AgentView['status'],
      health_status: health[Math.floor(rnd() * 4)] as string,
      service_count: Math.floor(rnd() * 4),
      last_heartbeat: new Date(1_700_000_000_000 + Math.floor(rnd() * 1e6) * 1000).toISOString(),
      register_time: new Date(1_600_000_000_000 + Math.floor(rnd() * 1e6) * 1000).toISOString(),
      last_health_check: '0001-01-01T00:00:00Z',
      version: `1.${Math.floor(rnd() * 3)}.0`,
      labels: {},
      services: [],
    };
  });
}

/** The obvious implementation, to compare with. */
function reference(agents: AgentView[], q: Parameters<AgentIndex['query']>[0]) {
  const key = (a: AgentView): string | number => {
    if (q.sort === 'last_heartbeat') return Date.parse(a.last_heartbeat);
    if (q.sort === 'register_time') return Date.parse(a.register_time);
    if (q.sort === 'service_count') return a.service_count;
    if (q.sort === 'device_name') return a.device_name ?? '\uffff';
    return a[q.sort];
  };
  const cmp = (x: string | number, y: string | number) => (x < y ? -1 : x > y ? 1 : 0);
  const matched = agents.filter(
    (a) =>
      (!q.area || q.area.includes(a.area)) &&
      (!q.status || q.status.includes(a.status)) &&
      (!q.health_status || q.health_status.includes(a.health_status)) &&
      (!q.controller_id || a.controller_id === q.controller_id) &&
      (!q.version || a.version === q.version) &&
      (!q.q ||
        `${a.id}\u0001${a.hostname}\u0001${a.address}\u0001${a.device_name ?? ''}`
          .toLowerCase()
          .includes(q.q.toLowerCase())),
  );
  const sorted = matched.sort((a, b) => cmp(key(a), key(b)) || cmp(a.id, b.id));
  if (q.desc) sorted.reverse();
  const start = (q.page - 1) * q.pageSize;
  return { total: matched.length, ids: sorted.slice(start, start + q.pageSize).map((a) => a.id) };
}

describe('AgentIndex', () => {
  const agents = fakeAgents(3000);
  const index = new AgentIndex(agents);
  const sorts: AgentSortField[] = [
    'id',
    'area',
    'status',
    'health_status',
    'last_heartbeat',
    'version',
    'device_name',
    'service_count',
    'hostname',
  ];

  it('answers filter × search × sort × page like the brute-force reference', () => {
    const cases = [
      {},
      { area: ['area-1'] },
      { area: ['area-1', 'area-3'], status: ['online' as const] },
      { status: ['offline' as const], health_status: ['healthy', 'degraded'] },
      { controller_id: 'ctl-2', version: '1.1.0' },
      { q: 'HOST-4' },
      { q: '10.0.1', area: ['area-0'] },
      { q: 'nothing-matches-this' },
    ];
    let checked = 0;
    for (const filter of cases)
      for (const sort of sorts)
        for (const desc of [false, true])
          for (const [page, pageSize] of [
            [1, 50],
            [3, 17],
            [1000, 50],
          ] as const) {
            const q = { ...filter, sort, desc, page, pageSize };
            const got = index.query(q);
            const want = reference(agents, q);
            assert.equal(got.total, want.total, JSON.stringify(q));
            assert.deepEqual(
              got.agents.map((a) => a.id),
              want.ids,
              JSON.stringify(q),
            );
            checked++;
          }
    assert.equal(checked, cases.length * sorts.length * 2 * 3);
  });

  it('looks up by code, selects for batches, counts by area and status', () => {
    const a = agents[42] as AgentView;
    assert.equal(index.get(a.agent_code), a);
    assert.equal(index.get('nope'), undefined);
    const sel = index.select({ area: ['area-2'], status: ['online'] });
    assert.ok(sel.length > 0 && sel.every((x) => x.area === 'area-2' && x.status === 'online'));
    assert.equal(
      [...index.countsByArea().values()].reduce((s, n) => s + n, 0),
      agents.length,
    );
    assert.equal(AgentIndex.empty().query({ sort: 'id', desc: false, page: 1, pageSize: 10 }).total, 0);
  });

  it('is fast at 100 000 agents (warm sort orders)', () => {
    const big = new AgentIndex(fakeAgents(100_000, 7));
    const q = {
      status: ['online' as const],
      area: ['area-3'],
      sort: 'last_heartbeat' as const,
      desc: true,
      page: 2,
      pageSize: 50,
    };
    big.query(q); // builds the order once
    const t0 = performance.now();
    for (let i = 0; i < 50; i++) big.query(q);
    const per = (performance.now() - t0) / 50;
    assert.ok(per < 25, `a filtered, sorted page took ${per.toFixed(2)} ms`);
  });

  it('the query string: [-]field sorts, csv filters, unknown parameters and bad values are 400s', () => {
    const q = AgentListQuerySchema.parse({
      sort: '-last_heartbeat',
      status: 'online,offline',
      area: 'area-1',
    });
    assert.equal(q.sort, '-last_heartbeat');
    assert.deepEqual(q.status, ['online', 'offline']);
    assert.equal(q.pageSize, 50);
    assert.ok(!AgentListQuerySchema.safeParse({ sort: 'password' }).success);
    assert.ok(!AgentListQuerySchema.safeParse({ status: 'sleeping' }).success);
    assert.ok(!AgentListQuerySchema.safeParse({ page_size: '5' }).success);
  });
});

describe('areas configuration', () => {
  it('file < OPSPLANE_AREAS_FILE < overrides, field by field; never printable', async () => {
    const dir = await tempDir();
    try {
      const file = join(dir.path, 'platform.yaml');
      await writeFile(
        file,
        'areas:\n  area-1:\n    agent_secret: file-secret-0123456789\n    controller_token: file-token\n  area-2: {}\n',
      );
      const areasFile = join(dir.path, 'areas.yaml');
      await writeFile(
        areasFile,
        'area-1:\n  controller_token: env-token\narea-3:\n  agent_secret: env-secret-0123456789\n',
      );
      const cfg = await loadServerConfig(
        file,
        { areas: { 'area-3': { controller_token: 'override-token' } } },
        { OPSPLANE_AREAS_FILE: areasFile },
      );
      assert.equal(cfg.areas['area-1']?.agent_secret?.reveal(), 'file-secret-0123456789');
      assert.equal(cfg.areas['area-1']?.controller_token?.reveal(), 'env-token');
      assert.deepEqual(cfg.areas['area-2'], {});
      assert.equal(cfg.areas['area-3']?.agent_secret?.reveal(), 'env-secret-0123456789');
      assert.equal(cfg.areas['area-3']?.controller_token?.reveal(), 'override-token');
      const shown =
        JSON.stringify(cfg) + inspect(cfg, { depth: 10 }) + String(cfg.areas['area-1']?.agent_secret);
      for (const v of ['file-secret', 'env-token', 'env-secret', 'override-token', 'file-token'])
        assert.ok(!shown.includes(v), `${v} printable`);

      // An areas file with a top-level `areas:` key works too.
      await writeFile(areasFile, 'areas:\n  area-9: { controller_token: t9 }\n');
      const c2 = await loadServerConfig(undefined, {}, { OPSPLANE_AREAS_FILE: areasFile });
      assert.equal(c2.areas['area-9']?.controller_token?.reveal(), 't9');
    } finally {
      await dir.cleanup();
    }
  });

  it('names the bad field', async () => {
    await assert.rejects(
      loadServerConfig(undefined, { areas: { 'area-1': { agent_secret: 'short' } } }, {}),
      (e) => e instanceof ValidationError && /areas\.area-1\.agent_secret/.test(e.message),
    );
    await assert.rejects(
      loadServerConfig(undefined, { areas: { 'bad area': {} } }, {}),
      (e) => e instanceof ValidationError && /areas/.test(e.message),
    );
    await assert.rejects(
      loadServerConfig(undefined, {}, { OPSPLANE_AREAS_FILE: '/nonexistent/areas.yaml' }),
      /OPSPLANE_AREAS_FILE/,
    );
  });
});

describe('batches and controller errors', () => {
  it('a batch request is checked up front and recorded without config contents', () => {
    const body = BatchCreateSchema.parse({
      action: 'configs',
      agents: ['a1'],
      package: 'web',
      configs: [{ file_name: 'web.json', content: '{"password":"hunter2-secret"}' }],
    });
    const rec = JSON.stringify(recordedRequest(body, 1));
    assert.ok(!rec.includes('hunter2-secret'));
    assert.match(rec, /"sha256":"[0-9a-f]{64}"/);
    const bad = (b: unknown) => BatchCreateSchema.safeParse(b).success;
    assert.equal(bad({ action: 'restart' }), false, 'no agents, no filter');
    assert.equal(bad({ action: 'restart', agents: ['a'], filter: { area: 'x' } }), false, 'both');
    assert.equal(bad({ action: 'restart', agents: ['a'], package: 'web' }), false, 'package is for configs');
    assert.equal(bad({ action: 'configs', agents: ['a'], package: 'web' }), false, 'configs without files');
    assert.equal(bad({ action: 'reboot', agents: ['a'] }), false);
    assert.equal(
      bad({ action: 'restart', filter: { area: ['area-1'], status: 'online' } }),
      true,
      'array or csv',
    );
  });

  it("a controller's 401/403 is the platform's credentials problem: 502, not the caller's 401", () => {
    const http = (status: number, body = '') =>
      new ControllerHttpError({ status, body, url: 'http://c/api/v1/agents/x', method: 'GET' });
    const e401 = upstreamError(
      http(401, '{"error":{"code":"unauthorized","message":"bad token"}}'),
      'area-1',
    );
    assert.equal(e401.status, 502);
    assert.match(e401.message, /credentials/);
    assert.equal(upstreamError(http(403), 'area-1').status, 502);
    assert.equal(upstreamError(http(400), 'area-1').status, 502);
    assert.equal(upstreamError(http(503), 'area-1').status, 503);
    assert.equal(upstreamError(http(504), 'area-1').status, 504);
    assert.equal(upstreamError(new Error('boom'), 'area-1').status, 502);
  });
});
