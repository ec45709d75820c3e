/**
 * Go controllers in the Opsplane server beside Opsplane ones: a real etcd, a real Opsplane
 * fleet (one controller, one agent with real packages) in area-ops, and a Go-shaped controller
 * (test-support's startGoController, answering as the Go handlers do) registered in area-go as
 * the Go controller registers (function_area, only `:<port>` as its address, a 60 s lease, a
 * heartbeat 45 s old). The server lists both controllers, aggregates both areas' agents, shows
 * a Go agent's detail, packages, health and metrics (a Go agent without last_health_check
 * included), and runs a batch through the Go controller. The real Opsplane agent's answers on
 * the guide's routes are checked against the Go structs' JSON as well.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  GoAgentHealthSchema,
  GoAgentPackagesSchema,
  GoAgentsResponseSchema,
  GoServiceMetricsSchema,
  GoSystemMetricsSchema,
  MIB,
} from '@opsplane/models';
import {
  registerGoController,
  startEtcd,
  startFleet,
  startGoController,
  waitFor,
  type EtcdHandle,
  type Fleet,
  type GoController,
  type GoRegistration,
} from '@opsplane/test-support';
import type { AgentDetail, AgentListResponse, BatchJob, ControllerListResponse } from '@opsplane/api';
import type { AgentHealth, AgentPackagesResponse, ServiceMetrics, SystemMetrics } from '@opsplane/models';
import { startTestServer, type Auth, type TestServer } from './helpers.js';

describe('Go controllers beside Opsplane ones in the server', { timeout: 90_000 }, () => {
  let etcd: EtcdHandle;
  let t: TestServer;
  let fleet: Fleet;
  let go: GoController;
  let reg: GoRegistration;
  let op: Auth;

  before(async () => {
    etcd = await startEtcd();
    go = await startGoController({
      id: 'gohost-10.0.0.9-eth0',
      area: 'area-go',
      agents: [
        {
          id: 'go-agent-1',
          hostname: 'go-web-1',
          address: '10.9.0.1',
          version: '2.0.0',
          packages: [
            { name: 'nginx', version: '1.25', seconds: 600, cpu: 3, memoryBytes: 32 * MIB },
            { name: 'redis', running: false, health: 2, checkType: 'tcp' },
          ],
        },
        { id: 'go-agent-2', hostname: 'go-db-1', status: 'offline' },
      ],
    });
    const port = go.address.split(':')[1];
    reg = await registerGoController(etcd, {
      area: 'area-go',
      id: go.id,
      address: `:${port}`,
      heartbeatAgeMs: 45_000,
    });
    t = await startTestServer('pglite', { etcd: etcd.endpoints, server: { agents_refresh_interval: '2s' } });
    op = t.users.operator.token;
    fleet = await startFleet({ etcd, areas: [{ name: 'area-ops', controllers: 1, agents: 1 }] });
  });

  after(async () => {
    await fleet?.stop();
    await t?.stop();
    await reg?.remove().catch(() => undefined);
    await go?.stop();
    await etcd?.stop();
  });

  it('lists the Go controller (flavor go, online by its lease) beside the Opsplane one', async () => {
    await waitFor(
      async () => {
        const r = await t.call<ControllerListResponse>('GET', '/api/v1/controllers', { auth: op });
        return r.json.controllers.filter((c) => c.status === 'online').length === 2;
      },
      { what: 'both controllers online', timeoutMs: 20_000 },
    );
    const r = await t.call<ControllerListResponse>('GET', '/api/v1/controllers', { auth: op });
    const byArea = Object.fromEntries(r.json.controllers.map((c) => [c.area, c]));
    assert.deepEqual(
      [
        byArea['area-go']?.id,
        byArea['area-go']?.flavor,
        byArea['area-go']?.status,
        byArea['area-go']?.address,
      ],
      [go.id, 'go', 'online', `:${go.address.split(':')[1]}`],
    );
    assert.equal(byArea['area-ops']?.flavor, 'opsplane');
  });

  it('aggregates the Go controller’s agents with the Opsplane ones', async () => {
    let v: AgentListResponse | undefined;
    await waitFor(
      async () => {
        v = (await t.call<AgentListResponse>('GET', '/api/v1/agents?refresh=true&pageSize=100', { auth: op }))
          .json;
        return v.total === 3 && v.errors.length === 0;
      },
      { what: 'three agents in the view', timeoutMs: 30_000 },
    );
    const go1 = v?.agents.find((a) => a.id === 'go-agent-1');
    assert.deepEqual(
      [go1?.area, go1?.controller_id, go1?.status, go1?.service_count, go1?.last_health_check],
      ['area-go', go.id, 'online', 2, undefined],
    );
    assert.ok(v?.agents.some((a) => a.area === 'area-ops' && a.status === 'online'));
  });

  it('shows a Go agent’s detail, packages, health and metrics', async () => {
    const d = await t.call<AgentDetail>('GET', '/api/v1/agents/by-code/go-agent-1', { auth: op });
    assert.equal(d.status, 200, d.text);
    assert.deepEqual([d.json.hostname, d.json.controller_id, d.json.device], ['go-web-1', go.id, null]);
    const p = await t.call<AgentPackagesResponse>('GET', '/api/v1/agents/go-agent-1/packages', { auth: op });
    assert.equal(p.status, 200, p.text);
    assert.deepEqual(
      p.json.packages.map((x) => [x.name, x.is_running, x.uptime_seconds]),
      [
        ['nginx', true, 600],
        ['redis', false, undefined],
      ],
    );
    const h = await t.call<AgentHealth>('GET', '/api/v1/agents/go-agent-1/health', { auth: op });
    assert.equal(h.status, 200, h.text);
    assert.equal(h.json.overall_status, 'unhealthy');
    assert.deepEqual(
      Object.values(h.json.services).map((s) => [s.name, s.status]),
      [
        ['nginx', 'healthy'],
        ['redis', 'unhealthy'],
      ],
    );
    const m = await t.call<SystemMetrics>('GET', '/api/v1/agents/go-agent-1/metrics/system', { auth: op });
    assert.equal(m.status, 200, m.text);
    assert.deepEqual([m.json.cpu_percent, m.json.memory.total_bytes], [12.5, 8192 * MIB]);
    const s = await t.call<ServiceMetrics>('GET', '/api/v1/agents/go-agent-1/metrics/services', { auth: op });
    assert.equal(s.status, 200, s.text);
    assert.deepEqual(
      s.json.services.map((x) => [x.name, x.cpu_percent, x.rss_bytes]),
      [
        ['nginx', 3, 32 * MIB],
        ['redis', 0, 0],
      ],
    );
  });

  it('runs a batch through the Go controller: one result per agent and package', async () => {
    const asked = ['go-agent-1', 'go-agent-2'];
    const res = await t.call<BatchJob>('POST', '/api/v1/batches', {
      auth: op,
      body: { action: 'restart', agents: asked, packages: ['nginx'] },
    });
    assert.equal(res.status, 201, res.text);
    const results = res.json.results ?? [];
    assert.deepEqual(results.map((r) => [r.agent_code, r.package, r.success, r.area]).sort(), [
      ['go-agent-1', 'nginx', true, 'area-go'],
      ['go-agent-2', 'nginx', false, 'area-go'],
    ]);
    assert.ok(go.batches.some((b) => b.path.endsWith('/restart')));
  });

  it('the real Opsplane agent’s answers on the guide’s routes have the Go shapes', async () => {
    const ctrl = fleet.controllersOf('area-ops')[0];
    const code = fleet.agentsOf('area-ops')[0]?.code;
    assert.ok(ctrl && code);
    const get = async (path: string) => {
      const r = await fetch(`${ctrl.url}/api/v1${path}`);
      assert.equal(r.status, 200, path);
      return (await r.json()) as unknown;
    };
    GoAgentsResponseSchema.parse(await get('/agents?page=1&pageSize=10'));
    GoAgentPackagesSchema.parse(await get(`/agents/${code}/packages`));
    GoAgentHealthSchema.parse(await get(`/agents/${code}/health`));
    GoSystemMetricsSchema.parse(await get(`/agents/${code}/metrics/system`));
    GoServiceMetricsSchema.parse(await get(`/agents/${code}/metrics/services`));
  });
});
