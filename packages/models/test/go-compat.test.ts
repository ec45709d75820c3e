/**
 * Wire compatibility with the Go system, both ways: Opsplane's answers on the guide's routes pass
 * the schemas of the Go structs' JSON (same keys, types, units), and the readers give Opsplane's
 * view of a Go controller's answers, of Opsplane's and of the older Opsplane shape. The Go JSON
 * below is written from the Go handlers (agent_api.go, health_monitor.go, the pb messages through
 * encoding/json), with Go's map-key order and +08:00 nanosecond timestamps.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  AgentHealthReadSchema,
  AgentPackagesReadSchema,
  AgentSchema,
  AgentsResponseSchema,
  BatchConfigRequestSchema,
  ControllerStatusReadSchema,
  GoAgentHealthSchema,
  GoAgentPackagesSchema,
  GoPackItemSchema,
  GoServiceHealthSchema,
  GoServiceMetricSchema,
  GoServiceMetricsSchema,
  GoSystemMetricsSchema,
  MIB,
  ServiceHealthReadSchema,
  SystemMetricsReadSchema,
  fromGoTimestamp,
  goOverallStatus,
  readControllerValue,
  serviceMetricsReadSchema,
  toAgentHealthAnswer,
  toAgentPackagesAnswer,
  toGoTimestamp,
  toServiceHealthAnswer,
  toServiceMetricsAnswer,
  toSystemMetricsAnswer,
  type AgentHealth,
  type ServiceMetrics,
  type SystemMetrics,
} from '@opsplane/models';

const health: AgentHealth = {
  agent_id: 'a1',
  overall_status: 'degraded',
  services: {
    web: {
      name: 'web',
      status: 'healthy',
      message: 'ok',
      check_type: 'http',
      checked_at: '2024-01-15T10:30:00.123456789Z',
      latency_ms: 12.4,
      consecutive_failures: 0,
    },
    db: {
      name: 'db',
      status: 'unhealthy',
      message: 'refused',
      check_type: 'tcp',
      checked_at: '2024-01-15T10:30:01Z',
    },
    job: { name: 'job', status: 'unknown', message: '', checked_at: '2024-01-15T10:30:02Z' },
  },
  checked_at: '2024-01-15T10:30:03Z',
};

const system: SystemMetrics = {
  agent_id: 'a1',
  cpu_percent: 12.5,
  cpu_count: 8,
  load_average: { load1: 0.5, load5: 0.4, load15: 0.3 },
  memory: {
    total_bytes: 8 * 1024 * MIB + 123,
    used_bytes: 2 * 1024 * MIB + 7,
    available_bytes: 6 * 1024 * MIB,
  },
  disks: [
    { mount: '/boot', total_bytes: 512 * MIB, used_bytes: 100 * MIB },
    { mount: '/', total_bytes: 100 * 1024 * MIB, used_bytes: 25 * 1024 * MIB, used_percent: 25 },
  ],
  network: {
    rx_bytes: 3000,
    tx_bytes: 5000,
    interfaces: [
      { name: 'eth0', rx_bytes: 1000, tx_bytes: 2000 },
      { name: 'eth1', rx_bytes: 2000, tx_bytes: 3000 },
    ],
  },
  uptime_seconds: 3600,
  collected_at: '2024-01-15T10:30:00.500Z',
};

const services: ServiceMetrics = {
  agent_id: 'a1',
  services: [
    {
      name: 'web',
      is_running: true,
      pid: 42,
      cpu_percent: 1.5,
      rss_bytes: 100 * MIB,
      restarts: 1,
      uptime_seconds: 60,
    },
    { name: 'job', is_running: false, cpu_percent: 0, rss_bytes: 0, restarts: 0, uptime_seconds: 0 },
  ],
  collected_at: '2024-01-15T10:30:00Z',
};

test('health answers have the Go shape: HEALTH_STATUS_*, the counts, services as pb.ServiceHealth', () => {
  const a = toAgentHealthAnswer(health);
  GoAgentHealthSchema.parse(a);
  assert.equal(a.overall_status, 'HEALTH_STATUS_UNHEALTHY'); // Go: any unhealthy → unhealthy
  assert.equal(a.health_status, 'degraded'); // Opsplane's verdict beside it
  assert.deepEqual([a.total_services, a.healthy, a.unhealthy, a.degraded, a.unknown], [3, 1, 1, 0, 1]);
  assert.deepEqual(
    a.services.map((s) => [s.package, s.status]),
    [
      ['db', 2],
      ['job', 0],
      ['web', 1],
    ],
  );
  const web = a.services[2]!;
  GoServiceHealthSchema.parse(web);
  assert.deepEqual(web.last_check, { seconds: 1705314600, nanos: 123456789 });
  assert.equal(web.details[0]?.check_type, 'http');
  assert.equal(web.details[0]?.response_time_ms, 12);
  assert.equal(web.health_status, 'healthy');
  // Every key Go's pb.ServiceHealth can have is there, with Go's type.
  for (const k of ['package', 'status', 'last_check', 'message', 'details']) assert.ok(k in web, k);
  assert.equal(typeof web.status, 'number');
  assert.equal(goOverallStatus([]), 'HEALTH_STATUS_HEALTHY');
  assert.equal(goOverallStatus(['healthy', 'degraded', 'unknown']), 'HEALTH_STATUS_DEGRADED');
});

test('system metrics answers have the Go shape and units: MB, %, load.1min, timestamp to the second', () => {
  const a = toSystemMetricsAnswer(system);
  GoSystemMetricsSchema.parse(a);
  assert.deepEqual(a.cpu, { usage: 12.5, cores: 8 });
  assert.deepEqual([a.memory.total, a.memory.used], [8192, 2048]); // floored MB, as Go's integer division
  assert.equal(a.memory.usage, 25);
  assert.equal(a.memory.total_bytes, system.memory.total_bytes); // Opsplane's exact bytes beside
  assert.deepEqual(a.disk, { total: 102400, used: 25600, usage: 25 }); // the disk mounted at /
  assert.deepEqual(a.load, { '1min': 0.5, '5min': 0.4, '15min': 0.3 });
  assert.deepEqual(a.network.interfaces, system.network.interfaces);
  assert.equal(a.timestamp, '2024-01-15T10:30:00Z');
  // No interfaces: one entry with the totals, as Go falls back to one.
  const bare = toSystemMetricsAnswer({ ...system, network: { rx_bytes: 1, tx_bytes: 2 }, disks: [] });
  assert.deepEqual(bare.network.interfaces, [{ name: 'total', rx_bytes: 1, tx_bytes: 2 }]);
  assert.deepEqual(bare.disk, { total: 0, used: 0, usage: 0 });
});

test('service metrics answers: a map by package, cpu.usage %, memory.usage MB; one package on top', () => {
  const all = toServiceMetricsAnswer(services);
  GoServiceMetricsSchema.parse(all);
  assert.deepEqual(Object.keys(all.services), ['web', 'job']);
  assert.deepEqual(all.services.web?.cpu, { usage: 1.5 });
  assert.equal(all.services.web?.memory.usage, 100);
  assert.equal(all.services.web?.rss_bytes, 100 * MIB);
  assert.equal('cpu' in all, false);
  const one = toServiceMetricsAnswer({ ...services, services: services.services.slice(0, 1) }, 'web');
  GoServiceMetricSchema.parse(one);
  assert.deepEqual(one.cpu, { usage: 1.5 });
});

test('packages answers carry the Go client keys and the Go controller’s PackItem keys', () => {
  const a = toAgentPackagesAnswer('a1', [
    { name: 'web', version: '1.2', is_running: true, duration: 90e9, uptime_seconds: 90 },
  ]);
  GoAgentPackagesSchema.parse(a);
  GoPackItemSchema.parse(a.packages[0]);
  assert.deepEqual(
    [
      a.packages[0]?.package,
      a.packages[0]?.isRunning,
      a.packages[0]?.running_duration,
      a.packages[0]?.duration,
    ],
    ['web', true, 90, 90e9],
  );
});

// ---- a Go controller's answers, as its handlers write them

const goHealth = `{"degraded":0,"healthy":1,"overall_status":"HEALTH_STATUS_UNHEALTHY","services":[
  {"package":"nginx","status":1,"last_check":{"seconds":1705285800,"nanos":5000},"message":"ok",
   "details":[{"status":1,"message":"ok","last_check":{"seconds":1705285800,"nanos":5000},"check_type":"http","response_time_ms":7}]},
  {"package":"redis","status":2,"last_check":{"seconds":1705285801},"message":"check failed",
   "details":[{"status":2,"message":"check failed","last_check":{"seconds":1705285801},"check_type":"tcp","error":"connection refused"}]},
  {"package":"cron"}],
  "total_services":3,"unhealthy":1,"unknown":1}
`;

test('reads a Go controller’s health: enum numbers, Timestamps, absent omitempty fields', () => {
  const h = AgentHealthReadSchema.parse(JSON.parse(goHealth));
  assert.equal(h.overall_status, 'unhealthy');
  assert.deepEqual(Object.keys(h.services).sort(), ['cron', 'nginx', 'redis']);
  assert.deepEqual(h.services.nginx, {
    name: 'nginx',
    status: 'healthy',
    message: 'ok',
    check_type: 'http',
    checked_at: '2024-01-15T02:30:00.000005Z',
    latency_ms: 7,
  });
  assert.equal(h.services.redis?.status, 'unhealthy');
  assert.deepEqual(h.services.cron, { name: 'cron', status: 'unknown', message: '' });
  // services: null (an agent with none)
  assert.deepEqual(AgentHealthReadSchema.parse({ ...JSON.parse(goHealth), services: null }).services, {});
  const one = ServiceHealthReadSchema.parse(JSON.parse(goHealth).services[1]);
  assert.equal(one.name, 'redis');
  assert.equal(one.check_type, 'tcp');
});

test('reads a Go controller’s metrics: MB → bytes, load.1min, timestamp; services map; one package', () => {
  const m = SystemMetricsReadSchema.parse(
    JSON.parse(`{"cpu":{"cores":4,"usage":33.3},"disk":{"total":102400,"usage":60,"used":61440},
      "load":{"15min":0.1,"1min":0.9,"5min":0.5},"memory":{"total":7812,"usage":25.5,"used":1992},
      "network":{"interfaces":[{"name":"eth0","rx_bytes":10,"tx_bytes":20},{"name":"eth1","rx_bytes":1,"tx_bytes":2}]},
      "timestamp":"2024-01-15T10:30:00+08:00"}`),
  );
  assert.equal(m.cpu_percent, 33.3);
  assert.equal(m.cpu_count, 4);
  assert.deepEqual(m.load_average, { load1: 0.9, load5: 0.5, load15: 0.1 });
  assert.deepEqual(m.memory, { total_bytes: 7812 * MIB, used_bytes: 1992 * MIB, used_percent: 25.5 });
  assert.deepEqual(m.disks, [
    { mount: '/', total_bytes: 102400 * MIB, used_bytes: 61440 * MIB, used_percent: 60 },
  ]);
  assert.deepEqual([m.network.rx_bytes, m.network.tx_bytes], [11, 22]);
  assert.equal(m.collected_at, '2024-01-15T10:30:00+08:00');
  assert.equal(m.uptime_seconds, undefined);
  // Go's answer for an agent without metrics is {}; no load when every average is 0.
  const empty = SystemMetricsReadSchema.parse({});
  assert.deepEqual([empty.cpu_percent, empty.disks, empty.load_average.load1], [0, [], 0]);

  const s = serviceMetricsReadSchema().parse(
    JSON.parse(
      `{"services":{"web":{"cpu":{"usage":2.5},"memory":{"usage":64,"usage_percent":0.8}},"db":{"cpu":{"usage":0},"memory":{"usage":0.5}}}}`,
    ),
  );
  assert.deepEqual(s.services, [
    { name: 'db', cpu_percent: 0, rss_bytes: MIB / 2 },
    { name: 'web', cpu_percent: 2.5, rss_bytes: 64 * MIB, memory_percent: 0.8 },
  ]);
  const one = serviceMetricsReadSchema('web').parse({ cpu: { usage: 2.5 }, memory: { usage: 64 } });
  assert.deepEqual(one.services, [{ name: 'web', cpu_percent: 2.5, rss_bytes: 64 * MIB }]);
});

test('reads a Go controller’s packages (pb.PackItem) and its agents without health fields', () => {
  const p = AgentPackagesReadSchema.parse({
    agent_id: 'g1',
    packages: [
      { package: 'nginx', isRunning: true, version: '1.25', running_duration: 3600 },
      { package: 'cron' },
    ],
  });
  assert.deepEqual(p.packages, [
    { name: 'nginx', version: '1.25', is_running: true, duration: 3600e9, uptime_seconds: 3600 },
    { name: 'cron', version: '', is_running: false, duration: 0 },
  ]);
  assert.deepEqual(AgentPackagesReadSchema.parse({ agent_id: 'g1', packages: null }).packages, []);
  const page = AgentsResponseSchema.parse({
    agents: [
      {
        id: 'g1',
        agent_code: 'g1',
        area_id: 'area-go',
        address: '10.9.0.1:9090',
        hostname: 'go-host-1',
        status: 'online',
        labels: null,
        version: '2.0.0',
        last_heartbeat: '2024-01-15T10:30:00.123456789+08:00',
        register_time: '2024-01-15T09:30:00.123456789+08:00',
        services: [{ name: 'nginx', version: '1.25', is_running: true, duration: 3600000000000 }],
      },
    ],
    total: 1,
    page: 1,
    pageSize: 10,
  });
  assert.equal(page.agents[0]?.last_health_check, undefined);
  assert.equal(page.agents[0]?.health_status, 'unknown');
  assert.equal(
    AgentSchema.parse({
      id: 'x',
      last_heartbeat: '0001-01-01T00:00:00Z',
      register_time: '0001-01-01T00:00:00Z',
    }).status,
    'unknown',
  );
});

test('answers read back to the same view (Opsplane → Go shape → Opsplane)', () => {
  const h = AgentHealthReadSchema.parse(JSON.parse(JSON.stringify(toAgentHealthAnswer(health))));
  assert.deepEqual(h, health);
  const m = SystemMetricsReadSchema.parse(JSON.parse(JSON.stringify(toSystemMetricsAnswer(system))));
  assert.deepEqual(m, system);
  const s = serviceMetricsReadSchema().parse(JSON.parse(JSON.stringify(toServiceMetricsAnswer(services))));
  assert.deepEqual(
    s.services,
    [...services.services].sort((a, b) => a.name.localeCompare(b.name)),
  );
  const one = ServiceHealthReadSchema.parse(
    JSON.parse(JSON.stringify(toServiceHealthAnswer(health.services.web!))),
  );
  assert.deepEqual(one, health.services.web);
  // The shape Opsplane controllers answered before (a services map, lowercase statuses) still reads.
  const old = AgentHealthReadSchema.parse(JSON.parse(JSON.stringify(health)));
  assert.deepEqual(old, health);
});

test('protobuf Timestamps keep nanoseconds both ways', () => {
  assert.deepEqual(toGoTimestamp('2024-01-15T10:30:00.000000001+08:00'), { seconds: 1705285800, nanos: 1 });
  assert.equal(fromGoTimestamp({ seconds: 1705285800, nanos: 1 }), '2024-01-15T02:30:00.000000001Z');
  assert.equal(fromGoTimestamp({ seconds: 1705285800 }), '2024-01-15T02:30:00Z');
  assert.equal(fromGoTimestamp({}), undefined);
});

test('controller registrations: Opsplane’s, a Go controller’s, the Go platform’s ControllerInfo', () => {
  const ref = { area: 'area-go', id: 'gohost-10.0.0.5-eth0' };
  const goValue = {
    id: ref.id,
    address: ':8081',
    function_area: 'area-go',
    start_time: '2024-01-15T10:30:00.123456789+08:00',
    version: '2.3.1',
    status: 'online',
    last_heartbeat: '2024-01-15T11:30:00.123456789+08:00',
  };
  const go = readControllerValue(goValue, ref);
  assert.ok(go.ok);
  assert.equal(go.flavor, 'go');
  assert.equal(go.hasHeartbeat, true);
  assert.deepEqual(
    [go.registration.area, go.registration.address, go.registration.agent_count],
    ['area-go', ':8081', 0],
  );
  const info = readControllerValue(
    { id: ref.id, address: '10.0.0.5:8081', area: 'area-go', start_time: goValue.start_time, version: '2' },
    ref,
  );
  assert.ok(info.ok && info.flavor === 'go' && !info.hasHeartbeat);
  // Area and id from the key alone.
  const bare = readControllerValue({ address: '10.0.0.5:8081' }, ref);
  assert.ok(bare.ok && bare.registration.area === 'area-go' && bare.registration.id === ref.id);
  // An Opsplane value stays opsplane.
  const own = readControllerValue(
    {
      id: ref.id,
      address: 'h:1',
      area: 'area-go',
      start_time: goValue.start_time,
      last_heartbeat: goValue.last_heartbeat,
    },
    ref,
  );
  assert.ok(own.ok && own.flavor === 'opsplane');
  // A value naming another area than its key is refused.
  const wrong = readControllerValue({ ...goValue, function_area: 'area-2' }, ref);
  assert.ok(!wrong.ok && /names 'area-2/.test(wrong.reason));
  assert.ok(!readControllerValue({ function_area: 'area-go' }, ref).ok); // no address
});

test('a Go controller’s /status reads as Opsplane’s', () => {
  const s = ControllerStatusReadSchema.parse({
    controller_id: 'go-1',
    start_time: new Date(Date.now() - 60_000).toISOString(),
    version: '2.3.1',
    function_area: 'area-go',
    system_info: { hostname: 'h', os: 'linux' },
    mongodb_status: 'connected',
    etcd_status: 'connected',
  });
  assert.deepEqual([s.id, s.area, s.version, s.agent_count], ['go-1', 'area-go', '2.3.1', 0]);
  assert.ok(s.uptime_seconds >= 59 && s.uptime_seconds <= 61);
});

test('batch configs: null (the Go client’s nil slice) and absent configs are accepted as none', () => {
  for (const configs of [null, undefined, []]) {
    const r = BatchConfigRequestSchema.parse({
      agents: ['a1'],
      package: 'web',
      ...(configs !== undefined ? { configs } : {}),
    });
    assert.deepEqual(r.configs, []);
  }
  assert.ok(!BatchConfigRequestSchema.safeParse({ agents: ['a1'], configs: null }).success); // package still required
});
