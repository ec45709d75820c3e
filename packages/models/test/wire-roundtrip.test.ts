/**
 * The wire contract against JSON exactly as the Go system produced it: snake_case keys,
 * `pageSize`, nanosecond RFC 3339 times, Go's `null` for nil slices and maps.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  AgentsResponseSchema,
  AgentSchema,
  BatchConfigRequestSchema,
  BatchOperationRequestSchema,
  BatchOperationResultSchema,
  ControllerRegistrationSchema,
  AgentHealthSchema,
  ErrorBodySchema,
  parseControllerKey,
  controllerKey,
  AgentListQuerySchema,
  unknownAgentQueryParamMessage,
  batchResult,
  failedResults,
  overallHealth,
  SystemMetricsSchema,
  ServiceMetricsSchema,
} from '@opsplane/models';

const goAgentsResponse = `{
  "agents": [
    {
      "id": "agent-001",
      "agent_code": "agent-001",
      "area_id": "area-1",
      "address": "192.168.1.10",
      "hostname": "web-01",
      "status": "online",
      "labels": {"env": "prod"},
      "version": "2.1.0",
      "last_heartbeat": "2024-01-15T10:30:00.123456789+08:00",
      "register_time": "2024-01-10T08:00:00Z",
      "services": [
        {"name": "telegraf", "version": "1.28.0", "is_running": true, "duration": 3600000000000}
      ],
      "health_status": "healthy",
      "last_health_check": "2024-01-15T10:29:55.5+08:00"
    }
  ],
  "total": 1,
  "page": 1,
  "pageSize": 20
}`;

test('AgentsResponse from the Go controller round-trips with its exact keys and values', () => {
  const raw = JSON.parse(goAgentsResponse);
  const parsed = AgentsResponseSchema.parse(raw);
  assert.deepEqual(JSON.parse(JSON.stringify(parsed)), raw);
  assert.equal(parsed.pageSize, 20);
  assert.ok(!('page_size' in parsed));
  assert.equal(parsed.agents[0]?.services[0]?.duration, 3_600_000_000_000);
});

test("Go's null slices and maps are read as empty values", () => {
  const raw = JSON.parse(goAgentsResponse);
  raw.agents[0].services = null;
  raw.agents[0].labels = null;
  const a = AgentSchema.parse(raw.agents[0]);
  assert.deepEqual(a.services, []);
  assert.deepEqual(a.labels, {});
  const empty = AgentsResponseSchema.parse({ agents: null, total: 0, page: 1, pageSize: 20 });
  assert.deepEqual(empty.agents, []);
});

test('Go zero time is a valid timestamp; garbage is not', () => {
  const raw = JSON.parse(goAgentsResponse).agents[0];
  assert.ok(AgentSchema.safeParse({ ...raw, last_health_check: '0001-01-01T00:00:00Z' }).success);
  assert.ok(!AgentSchema.safeParse({ ...raw, last_heartbeat: 'yesterday' }).success);
  assert.ok(!AgentSchema.safeParse({ ...raw, status: 'sleeping' }).success);
});

test('controller registration value round-trips and keys parse strictly', () => {
  const raw = {
    id: 'ctrl-a',
    address: '192.168.1.100:8081',
    area: 'area-1',
    start_time: '2024-01-15T08:00:00Z',
    version: '1.0.0',
    last_heartbeat: '2024-01-15T10:30:00.000000001Z',
    agent_count: 12,
    metadata: { region: 'north', weight: 2 },
  };
  assert.deepEqual(JSON.parse(JSON.stringify(ControllerRegistrationSchema.parse(raw))), raw);
  assert.deepEqual(ControllerRegistrationSchema.parse({ ...raw, metadata: null }).metadata, {});
  assert.ok(!ControllerRegistrationSchema.safeParse({ ...raw, area: undefined }).success);
  assert.ok(!ControllerRegistrationSchema.safeParse({ ...raw, area: 'a/b' }).success);

  assert.equal(controllerKey('controllers/', 'area-1', 'ctrl-a'), 'controllers/area-1/ctrl-a');
  assert.deepEqual(parseControllerKey('controllers/', 'controllers/area-1/ctrl-a'), {
    area: 'area-1',
    id: 'ctrl-a',
  });
  for (const bad of [
    'controllers/area-1',
    'controllers/a/b/c',
    'controllers//x',
    'other/a/b',
    'controllers/a/..',
  ]) {
    assert.equal(parseControllerKey('controllers/', bad), null, bad);
  }
});

test('batch requests: Go null packages mean all; bad names are refused', () => {
  const req = BatchOperationRequestSchema.parse({ agents: ['agent-001', 'agent-002'], packages: null });
  assert.deepEqual(req.packages, []);
  assert.ok(!BatchOperationRequestSchema.safeParse({ agents: [] }).success);
  assert.ok(!BatchOperationRequestSchema.safeParse({ agents: ['a;rm -rf /'] }).success);
  assert.ok(!BatchOperationRequestSchema.safeParse({ agents: ['a'], packages: ['../etc'] }).success);

  const cfg = {
    agents: ['agent-001'],
    package: 'service-1',
    configs: [{ file_name: 'config.yaml', content: 'key: value\n' }],
    config_file: 'config.yaml',
  };
  assert.deepEqual(BatchConfigRequestSchema.parse(cfg), cfg);
  for (const name of ['../x', '/etc/passwd', 'a/b', 'a\\b', '.env', '..', 'x\0y', '']) {
    const r = BatchConfigRequestSchema.safeParse({
      ...cfg,
      configs: [{ file_name: name, content: '' }],
      config_file: undefined,
    });
    assert.ok(!r.success, `file_name ${JSON.stringify(name)} must be refused`);
    assert.deepEqual(r.error.issues[0]?.path, ['configs', 0, 'file_name']);
  }
  assert.ok(!BatchConfigRequestSchema.safeParse({ ...cfg, config_file: 'other.yaml' }).success);
});

test('batch result round-trips and counts agree with entries', () => {
  const raw = {
    total: 2,
    success: 1,
    failed: 1,
    results: [
      { agent_code: 'agent-001', package: 'service-1', success: true, message: 'started' },
      { agent_code: 'agent-002', package: 'service-1', success: false, error: 'agent offline' },
    ],
    duration_ms: 42,
  };
  assert.deepEqual(BatchOperationResultSchema.parse(raw), raw);
  const built = batchResult(raw.results, 42);
  assert.deepEqual(built, raw);
  const failed = failedResults(['a', 'b'], ['p1', 'p2'], 'controller_unavailable', 'not_delivered');
  assert.equal(failed.length, 4);
  assert.ok(failed.every((r) => r.reason === 'not_delivered' && !r.success));
  assert.deepEqual(
    failedResults(['a'], [], 'x', 'outcome_unknown').map((r) => r.package),
    [''],
  );
});

test('agent list query: pageSize camelCase, unknown params refused with a suggestion', () => {
  assert.deepEqual(AgentListQuerySchema.parse({}), { page: 1, pageSize: 20 });
  assert.deepEqual(AgentListQuerySchema.parse({ page: '2', pageSize: '50', status: 'online' }), {
    page: 2,
    pageSize: 50,
    status: 'online',
  });
  const bad = AgentListQuerySchema.safeParse({ page_size: '20' });
  assert.ok(!bad.success);
  assert.match(unknownAgentQueryParamMessage('page_size'), /'page_size'.*Did you mean 'pageSize'/);
  assert.ok(!AgentListQuerySchema.safeParse({ pageSize: '0' }).success);
  assert.ok(!AgentListQuerySchema.safeParse({ pageSize: '1001' }).success);
  assert.ok(!AgentListQuerySchema.safeParse({ page: 'abc' }).success);
});

test('health, metrics and error bodies parse', () => {
  const health = {
    agent_id: 'agent-001',
    overall_status: 'degraded',
    services: {
      telegraf: { name: 'telegraf', status: 'healthy', message: '', checked_at: '2024-01-15T10:30:00Z' },
      nginx: {
        name: 'nginx',
        status: 'unhealthy',
        message: 'connect ECONNREFUSED',
        checked_at: '2024-01-15T10:30:00Z',
      },
    },
    checked_at: '2024-01-15T10:30:00Z',
  };
  assert.deepEqual(AgentHealthSchema.parse(health), health);
  assert.equal(overallHealth(['healthy', 'unhealthy']), 'degraded');
  assert.equal(overallHealth([]), 'unknown');
  assert.equal(overallHealth(['healthy', 'healthy']), 'healthy');
  assert.equal(overallHealth(['unhealthy']), 'unhealthy');

  const sys = {
    agent_id: 'a',
    cpu_percent: 12.5,
    load_average: { load1: 0.1, load5: 0.2, load15: 0.3 },
    memory: { total_bytes: 100, used_bytes: 50 },
    disks: null,
    network: { rx_bytes: 1, tx_bytes: 2 },
    uptime_seconds: 10,
    collected_at: '2024-01-15T10:30:00Z',
  };
  assert.deepEqual(SystemMetricsSchema.parse(sys).disks, []);
  assert.ok(
    ServiceMetricsSchema.safeParse({ agent_id: 'a', services: [], collected_at: '2024-01-15T10:30:00Z' })
      .success,
  );
  assert.ok(ErrorBodySchema.safeParse({ error: { code: 'agent_not_found', message: 'x' } }).success);
});
