/**
 * The agent side of the controller with a test peer speaking the real protocol: authenticated
 * upgrade (refused agents are listed nowhere), hello/welcome/heartbeats, listing and exact
 * filters, live per-agent reads, offline after silence or disconnect, retention, replacement
 * of a second connection, protocol violations, and graceful shutdown closing with 4003.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import WebSocket from 'ws';
import {
  AGENT_AREA_HEADER,
  AGENT_CODE_HEADER,
  AGENT_CONNECT_PATH,
  CLOSE_CODES,
  type Agent,
  type AgentsResponse,
} from '@opsplane/models';
import { agentToken } from '@opsplane/models';
import { startEtcd, waitFor, type EtcdHandle } from '@opsplane/test-support';
import type { RunningController } from '../src/index.js';
import { FakeAgent, tryUpgrade } from './support/fake-agent.js';
import { SECRET, getJson, postJson, startTestController, type ErrorBody } from './support/harness.js';

let etcd: EtcdHandle;
let ctrl: RunningController;
const agents: FakeAgent[] = [];

async function connect(
  code: string,
  extra: Partial<Parameters<typeof FakeAgent.connect>[0]> = {},
): Promise<FakeAgent> {
  const a = await FakeAgent.connect({ url: ctrl.url, code, area: 'area-1', secret: SECRET, ...extra });
  agents.push(a);
  return a;
}

const list = async (query = '') => (await getJson<AgentsResponse>(`${ctrl.url}/api/v1/agents${query}`)).body;
const agent = async (id: string) => getJson<Agent>(`${ctrl.url}/api/v1/agents/${id}`);

before(async () => {
  etcd = await startEtcd();
  ctrl = await startTestController(etcd, {
    agents: {
      heartbeat_interval: '200ms',
      offline_after: '700ms',
      offline_retention: '3s',
      request_timeout: '2s',
      hello_timeout: '500ms',
    },
  });
});

after(async () => {
  await Promise.all(agents.map((a) => a.close()));
  await ctrl?.stop();
  await etcd?.stop();
});

describe('agent authentication', () => {
  const headers = (code: string, area: string, token: string) => ({
    [AGENT_CODE_HEADER]: code,
    [AGENT_AREA_HEADER]: area,
    authorization: `Bearer ${token}`,
  });

  it('refuses a wrong, missing or foreign token with HTTP 401 and lists the agent nowhere', async () => {
    assert.equal(await tryUpgrade(ctrl.url, headers('intruder', 'area-1', 'f'.repeat(64))), 401);
    assert.equal(
      await tryUpgrade(ctrl.url, { [AGENT_CODE_HEADER]: 'intruder', [AGENT_AREA_HEADER]: 'area-1' }),
      401,
    );
    // A valid token, but for another agent code.
    assert.equal(
      await tryUpgrade(ctrl.url, headers('intruder', 'area-1', agentToken(SECRET, 'area-1', 'someone-else'))),
      401,
    );
    // A valid token for another area.
    assert.equal(
      await tryUpgrade(ctrl.url, headers('intruder', 'area-2', agentToken(SECRET, 'area-2', 'intruder'))),
      401,
    );
    // Signed with another secret.
    assert.equal(
      await tryUpgrade(
        ctrl.url,
        headers('intruder', 'area-1', agentToken('other-secret-xxxxxxxx', 'area-1', 'intruder')),
      ),
      401,
    );
    assert.equal(
      (await list()).agents.some((a) => a.id === 'intruder'),
      false,
    );
    assert.equal((await agent('intruder')).status, 404);
  });

  it('accepts a correct token and answers hello with welcome', async () => {
    const a = await connect('auth-ok');
    assert.equal(a.welcome?.controller_id, ctrl.id);
    assert.equal(a.welcome?.area, 'area-1');
    assert.equal(a.welcome?.heartbeat_interval_ms, 200);
  });
});

describe('listing', () => {
  before(async () => {
    await connect('list-a', {
      info: {
        zone: 'z1',
        mode: 'prod',
        group: 'g1',
        deployment: 'd1',
        hostname: 'alpha',
        labels: { rack: 'r1' },
      },
    });
    await connect('list-b', {
      info: { zone: 'z2', mode: 'prod', group: 'g2', hostname: 'beta' },
      packages: ['nginx'],
    });
  });

  it('lists agents with the fields from hello', async () => {
    const body = await list('?page=1&pageSize=100');
    const a = body.agents.find((x) => x.id === 'list-a');
    assert.ok(a, 'list-a listed');
    assert.equal(a.agent_code, 'list-a');
    assert.equal(a.area_id, 'area-1');
    assert.equal(a.status, 'online');
    assert.equal(a.hostname, 'alpha');
    assert.equal(a.address, '10.0.0.1');
    assert.equal(a.version, '1.2.3');
    assert.equal(a.zone, 'z1');
    assert.equal(a.mode, 'prod');
    assert.equal(a.group, 'g1');
    assert.equal(a.deployment, 'd1');
    assert.equal(a.os, 'linux');
    assert.equal(a.arch, 'amd64');
    assert.equal(a.controller_id, ctrl.id);
    assert.deepEqual(a.labels, { rack: 'r1' });
    assert.deepEqual(
      a.services.map((s) => s.name),
      ['web', 'db'],
    );
    assert.equal(a.health_status, 'healthy');
    assert.ok(Date.parse(a.last_heartbeat) > 0 && Date.parse(a.register_time) > 0);
  });

  it('filters exactly and paginates', async () => {
    assert.deepEqual(
      (await list('?zone=z1')).agents.map((a) => a.id),
      ['list-a'],
    );
    assert.deepEqual((await list('?zone=z')).agents, []);
    assert.deepEqual(
      (await list('?mode=prod&group=g2')).agents.map((a) => a.id),
      ['list-b'],
    );
    assert.deepEqual(
      (await list('?hostname=beta&status=online')).agents.map((a) => a.id),
      ['list-b'],
    );
    assert.deepEqual(
      (await list('?id=list-a&area=area-1')).agents.map((a) => a.id),
      ['list-a'],
    );
    const all = await list('?mode=prod');
    assert.equal(all.total, 2);
    const page2 = await list('?mode=prod&page=2&pageSize=1');
    assert.equal(page2.total, 2);
    assert.equal(page2.page, 2);
    assert.equal(page2.pageSize, 1);
    assert.deepEqual(
      page2.agents.map((a) => a.id),
      ['list-b'],
    );
    // Unfiltered pages are slices of the same order, and total counts everything.
    const everything = await list('?pageSize=1000');
    const ids = everything.agents.map((a) => a.id);
    assert.deepEqual(ids, [...ids].sort());
    const second = await list('?page=2&pageSize=1');
    assert.equal(second.total, everything.total);
    assert.deepEqual(
      second.agents.map((a) => a.id),
      [ids[1]],
    );
  });

  it('keeps last_heartbeat fresh from heartbeats', async () => {
    const first = Date.parse((await agent('list-a')).body.last_heartbeat);
    await waitFor(async () => Date.parse((await agent('list-a')).body.last_heartbeat) > first, {
      timeoutMs: 3000,
      what: 'a newer heartbeat',
    });
  });
});

describe('per-agent reads', () => {
  before(async () => {
    await connect('reads', {
      packages: [
        'web',
        { name: 'batchjob', version: '2.0.0', is_running: false, duration: 0, status: 'stopped' },
      ],
    });
  });

  it('GET /agents/{id}/packages', async () => {
    const r = await getJson<{ agent_id: string; packages: { name: string; is_running: boolean }[] }>(
      `${ctrl.url}/api/v1/agents/reads/packages`,
    );
    assert.equal(r.status, 200);
    assert.equal(r.body.agent_id, 'reads');
    assert.deepEqual(
      r.body.packages.map((p) => [p.name, p.is_running]),
      [
        ['web', true],
        ['batchjob', false],
      ],
    );
  });

  it('GET /agents/{id}/health and /health/{package}', async () => {
    const h = await getJson<{
      agent_id: string;
      overall_status: string;
      health_status: string;
      total_services: number;
      services: { package: string; status: number }[];
    }>(`${ctrl.url}/api/v1/agents/reads/health`);
    assert.equal(h.status, 200);
    assert.equal(h.body.agent_id, 'reads');
    // Go's shape, Opsplane's verdict beside it.
    assert.equal(h.body.overall_status, 'HEALTH_STATUS_HEALTHY');
    assert.equal(h.body.health_status, 'healthy');
    assert.equal(h.body.total_services, 2);
    assert.deepEqual(
      h.body.services.map((x) => [x.package, x.status]),
      [
        ['batchjob', 1],
        ['web', 1],
      ],
    );
    const one = await getJson<{ name: string; package: string; status: number; health_status: string }>(
      `${ctrl.url}/api/v1/agents/reads/health/web`,
    );
    assert.equal(one.status, 200);
    assert.equal(one.body.name, 'web');
    assert.equal(one.body.package, 'web');
    assert.equal(one.body.status, 1);
    assert.equal(one.body.health_status, 'healthy');
    const missing = await getJson<ErrorBody>(`${ctrl.url}/api/v1/agents/reads/health/nope`);
    assert.equal(missing.status, 404);
    assert.equal(missing.body.error.code, 'package_not_found');
  });

  it('GET /agents/{id}/metrics/system and /metrics/services with package and running_only', async () => {
    const s = await getJson<{
      agent_id: string;
      cpu_percent: number;
      cpu: { usage: number };
      load_average: { load1: number };
      load: Record<string, number>;
    }>(`${ctrl.url}/api/v1/agents/reads/metrics/system`);
    assert.equal(s.status, 200);
    assert.equal(s.body.agent_id, 'reads');
    assert.equal(s.body.load_average.load1, 0.5);
    assert.equal(s.body.load['1min'], 0.5);
    assert.equal(s.body.cpu.usage, s.body.cpu_percent);
    type Svc = { services: Record<string, { cpu: { usage: number } }>; cpu?: { usage: number } };
    const all = await getJson<Svc>(`${ctrl.url}/api/v1/agents/reads/metrics/services`);
    assert.deepEqual(Object.keys(all.body.services), ['web', 'batchjob']);
    assert.equal(all.body.cpu, undefined);
    const running = await getJson<Svc>(`${ctrl.url}/api/v1/agents/reads/metrics/services?running_only=true`);
    assert.deepEqual(Object.keys(running.body.services), ['web']);
    const one = await getJson<Svc>(`${ctrl.url}/api/v1/agents/reads/metrics/services?package=batchjob`);
    assert.deepEqual(Object.keys(one.body.services), ['batchjob']);
    // Go answers one package's metrics at the top level.
    assert.deepEqual(one.body.cpu, one.body.services.batchjob?.cpu);
    const bad = await getJson<ErrorBody>(`${ctrl.url}/api/v1/agents/reads/metrics/services?running=true`);
    assert.equal(bad.status, 400);
    assert.equal(bad.body.error.code, 'unknown_parameter');
  });

  it('answers 504 timeout when the agent does not answer in time', async () => {
    await connect('slow-reader', { hang: ['health'] });
    const started = Date.now();
    const r = await getJson<ErrorBody>(`${ctrl.url}/api/v1/agents/slow-reader/health`);
    assert.equal(r.status, 504);
    assert.equal(r.body.error.code, 'timeout');
    assert.ok(Date.now() - started >= 1900);
  });
});

describe('liveness', () => {
  it('marks a silent agent offline after offline_after, keeps it listed, and drops it after retention', async () => {
    const a = await connect('silent-one');
    assert.equal((await agent('silent-one')).body.status, 'online');
    a.goSilent();
    const t0 = Date.now();
    await waitFor(async () => (await agent('silent-one')).body.status === 'offline', {
      timeoutMs: 3000,
      what: 'offline',
    });
    const took = Date.now() - t0;
    assert.ok(took >= 400 && took < 2000, `went offline after ${took} ms`);
    const listed = (await list('?status=offline')).agents.map((x) => x.id);
    assert.ok(listed.includes('silent-one'));
    // Its last known state is kept.
    assert.deepEqual(
      (await agent('silent-one')).body.services.map((s) => s.name),
      ['web', 'db'],
    );
    // Live reads of an offline agent are a 503 (the package list answers from the last known state).
    const h = await getJson<ErrorBody>(`${ctrl.url}/api/v1/agents/silent-one/health`);
    assert.equal(h.status, 503);
    assert.equal(h.body.error.code, 'agent_unavailable');
    assert.equal((await getJson(`${ctrl.url}/api/v1/agents/silent-one/packages`)).status, 200);
    // The silent socket was dropped.
    await a.closed;
    await waitFor(async () => (await agent('silent-one')).status === 404, {
      timeoutMs: 6000,
      what: 'dropped after retention',
    });
  });

  it('marks a disconnected agent offline at once and back online when it reconnects', async () => {
    const a = await connect('flappy');
    await a.close();
    await waitFor(async () => (await agent('flappy')).body.status === 'offline', {
      timeoutMs: 1000,
      what: 'offline',
    });
    const registered = (await agent('flappy')).body.register_time;
    await connect('flappy');
    const back = await agent('flappy');
    assert.equal(back.body.status, 'online');
    assert.equal(back.body.register_time, registered);
  });

  it('replaces an older connection of the same agent (close code 4000)', async () => {
    const first = await connect('twin');
    const second = await connect('twin');
    const closed = await first.closed;
    assert.equal(closed.code, CLOSE_CODES.replaced);
    assert.equal((await agent('twin')).body.status, 'online');
    // Requests go to the new connection.
    const r = await postJson<{ success: number }>(`${ctrl.url}/api/v1/agents/batch/restart`, {
      agents: ['twin'],
      packages: ['web'],
    });
    assert.equal(r.body.success, 1);
    assert.equal(second.requests.length, 1);
    const count = (await list('?id=twin')).total;
    assert.equal(count, 1);
  });

  it('closes with 4002 on protocol violations', async () => {
    const a = await connect('rule-breaker');
    a.send({ type: 'heartbeat', seq: 'one', packages: [], health_status: 'healthy' });
    assert.equal((await a.closed).code, CLOSE_CODES.protocol);
    const b = await connect('rule-breaker-2');
    b.ws.send('not json at all');
    assert.equal((await b.closed).code, CLOSE_CODES.protocol);
  });
});

describe('handshake', () => {
  const open = async (code: string) => {
    const ws = new WebSocket(`${ctrl.url.replace('http', 'ws')}${AGENT_CONNECT_PATH}`, {
      headers: {
        [AGENT_CODE_HEADER]: code,
        [AGENT_AREA_HEADER]: 'area-1',
        authorization: `Bearer ${agentToken(SECRET, 'area-1', code)}`,
      },
    });
    const closed = new Promise<number>((resolve) => ws.on('close', (c) => resolve(c)));
    await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
    return { ws, closed };
  };

  it('closes a connection that never says hello (4002) and does not list it', async () => {
    const { closed } = await open('mute');
    const t0 = Date.now();
    assert.equal(await closed, CLOSE_CODES.protocol);
    assert.ok(Date.now() - t0 < 2000);
    assert.equal((await agent('mute')).status, 404);
  });

  it('closes a connection whose first frame is not hello (4002)', async () => {
    const { ws, closed } = await open('eager');
    ws.send(JSON.stringify({ type: 'heartbeat', seq: 1, packages: [], health_status: 'healthy' }));
    assert.equal(await closed, CLOSE_CODES.protocol);
    assert.equal((await agent('eager')).status, 404);
  });
});

describe('shutdown', () => {
  it('closes agent sockets with 4003 and removes its etcd key', async () => {
    const extra = await startTestController(etcd, { id: 'ctrl-going-away' });
    const key = 'controllers/area-1/ctrl-going-away';
    await waitFor(async () => (await etcd.etcdctl(['get', key, '--print-value-only'])).trim() !== '', {
      what: 'registered',
    });
    const a = await FakeAgent.connect({ url: extra.url, code: 'leaver', area: 'area-1', secret: SECRET });
    await extra.stop();
    assert.equal((await a.closed).code, CLOSE_CODES.shutdown);
    assert.equal((await etcd.etcdctl(['get', key, '--print-value-only'])).trim(), '');
  });
});
