/**
 * Go controllers through the library, on a real etcd: registrations written as the Go controller
 * writes them (test-support's registerGoController: `function_area`, a fresh 60 s lease per put,
 * re-put every 30 s; also the Go platform's ControllerInfo shape and lease-less puts) and
 * Go-shaped controllers answering as the Go handlers do (startGoController). Discovery lists them
 * (status from the lease, no flapping with Go's timing), the pool reaches them (even at a bare
 * `:port` address), aggregation and cross-area batches include their agents, and ControllerClient
 * reads every Go answer into Opsplane's view.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Etcd3 } from 'etcd3';
import { MIB, type Controller } from '@opsplane/models';
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
  ControllerClient,
  ControllerClientPool,
  ControllerDiscovery,
  aggregateAgents,
  batchAcrossAreas,
} from '../src/index.js';

let etcd: EtcdHandle;
let client: Etcd3;
let discovery: ControllerDiscovery;
let pool: ControllerClientPool;
let go: GoController;
const regs: GoRegistration[] = [];
const updates: Controller[] = [];
const deletes: string[] = [];

before(async () => {
  etcd = await startEtcd();
  client = new Etcd3({ hosts: etcd.endpoints });
  go = await startGoController({
    id: 'gohost-10.0.0.9-eth0',
    area: 'area-go',
    agents: [
      {
        id: 'go-1',
        hostname: 'go-web-1',
        address: '10.9.0.1',
        version: '2.0.0',
        packages: [
          {
            name: 'nginx',
            version: '1.25',
            seconds: 3600,
            checkType: 'http',
            responseTimeMs: 7,
            cpu: 2.5,
            memoryBytes: 64 * MIB,
          },
          { name: 'redis', running: false, health: 2, checkType: 'tcp' },
        ],
      },
      {
        id: 'go-2',
        hostname: 'go-db-1',
        status: 'offline',
        healthStatus: 'healthy',
        lastHealthCheck: '2024-01-15T10:30:00.5+08:00',
      },
    ],
  });
  // Default thresholds: 30 s for Opsplane heartbeats; a quick status timer to catch any flap.
  discovery = new ControllerDiscovery(client, 'controllers/', { statusCheckIntervalMs: 100 });
  discovery.onControllerUpdate((c) => updates.push(c));
  discovery.onControllerDelete((k) => deletes.push(k));
  await discovery.start();
  pool = new ControllerClientPool(discovery, { clientOptions: { retryTimes: 0, timeoutMs: 3000 } });
  const port = go.address.split(':')[1];
  // What the Go controller writes: its address is only ':<port>' (its service address), its
  // heartbeat 45 s old just before the next re-put — stale by Opsplane's 30 s, alive by its lease.
  regs.push(
    await registerGoController(etcd, {
      area: 'area-go',
      id: go.id,
      address: `:${port}`,
      heartbeatAgeMs: 45_000,
    }),
  );
});

after(async () => {
  for (const r of regs) await r.remove().catch(() => undefined);
  await pool?.close();
  await discovery?.stop();
  client?.close();
  await go?.stop();
  await etcd?.stop();
});

describe('discovery of Go registrations', () => {
  it('lists a Go controller: area from function_area, flavor go, online by its lease — and stays so', async () => {
    await waitFor(() => discovery.getController('area-go', go.id), { what: 'the Go controller' });
    const c = discovery.getController('area-go', go.id);
    assert.equal(c?.flavor, 'go');
    assert.equal(c?.status, 'online');
    assert.equal(c?.version, '2.3.1');
    assert.equal(discovery.getControllerByArea('area-go').id, go.id);
    // Several status checks later it has not flapped.
    await new Promise((r) => setTimeout(r, 600));
    assert.ok(updates.filter((u) => u.id === go.id).every((u) => u.status === 'online'));
    // Go's re-put (fresh lease, fresh heartbeat) is an update, still online.
    const before = updates.length;
    await regs[0]?.reput();
    await waitFor(() => updates.length > before, { what: 'the re-put' });
    assert.equal(discovery.getController('area-go', go.id)?.status, 'online');
  });

  it('the Go platform’s ControllerInfo, lease-less puts, and a lease that expires', async () => {
    // Nothing listens on 127.0.0.1:1: these are never called, only discovered.
    const extra = [
      await registerGoController(etcd, {
        area: 'area-x',
        id: 'info-1',
        address: '127.0.0.1:1',
        shape: 'platform-info',
      }),
      await registerGoController(etcd, {
        area: 'area-x',
        id: 'plain-stale',
        address: '127.0.0.1:1',
        leaseTtlSeconds: 0,
        heartbeatAgeMs: 120_000,
      }),
      await registerGoController(etcd, {
        area: 'area-x',
        id: 'plain-info',
        address: '127.0.0.1:1',
        leaseTtlSeconds: 0,
        shape: 'platform-info',
      }),
      await registerGoController(etcd, {
        area: 'area-x',
        id: 'short',
        address: '127.0.0.1:1',
        leaseTtlSeconds: 2,
      }),
    ];
    // A discovery with a 1 s threshold for lease-less Go values: leased ones ignore it.
    const quick = new ControllerDiscovery(client, 'controllers/', {
      goStaleAfterMs: 1000,
      statusCheckIntervalMs: 100,
    });
    try {
      await quick.start();
      await waitFor(() => quick.listControllersByArea('area-x').length === 4, {
        what: 'four area-x controllers',
      });
      const byId = () => Object.fromEntries(quick.listControllersByArea('area-x').map((c) => [c.id, c]));
      // No heartbeat in the value: online by its lease; discovery stamps when it saw the put.
      assert.equal(byId()['info-1']?.status, 'online');
      assert.ok(Date.now() - Date.parse(byId()['info-1']?.last_heartbeat ?? '') < 10_000);
      // No lease: the heartbeat decides (as for Opsplane values, a put seen just now counts too).
      await waitFor(() => byId()['plain-stale']?.status === 'offline', { what: 'plain-stale offline' });
      // Neither lease nor heartbeat: online while present. The Go controller (leased, its heartbeat
      // 45 s old) is still online under the 1 s threshold.
      assert.equal(byId()['plain-info']?.status, 'online');
      assert.equal(quick.getController('area-go', go.id)?.status, 'online');
      // The key vanishes with its lease: a delete, nothing else.
      await waitFor(() => deletes.includes('area-x/short'), { what: 'lease expiry', timeoutMs: 8000 });
      assert.equal(discovery.getController('area-x', 'short'), undefined);
    } finally {
      await quick.stop();
      for (const r of extra) await r.remove().catch(() => undefined);
      await waitFor(() => discovery.listControllersByArea('area-x').length === 0, { what: 'area-x gone' });
    }
  });
});

describe('the library against a Go controller', () => {
  it('the pool dials a `:port` address on this host; aggregation lists its agents', async () => {
    const res = await aggregateAgents(pool, { areas: ['area-go'] });
    assert.deepEqual(res.errors, []);
    assert.deepEqual(
      res.agents.map((a) => [
        a.id,
        a.area,
        a.controller_id,
        a.status,
        a.service_count,
        a.agent.last_health_check,
      ]),
      [
        ['go-1', 'area-go', go.id, 'online', 2, undefined],
        ['go-2', 'area-go', go.id, 'offline', 0, '2024-01-15T10:30:00.5+08:00'],
      ],
    );
    // Go's default pageSize is 10; the library always sends pageSize.
    assert.ok(go.requests.some((r) => /pageSize=/.test(r.url)));
  });

  it('ControllerClient reads every Go answer into Opsplane’s view', async () => {
    const c = new ControllerClient(go.url, 'area-go', { retryTimes: 0 });
    try {
      const status = await c.getStatus();
      assert.deepEqual([status.id, status.area], [go.id, 'area-go']);
      const list = await c.listAgents({ hostname: 'WEB' }, 1, 50);
      assert.deepEqual(
        list.agents.map((a) => a.id),
        ['go-1'],
      );
      const pk = await c.getAgentPackages('go-1');
      assert.deepEqual(
        pk.packages.map((p) => [p.name, p.is_running, p.duration, p.uptime_seconds]),
        [
          ['nginx', true, 3600e9, 3600],
          ['redis', false, 0, undefined],
        ],
      );
      const h = await c.getAgentHealth('go-1');
      assert.equal(h.agent_id, 'go-1');
      assert.equal(h.overall_status, 'unhealthy');
      assert.deepEqual(
        Object.values(h.services).map((s) => [s.name, s.status, s.check_type, s.latency_ms]),
        [
          ['nginx', 'healthy', 'http', 7],
          ['redis', 'unhealthy', 'tcp', undefined],
        ],
      );
      assert.ok(h.services.nginx?.checked_at);
      const one = await c.getServiceHealth('go-1', 'redis');
      assert.deepEqual([one.name, one.status], ['redis', 'unhealthy']);
      const m = await c.getSystemMetrics('go-1');
      assert.equal(m.agent_id, 'go-1');
      assert.equal(m.cpu_percent, 12.5);
      assert.equal(m.cpu_count, 4);
      assert.equal(m.memory.total_bytes, 8192 * MIB);
      assert.equal(m.memory.used_bytes, 2048 * MIB);
      assert.deepEqual(m.load_average, { load1: 0.5, load5: 0.4, load15: 0.3 });
      assert.equal(m.disks[0]?.mount, '/');
      assert.match(m.collected_at, /\+08:00$/);
      const svc = await c.getServiceMetrics('go-1');
      assert.deepEqual(
        svc.services.map((s) => [s.name, s.cpu_percent, s.rss_bytes]),
        [
          ['nginx', 2.5, 64 * MIB],
          ['redis', 0, 0],
        ],
      );
      const just = await c.getServiceMetrics('go-1', { package: 'nginx' });
      assert.deepEqual(
        just.services.map((s) => s.name),
        ['nginx'],
      );
      const running = await c.getServiceMetrics('go-1', { runningOnly: true });
      assert.deepEqual(
        running.services.map((s) => s.name),
        ['nginx'],
      );
      // A Go controller answers an unknown agent with a text 404.
      await assert.rejects(c.getAgent('nobody'), { code: 'agent_not_found' });
      const cfg = await c.batchUpdateConfigs({ agents: ['go-1'], package: 'nginx', configs: null });
      assert.equal(cfg.success, 1);
      assert.deepEqual(go.batches.at(-1)?.body, { agents: ['go-1'], package: 'nginx', configs: [] });
    } finally {
      await c.close();
    }
  });

  it('a cross-area batch through the Go controller: one result per agent and package', async () => {
    const r = await batchAcrossAreas(pool, { action: 'restart' }, new Map([['area-go', ['go-1', 'ghost']]]));
    assert.deepEqual(
      r.results.map((x) => [x.agent_code, x.package, x.success]),
      [
        ['go-1', 'nginx', true],
        ['go-1', 'redis', true],
        ['ghost', '', false],
      ],
    );
  });
});
