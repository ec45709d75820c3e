/**
 * The controller HTTP API on an in-process controller: the guide's exact URLs, validation and
 * error bodies (page_size, unknown agent, bad JSON, missing fields, `../x`, sizes), OpenAPI,
 * /healthz, /metrics, the optional API token and the rate limit.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startEtcd, type EtcdHandle } from '@opsplane/test-support';
import type { BatchOperationResult } from '@opsplane/models';
import type { RunningController } from '../src/index.js';
import { getJson, postJson, startTestController, type ErrorBody } from './support/harness.js';

let etcd: EtcdHandle;
let ctrl: RunningController;

before(async () => {
  etcd = await startEtcd();
  ctrl = await startTestController(etcd, { batch: { max_agents: 3 }, http: { body_limit: '64KiB' } });
});

after(async () => {
  await ctrl?.stop();
  await etcd?.stop();
});

describe('controller API', () => {
  it("answers the guide's exact URLs", async () => {
    const status = await getJson<Record<string, unknown>>(`${ctrl.url}/api/v1/status`);
    assert.equal(status.status, 200);
    assert.equal(status.body.id, ctrl.id);
    assert.equal(status.body.area, 'area-1');
    assert.equal(status.body.agent_count, 0);
    assert.equal(typeof status.body.uptime_seconds, 'number');
    assert.match(String(status.body.start_time), /^\d{4}-\d\d-\d\dT/);

    const list = await getJson(`${ctrl.url}/api/v1/agents?page=1&pageSize=20`);
    assert.equal(list.status, 200);
    assert.deepEqual(list.body, { agents: [], total: 0, page: 1, pageSize: 20 });
  });

  it('refuses page_size with a 400 naming it and suggesting pageSize', async () => {
    const r = await getJson<ErrorBody>(`${ctrl.url}/api/v1/agents?page=1&page_size=20`);
    assert.equal(r.status, 400);
    assert.equal(r.body.error.code, 'unknown_parameter');
    assert.match(r.body.error.message, /'page_size'/);
    assert.match(r.body.error.message, /Did you mean 'pageSize'\?/);
  });

  it('refuses any unknown query parameter and bad paging values', async () => {
    const r = await getJson<ErrorBody>(`${ctrl.url}/api/v1/agents?colour=red`);
    assert.equal(r.status, 400);
    assert.equal(r.body.error.code, 'unknown_parameter');
    assert.match(r.body.error.message, /'colour'/);
    const p = await getJson<ErrorBody>(`${ctrl.url}/api/v1/agents?page=0`);
    assert.equal(p.status, 400);
    assert.equal(p.body.error.code, 'validation_failed');
    assert.match(p.body.error.message, /page/);
    const big = await getJson<ErrorBody>(`${ctrl.url}/api/v1/agents?pageSize=100000`);
    assert.equal(big.status, 400);
    assert.match(big.body.error.message, /pageSize/);
  });

  it('answers 404 agent_not_found for an unknown agent, on every per-agent route', async () => {
    for (const path of ['', '/packages', '/health', '/health/web', '/metrics/system', '/metrics/services']) {
      const r = await getJson<ErrorBody>(`${ctrl.url}/api/v1/agents/nobody${path}`);
      assert.equal(r.status, 404, path);
      assert.equal(r.body.error.code, 'agent_not_found', path);
      assert.match(r.body.error.message, /nobody/);
    }
  });

  it('answers bad JSON with 400 bad_request', async () => {
    const r = await postJson<ErrorBody>(`${ctrl.url}/api/v1/agents/batch/start`, '{"agents": [');
    assert.equal(r.status, 400);
    assert.equal(r.body.error.code, 'bad_request');
    assert.match(r.body.error.message, /JSON/);
  });

  it('answers missing fields with 400 validation_failed naming the field', async () => {
    const r = await postJson<ErrorBody>(`${ctrl.url}/api/v1/agents/batch/restart`, { packages: ['web'] });
    assert.equal(r.status, 400);
    assert.equal(r.body.error.code, 'validation_failed');
    assert.match(r.body.error.message, /agents/);
    const c = await postJson<ErrorBody>(`${ctrl.url}/api/v1/agents/batch/configs`, {
      agents: ['a1'],
      configs: [],
    });
    assert.equal(c.status, 400);
    assert.match(c.body.error.message, /package/);
  });

  it('answers configs: null (as the Go client sends it) per agent, writing nothing', async () => {
    for (const body of [
      { agents: ['a1', 'a2', 'a1'], package: 'web', configs: null },
      { agents: ['a1', 'a2'], package: 'web' },
    ]) {
      const r = await postJson<BatchOperationResult>(`${ctrl.url}/api/v1/agents/batch/configs`, body);
      assert.equal(r.status, 200);
      assert.deepEqual(
        r.body.results.map((x) => [x.agent_code, x.package, x.success]),
        [
          ['a1', 'web', false],
          ['a2', 'web', false],
        ],
      );
      assert.match(r.body.results[0]?.error ?? '', /^no_configs: /);
      assert.equal(r.body.failed, 2);
    }
  });

  it('refuses a config file name like ../x with 400 naming configs.0.file_name', async () => {
    const r = await postJson<ErrorBody>(`${ctrl.url}/api/v1/agents/batch/configs`, {
      agents: ['a1'],
      package: 'web',
      configs: [{ file_name: '../x', content: 'boom' }],
    });
    assert.equal(r.status, 400);
    assert.equal(r.body.error.code, 'validation_failed');
    assert.match(r.body.error.message, /configs\.0\.file_name/);
  });

  it('refuses more agents than batch.max_agents with 413', async () => {
    const r = await postJson<ErrorBody>(`${ctrl.url}/api/v1/agents/batch/stop`, {
      agents: ['a1', 'a2', 'a3', 'a4'],
    });
    assert.equal(r.status, 413);
    assert.equal(r.body.error.code, 'payload_too_large');
    assert.match(r.body.error.message, /at most 3/);
  });

  it('refuses a body over the limit with 413 and a wrong media type with 415', async () => {
    const content = 'x'.repeat(100 * 1024);
    const r = await postJson<ErrorBody>(`${ctrl.url}/api/v1/agents/batch/configs`, {
      agents: ['a1'],
      package: 'web',
      configs: [{ file_name: 'app.conf', content }],
    });
    assert.equal(r.status, 413);
    assert.equal(r.body.error.code, 'payload_too_large');
    const t = await fetch(`${ctrl.url}/api/v1/agents/batch/stop`, {
      method: 'POST',
      headers: { 'content-type': 'text/plain' },
      body: 'x',
    });
    assert.equal(t.status, 415);
    assert.equal(((await t.json()) as ErrorBody).error.code, 'unsupported_media_type');
  });

  it('answers unknown routes with the error shape', async () => {
    const r = await getJson<ErrorBody>(`${ctrl.url}/api/v1/nothing`);
    assert.equal(r.status, 404);
    assert.equal(r.body.error.code, 'not_found');
  });

  it('serves OpenAPI at /docs/json generated from the models schemas', async () => {
    const r = await getJson<{
      openapi: string;
      paths: Record<string, Record<string, { parameters?: { name: string }[] }>>;
    }>(`${ctrl.url}/docs/json`);
    assert.equal(r.status, 200);
    assert.match(r.body.openapi, /^3\./);
    for (const p of [
      '/api/v1/status',
      '/api/v1/agents',
      '/api/v1/agents/{agent_id}',
      '/api/v1/agents/{agent_id}/packages',
      '/api/v1/agents/{agent_id}/health',
      '/api/v1/agents/{agent_id}/health/{package}',
      '/api/v1/agents/{agent_id}/metrics/system',
      '/api/v1/agents/{agent_id}/metrics/services',
      '/api/v1/agents/batch/start',
      '/api/v1/agents/batch/stop',
      '/api/v1/agents/batch/restart',
      '/api/v1/agents/batch/configs',
    ]) {
      assert.ok(r.body.paths[p], `missing ${p}`);
    }
    const names = r.body.paths['/api/v1/agents']?.get?.parameters?.map((x) => x.name) ?? [];
    assert.ok(names.includes('pageSize') && !names.includes('page_size'));
    const ui = await fetch(`${ctrl.url}/docs`, { redirect: 'manual' });
    assert.ok(ui.status === 200 || ui.status === 302, `docs UI status ${ui.status}`);
  });

  it('serves /healthz and Prometheus /metrics', async () => {
    const h = await getJson<{ status: string; registered: boolean }>(`${ctrl.url}/healthz`);
    assert.equal(h.status, 200);
    assert.equal(h.body.status, 'ok');
    assert.equal(h.body.registered, true);
    const m = await fetch(`${ctrl.url}/metrics`);
    assert.equal(m.status, 200);
    const text = await m.text();
    for (const name of [
      'opsplane_controller_connected_agents',
      'opsplane_controller_agent_heartbeats_total',
      'opsplane_controller_batch_results_total',
      'opsplane_controller_http_request_duration_seconds',
    ]) {
      assert.match(text, new RegExp(name));
    }
  });
});

describe('API token', () => {
  let guarded: RunningController;
  before(async () => {
    guarded = await startTestController(etcd, { api_token: 'sesame-token' });
  });
  after(async () => guarded?.stop());

  it('requires Authorization: Bearer on /api/v1 when configured', async () => {
    const none = await getJson<ErrorBody>(`${guarded.url}/api/v1/status`);
    assert.equal(none.status, 401);
    assert.equal(none.body.error.code, 'unauthorized');
    assert.match(none.headers.get('www-authenticate') ?? '', /Bearer/);
    const wrong = await getJson<ErrorBody>(`${guarded.url}/api/v1/agents`, { authorization: 'Bearer nope' });
    assert.equal(wrong.status, 401);
    const batch = await postJson<ErrorBody>(`${guarded.url}/api/v1/agents/batch/start`, { agents: ['a1'] });
    assert.equal(batch.status, 401);
    const ok = await getJson(`${guarded.url}/api/v1/agents?page=1&pageSize=20`, {
      authorization: 'Bearer sesame-token',
    });
    assert.equal(ok.status, 200);
  });

  it('leaves /healthz and /metrics open', async () => {
    assert.equal((await fetch(`${guarded.url}/healthz`)).status, 200);
    assert.equal((await fetch(`${guarded.url}/metrics`)).status, 200);
  });
});

describe('rate limit', () => {
  let limited: RunningController;
  before(async () => {
    limited = await startTestController(etcd, { http: { rate_limit: { max: 5, window: '1m' } } });
  });
  after(async () => limited?.stop());

  it('answers 429 rate_limited past the limit, and never limits /healthz', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 7; i++) statuses.push((await fetch(`${limited.url}/api/v1/status`)).status);
    assert.deepEqual(statuses.slice(0, 5), [200, 200, 200, 200, 200]);
    const r = await getJson<ErrorBody>(`${limited.url}/api/v1/status`);
    assert.equal(r.status, 429);
    assert.equal(r.body.error.code, 'rate_limited');
    for (let i = 0; i < 10; i++) assert.equal((await fetch(`${limited.url}/healthz`)).status, 200);
  });
});
