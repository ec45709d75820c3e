/**
 * The controller as a Go client sees it, and Go controllers as its peers:
 * - every answer on the guide's routes passes the schemas of the Go structs' JSON (models'
 *   go-shapes.ts) — same keys, types and units — through the token-less legacy listener;
 * - the legacy listener: off by default, refuses wildcard/public binds, serves the guide's routes
 *   without the token (and nothing else), honours legacy_allow; the main listener still wants it;
 * - Go's filter semantics (case-insensitive regex on address/hostname) on RE2: catastrophic
 *   patterns stay fast, unsupported ones are a 400; page_size stays a 400;
 * - a Go-shaped controller registered Go-style in etcd as a peer: its agents are in the list
 *   (one peer call for concurrent lists: AgentCache), reads and batches for them go through it,
 *   and its "not found" never wins over the real answer.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  GoAgentHealthSchema,
  GoAgentPackagesSchema,
  GoAgentSchema,
  GoAgentsResponseSchema,
  GoBatchOperationResultSchema,
  GoPackItemSchema,
  GoServiceHealthSchema,
  GoServiceMetricSchema,
  GoServiceMetricsSchema,
  GoSystemMetricsSchema,
  MIB,
  type Agent,
  type AgentsResponse,
  type BatchOperationResult,
} from '@opsplane/models';
import {
  registerGoController,
  startEtcd,
  startGoController,
  waitFor,
  type EtcdHandle,
  type GoController,
  type GoRegistration,
} from '@opsplane/test-support';
import {
  ConfigError,
  FORWARDED_HEADER,
  parseControllerConfig,
  type RunningController,
} from '../src/index.js';
import { FakeAgent } from './support/fake-agent.js';
import { SECRET, getJson, postJson, startTestController, type ErrorBody } from './support/harness.js';

const TOKEN = 'controller-token-0123456789';
const auth = { authorization: `Bearer ${TOKEN}` };

let etcd: EtcdHandle;
let ctrl: RunningController;
let legacy: string;
const agents: FakeAgent[] = [];

before(async () => {
  etcd = await startEtcd();
  ctrl = await startTestController(etcd, {
    id: 'ops-1',
    api_token: TOKEN,
    legacy_listen: '127.0.0.1:0',
    peers: { list_ttl: '10s' },
  });
  legacy = ctrl.legacyUrl ?? '';
  for (const [code, hostname, address] of [
    ['web-a', 'prod-WEB-01', '10.1.0.5'],
    ['db-a', 'prod-db-01', '10.2.0.9'],
    ['long-a', `${'a'.repeat(40)}!`, '10.3.0.1'],
  ] as const) {
    agents.push(
      await FakeAgent.connect({
        url: ctrl.url,
        code,
        area: 'area-1',
        secret: SECRET,
        packages: ['web', { name: 'batchjob', version: '2', is_running: false, duration: 0 }],
        info: { hostname, address },
      }),
    );
  }
});

after(async () => {
  await Promise.all(agents.map((a) => a.close()));
  await ctrl?.stop();
  await etcd?.stop();
});

describe('answers on the guide’s routes have the Go shapes (token-less legacy listener)', () => {
  it('the main listener still wants the token; the legacy one serves the guide’s routes only', async () => {
    assert.match(legacy, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.equal((await getJson(`${ctrl.url}/api/v1/agents`)).status, 401);
    assert.equal((await getJson(`${ctrl.url}/api/v1/agents`, auth)).status, 200);
    assert.equal((await getJson(`${legacy}/api/v1/agents`)).status, 200);
    const status = await getJson<Record<string, unknown>>(`${legacy}/api/v1/status`);
    assert.equal(status.status, 200);
    // models.ControllerStatus's keys beside Opsplane's.
    assert.deepEqual([status.body.controller_id, status.body.function_area], ['ops-1', 'area-1']);
    assert.equal(typeof status.body.start_time, 'string');
    for (const path of ['/metrics', '/healthz', '/docs/json']) {
      assert.equal((await getJson(`${legacy}${path}`).catch(() => ({ status: 0 }))).status, 404, path);
    }
  });

  it('list and detail: models.AgentsResponse / models.Agent', async () => {
    const list = await getJson<AgentsResponse>(`${legacy}/api/v1/agents?page=1&pageSize=2`);
    GoAgentsResponseSchema.parse(list.body);
    assert.deepEqual(
      [list.body.total, list.body.page, list.body.pageSize, list.body.agents.length],
      [3, 1, 2, 2],
    );
    const one = await getJson<Agent>(`${legacy}/api/v1/agents/web-a`);
    GoAgentSchema.parse(one.body);
    assert.ok(one.body.last_health_check && one.body.health_status);
  });

  it('packages: the Go client’s PackageStatus keys and the Go controller’s PackItem keys', async () => {
    const r = await getJson<{ packages: Record<string, unknown>[] }>(
      `${legacy}/api/v1/agents/web-a/packages`,
    );
    GoAgentPackagesSchema.parse(r.body);
    for (const p of r.body.packages) GoPackItemSchema.parse(p);
    assert.deepEqual(
      r.body.packages.map((p) => [
        p.name,
        p.package,
        p.is_running,
        p.isRunning,
        p.duration,
        p.running_duration,
      ]),
      [
        ['web', 'web', true, true, 1e9, 1],
        ['batchjob', 'batchjob', false, false, 0, 0],
      ],
    );
  });

  it('health: HEALTH_STATUS_*, counts, services as pb.ServiceHealth; one package the same', async () => {
    const h = await getJson<{ services: Record<string, unknown>[]; overall_status: string }>(
      `${legacy}/api/v1/agents/web-a/health`,
    );
    GoAgentHealthSchema.parse(h.body);
    assert.equal(h.body.overall_status, 'HEALTH_STATUS_HEALTHY');
    for (const s of h.body.services) {
      GoServiceHealthSchema.parse(s);
      for (const k of ['package', 'status', 'last_check', 'message', 'details']) assert.ok(k in s, k);
      assert.equal(typeof s.status, 'number');
    }
    const one = await getJson<Record<string, unknown>>(`${legacy}/api/v1/agents/web-a/health/web`);
    GoServiceHealthSchema.parse(one.body);
    assert.deepEqual([one.body.package, one.body.status], ['web', 1]);
  });

  it('system metrics: cpu.usage, memory/disk in MB with usage %, load.1min…, timestamp', async () => {
    const m = await getJson<{
      memory: { total: number; used: number; total_bytes: number; used_bytes: number; usage: number };
      disk: { total: number };
      load: Record<string, number>;
      cpu: { usage: number };
    }>(`${legacy}/api/v1/agents/web-a/metrics/system`);
    GoSystemMetricsSchema.parse(m.body);
    // simulated-answer: 8e9 / 2e9 bytes of memory, a 1e11-byte disk at /, load 0.5/0.4/0.3, cpu 12.5 %
    assert.equal(m.body.memory.total, Math.floor(8e9 / MIB));
    assert.equal(m.body.memory.used, Math.floor(2e9 / MIB));
    assert.equal(m.body.memory.usage, 25);
    assert.equal(m.body.disk.total, Math.floor(1e11 / MIB));
    assert.deepEqual(m.body.load, { '1min': 0.5, '5min': 0.4, '15min': 0.3 });
    assert.equal(m.body.cpu.usage, 12.5);
  });

  it('service metrics: a map by package with cpu.usage and memory.usage in MB; one package on top', async () => {
    const all = await getJson<{ services: Record<string, { memory: { usage: number } }> }>(
      `${legacy}/api/v1/agents/web-a/metrics/services`,
    );
    GoServiceMetricsSchema.parse(all.body);
    assert.equal(all.body.services.web?.memory.usage, 1e6 / MIB);
    const one = await getJson(`${legacy}/api/v1/agents/web-a/metrics/services?package=web`);
    GoServiceMetricSchema.parse(one.body);
  });

  it('the four batch calls: models.BatchOperationResult; configs: null answered per agent', async () => {
    for (const action of ['start', 'stop', 'restart']) {
      const r = await postJson<BatchOperationResult>(`${legacy}/api/v1/agents/batch/${action}`, {
        agents: ['web-a'],
        packages: null,
      });
      assert.equal(r.status, 200);
      GoBatchOperationResultSchema.parse(r.body);
      assert.equal(r.body.success, 2);
    }
    const c = await postJson<BatchOperationResult>(`${legacy}/api/v1/agents/batch/configs`, {
      agents: ['web-a', 'db-a'],
      package: 'web',
      configs: [{ file_name: 'web.yaml', content: 'a: 1\n' }],
      config_file: '',
    });
    GoBatchOperationResultSchema.parse(c.body);
    assert.equal(c.body.success, 2);
    const none = await postJson<BatchOperationResult>(`${legacy}/api/v1/agents/batch/configs`, {
      agents: ['web-a'],
      package: 'web',
      configs: null,
      config_file: '',
    });
    assert.equal(none.status, 200);
    GoBatchOperationResultSchema.parse(none.body);
    assert.match(none.body.results[0]?.error ?? '', /^no_configs/);
  });
});

describe('Go’s filter semantics, safely', () => {
  const ids = async (q: string) =>
    (await getJson<AgentsResponse>(`${legacy}/api/v1/agents?pageSize=100&${q}`)).body.agents.map((a) => a.id);

  it('hostname and address: case-insensitive regular expressions matched anywhere; the rest exact', async () => {
    assert.deepEqual(await ids('hostname=web'), ['web-a']);
    assert.deepEqual(await ids('hostname=PROD-'), ['db-a', 'web-a']);
    assert.deepEqual(await ids('hostname=^prod-(web|db)-0[1-9]$'), ['db-a', 'web-a']);
    assert.deepEqual(await ids(`address=${encodeURIComponent('^10\\.[12]\\.')}`), ['db-a', 'web-a']);
    assert.deepEqual(await ids('id=web'), []);
    assert.deepEqual(await ids('id=web-a&hostname=WEB'), ['web-a']);
  });

  it('a catastrophic pattern runs in linear time; what RE2 cannot run is a 400 naming the filter', async () => {
    const started = Date.now();
    assert.deepEqual(await ids(`hostname=${encodeURIComponent('^(a+)+$')}`), []);
    assert.deepEqual(await ids(`hostname=${encodeURIComponent('^(a|aa)*b$')}`), []);
    assert.ok(Date.now() - started < 1000, `took ${Date.now() - started} ms`);
    for (const bad of ['(', '(a)\\1', '(?=a)']) {
      const r = await getJson<ErrorBody>(`${legacy}/api/v1/agents?hostname=${encodeURIComponent(bad)}`);
      assert.equal(r.status, 400, bad);
      assert.match(r.body.error.message, /^hostname: /);
    }
    const long = await getJson<ErrorBody>(`${legacy}/api/v1/agents?hostname=${'a'.repeat(300)}`);
    assert.equal(long.status, 400);
  });

  it('page_size stays a 400 that suggests pageSize', async () => {
    const r = await getJson<ErrorBody>(`${legacy}/api/v1/agents?page=1&page_size=20`);
    assert.equal(r.status, 400);
    assert.equal(r.body.error.code, 'unknown_parameter');
    assert.match(r.body.error.message, /pageSize/);
  });
});

describe('the legacy listener’s settings', () => {
  const base = {
    area: 'area-1',
    id: 'c1',
    agent_secret: SECRET,
    api_token: 'legacy-settings-token-0123456789',
  };

  it('is off by default and refuses a wildcard or public address', () => {
    assert.equal(parseControllerConfig(base).legacy, undefined);
    for (const listen of ['0.0.0.0:8081', ':8081', '8.8.8.8:8081', 'localhost:8081']) {
      assert.throws(() => parseControllerConfig({ ...base, legacy_listen: listen }), ConfigError, listen);
    }
    assert.throws(
      () => parseControllerConfig({ ...base, legacy_listen: '10.0.0.5:8081', legacy_allow: ['10.0.0.0/33'] }),
      ConfigError,
    );
    const ok = parseControllerConfig({
      ...base,
      legacy_listen: '10.0.0.5:8081',
      legacy_allow: ['10.0.0.0/24', 'fd00::1'],
    });
    assert.deepEqual(ok.legacy, {
      listen: { host: '10.0.0.5', port: 8081 },
      allow: ['10.0.0.0/24', 'fd00::1'],
    });
  });

  it('answers 403 to a source outside legacy_allow', async () => {
    const c = await startTestController(etcd, {
      id: 'ops-allow',
      area: 'area-allow',
      api_token: TOKEN,
      legacy_listen: '127.0.0.1:0',
      legacy_allow: ['10.0.0.0/8'],
    });
    try {
      const r = await getJson<ErrorBody>(`${c.legacyUrl}/api/v1/agents`);
      assert.equal(r.status, 403);
      assert.match(r.body.error.message, /legacy_allow/);
    } finally {
      await c.stop();
    }
    const open = await startTestController(etcd, {
      id: 'ops-allow-2',
      area: 'area-allow',
      api_token: TOKEN,
      legacy_listen: '127.0.0.1:0',
      legacy_allow: ['127.0.0.0/8'],
    });
    try {
      assert.equal((await getJson(`${open.legacyUrl}/api/v1/agents`)).status, 200);
    } finally {
      await open.stop();
    }
  });
});

describe('a Go controller as a peer of the area', () => {
  let go: GoController;
  let reg: GoRegistration;

  before(async () => {
    go = await startGoController({
      id: 'gohost-10.0.0.9-eth0',
      area: 'area-1',
      agents: [
        { id: 'go-1', hostname: 'go-web-1', address: '10.9.0.1', packages: [{ name: 'nginx', seconds: 60 }] },
        { id: 'go-2', hostname: 'go-db-1', address: '10.9.0.2', status: 'offline' },
      ],
    });
    // As the Go controller registers: function_area, a 60 s lease, a heartbeat 45 s old (just
    // before its next re-put) — older than Opsplane's 30 s threshold, online by its lease.
    reg = await registerGoController(etcd, {
      area: 'area-1',
      id: go.id,
      address: go.address,
      heartbeatAgeMs: 45_000,
    });
  });

  after(async () => {
    await reg?.remove();
    await go?.stop();
  });

  const list = async (q = '', headers: Record<string, string> = {}) =>
    (await getJson<AgentsResponse>(`${ctrl.url}/api/v1/agents?pageSize=100${q}`, { ...auth, ...headers }))
      .body;

  it('lists the Go controller’s agents with its own, crediting the Go controller', async () => {
    await waitFor(async () => (await list()).total === 5, {
      what: 'the Go peer’s agents in the list',
      timeoutMs: 10_000,
    });
    const l = await list();
    assert.deepEqual(
      l.agents.map((a) => [a.id, a.controller_id, a.status]),
      [
        ['db-a', 'ops-1', 'online'],
        ['go-1', go.id, 'online'],
        ['go-2', go.id, 'offline'],
        ['long-a', 'ops-1', 'online'],
        ['web-a', 'ops-1', 'online'],
      ],
    );
    assert.equal(l.agents[1]?.last_health_check, undefined);
    // Filters apply to the merged list; a forwarded list is this controller's own.
    assert.deepEqual(
      (await list('&hostname=GO-')).agents.map((a) => a.id),
      ['go-1', 'go-2'],
    );
    assert.deepEqual(
      (await list('&status=offline')).agents.map((a) => a.id),
      ['go-2'],
    );
    assert.equal((await list('', { [FORWARDED_HEADER]: '1' })).total, 3);
  });

  it('concurrent lists share one call to the peer (AgentCache: single-flight, TTL)', async () => {
    const before = go.count('/api/v1/agents');
    const pages = await Promise.all(Array.from({ length: 8 }, () => list()));
    for (const p of pages) assert.equal(p.total, 5);
    assert.ok(go.count('/api/v1/agents') - before <= 1, `${go.count('/api/v1/agents') - before} peer calls`);
  });

  it('reads of a Go agent go to the Go controller; its answer is relayed in the Go shape', async () => {
    const a = await getJson<Agent>(`${ctrl.url}/api/v1/agents/go-1`, auth);
    assert.equal(a.status, 200);
    assert.equal(a.headers.get('x-opsplane-served-by'), go.id);
    const h = await getJson<{ overall_status: string }>(`${ctrl.url}/api/v1/agents/go-1/health`, auth);
    assert.equal(h.status, 200);
    GoAgentHealthSchema.parse(h.body);
    const m = await getJson(`${ctrl.url}/api/v1/agents/go-1/metrics/system`, auth);
    GoSystemMetricsSchema.parse(m.body);
    const missing = await getJson<ErrorBody>(`${ctrl.url}/api/v1/agents/nobody/health`, auth);
    assert.equal(missing.status, 404);
  });

  it('batches reach the Go controller’s agents; its “not found” never wins over the holder', async () => {
    const r = await postJson<BatchOperationResult>(
      `${ctrl.url}/api/v1/agents/batch/restart`,
      { agents: ['go-1', 'web-a', 'nobody'], packages: ['nginx'] },
      auth,
    );
    assert.equal(r.status, 200);
    const by = Object.fromEntries(r.body.results.map((x) => [x.agent_code, x]));
    assert.equal(by['go-1']?.success, true);
    assert.equal(by['go-1']?.message, 'Restarted successfully');
    assert.match(by['web-a']?.error ?? '', /package_not_found|no package/);
    assert.match(by.nobody?.error ?? '', /^agent_not_found: /);
    // Go's encoding/json ignores Opsplane's extra fields (operation_id, timeout_ms).
    const sent = go.batches.at(-1)?.body as Record<string, unknown> | undefined;
    assert.deepEqual([sent?.agents, sent?.packages], [['go-1', 'nobody'], ['nginx']]);
  });
});
