/** ControllerClient against a real HTTP server (test/helpers/fake-controller.ts). */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  AgentNotFoundError,
  ControllerUnavailableError,
  PackageNotFoundError,
  RequestTimeoutError,
  ValidationError,
  type AgentFilters,
} from '@opsplane/models';
import { ControllerClient, ControllerConnectionError, ControllerHttpError } from '../src/index.js';
import {
  closedPort,
  makeAgent,
  stall,
  sendJson,
  startFakeController,
  type FakeController,
} from './helpers/fake-controller.js';

const FAST = { retryIntervalMs: 10, maxRetryIntervalMs: 50 };

describe('ControllerClient', () => {
  let ctrl: FakeController;
  const clients: ControllerClient[] = [];
  const client = (base: string, opts: ConstructorParameters<typeof ControllerClient>[2] = {}) => {
    const c = new ControllerClient(base, 'area-1', { ...FAST, ...opts });
    clients.push(c);
    return c;
  };

  before(async () => {
    ctrl = await startFakeController({
      agents: [makeAgent('agent-001'), makeAgent('agent-002', { status: 'offline' }), makeAgent('a b/c')],
    });
  });
  after(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await ctrl.close();
  });
  const reset = () => {
    ctrl.hits.length = 0;
    ctrl.intercept = undefined;
  };

  test('listAgents sends exactly page=1&pageSize=20 by default', async () => {
    reset();
    const res = await client(ctrl.url).listAgents();
    assert.equal(ctrl.hits.length, 1);
    assert.equal(ctrl.hits[0]?.url, '/api/v1/agents?page=1&pageSize=20');
    assert.equal(res.total, 3);
    assert.equal(res.pageSize, 20);
    assert.deepEqual(res.agents.map((a) => a.id).sort(), ['a b/c', 'agent-001', 'agent-002']);
  });

  test('listAgents adds filters after page and pageSize, never page_size', async () => {
    reset();
    const res = await client(ctrl.url).listAgents({ zone: 'z1', status: 'online', mode: '' }, 2, 50);
    assert.equal(ctrl.hits[0]?.url, '/api/v1/agents?page=2&pageSize=50&status=online&zone=z1');
    assert.ok(!ctrl.hits[0]?.url.includes('page_size'));
    assert.equal(res.page, 2);
  });

  test('listAgents refuses unknown filters and bad paging before sending', async () => {
    reset();
    const c = client(ctrl.url);
    await assert.rejects(c.listAgents({ page_size: '10' } as unknown as AgentFilters), (e: unknown) => {
      assert.ok(e instanceof ValidationError);
      assert.equal(e.code, 'unknown_parameter');
      assert.match(e.message, /pageSize/);
      return true;
    });
    await assert.rejects(c.listAgents({}, 0, 20), ValidationError);
    await assert.rejects(c.listAgents({}, 1, 100_000), ValidationError);
    assert.equal(ctrl.hits.length, 0);
  });

  test('adds http:// when the address has no scheme and tolerates trailing slashes', async () => {
    reset();
    const bare = client(`127.0.0.1:${ctrl.port}`);
    assert.equal(bare.baseUrl, `http://127.0.0.1:${ctrl.port}`);
    assert.equal((await bare.getStatus()).id, 'ctrl-1');
    const slashed = client(`${ctrl.url}/`);
    assert.equal(slashed.baseUrl, ctrl.url);
    await slashed.getStatus();
    const withApi = client(`${ctrl.url}/api/v1/`);
    await withApi.getStatus();
    assert.deepEqual(
      ctrl.hits.map((h) => h.url),
      ['/api/v1/status', '/api/v1/status', '/api/v1/status'],
    );
    assert.equal(client(`localhost:${ctrl.port}`).baseUrl, `http://localhost:${ctrl.port}`);
    assert.throws(() => new ControllerClient('ftp://x', 'a'), ValidationError);
  });

  test('every read endpoint parses the wire shapes', async () => {
    reset();
    const c = client(ctrl.url);
    const agent = await c.getAgent('agent-001');
    assert.equal(agent.id, 'agent-001');
    assert.equal(agent.services.length, 2);
    assert.equal((await c.getAgentPackages('agent-001')).packages.length, 2);
    assert.equal((await c.getAgentHealth('agent-001')).overall_status, 'healthy');
    assert.equal((await c.getServiceHealth('agent-001', 'nginx')).name, 'nginx');
    assert.equal((await c.getSystemMetrics('agent-001')).cpu_percent, 12.5);
    const svc = await c.getServiceMetrics('agent-001', { runningOnly: true });
    assert.deepEqual(
      svc.services.map((s) => s.name),
      ['nginx'],
    );
    await c.getServiceMetrics('agent-001', { package: 'redis' });
    const status = await c.getStatus();
    assert.equal(status.area, 'area-1');
    assert.deepEqual(
      ctrl.hits.map((h) => h.url),
      [
        '/api/v1/agents/agent-001',
        '/api/v1/agents/agent-001/packages',
        '/api/v1/agents/agent-001/health',
        '/api/v1/agents/agent-001/health/nginx',
        '/api/v1/agents/agent-001/metrics/system',
        '/api/v1/agents/agent-001/metrics/services?running_only=true',
        '/api/v1/agents/agent-001/metrics/services?package=redis',
        '/api/v1/status',
      ],
    );
  });

  test('path segments are URL-encoded', async () => {
    reset();
    const c = client(ctrl.url);
    assert.equal((await c.getAgent('a b/c')).id, 'a b/c');
    await assert.rejects(c.getAgent('..'), AgentNotFoundError);
    assert.deepEqual(
      ctrl.hits.map((h) => h.url),
      ['/api/v1/agents/a%20b%2Fc', '/api/v1/agents/%2E%2E'],
    );
    await assert.rejects(c.getAgent(''), ValidationError);
  });

  test('404 on an agent path raises AgentNotFoundError (and package_not_found PackageNotFoundError)', async () => {
    reset();
    const c = client(ctrl.url);
    await assert.rejects(c.getAgent('nope'), (e: unknown) => {
      assert.ok(e instanceof AgentNotFoundError);
      assert.equal(e.agentId, 'nope');
      assert.equal(e.code, 'agent_not_found');
      return true;
    });
    await assert.rejects(c.getAgentHealth('nope'), AgentNotFoundError);
    await assert.rejects(c.getServiceHealth('agent-001', 'ghost'), PackageNotFoundError);
    // Not retried: 404 is an answer.
    assert.equal(ctrl.hits.length, 3);
  });

  test('other non-2xx raise ControllerHttpError with status, body and wire code', async () => {
    reset();
    ctrl.intercept = (_req, res) => {
      sendJson(res, 409, { error: { code: 'conflict', message: 'busy' } });
      return true;
    };
    await assert.rejects(client(ctrl.url).getStatus(), (e: unknown) => {
      assert.ok(e instanceof ControllerHttpError);
      assert.equal(e.status, 409);
      assert.equal(e.code, 'conflict');
      assert.equal(e.wireCode, 'conflict');
      assert.equal(e.wireMessage, 'busy');
      assert.match(e.body, /busy/);
      assert.equal(e.url, `${ctrl.url}/api/v1/status`);
      return true;
    });
  });

  test('a malformed 2xx body raises ControllerHttpError upstream_error', async () => {
    reset();
    ctrl.intercept = (_req, res) => {
      sendJson(res, 200, { agents: [{ id: 1 }], total: 'many' });
      return true;
    };
    await assert.rejects(client(ctrl.url).listAgents(), (e: unknown) => {
      assert.ok(e instanceof ControllerHttpError);
      assert.equal(e.code, 'upstream_error');
      assert.equal(e.status, 502);
      assert.equal(e.upstreamStatus, 200);
      return true;
    });
    ctrl.intercept = (_req, res) => {
      res.end('not json');
      return true;
    };
    await assert.rejects(
      client(ctrl.url).getStatus(),
      (e: unknown) => e instanceof ControllerHttpError && e.code === 'upstream_error',
    );
  });

  test('a GET is retried after one 503 and succeeds (server sees 2 hits)', async () => {
    reset();
    let n = 0;
    ctrl.intercept = (_req, res) => {
      if (n++ > 0) return false;
      sendJson(res, 503, { error: { code: 'controller_unavailable', message: 'starting' } });
      return true;
    };
    const res = await client(ctrl.url).listAgents();
    assert.equal(res.total, 3);
    assert.equal(ctrl.hits.length, 2);
  });

  test('GET retries stop after retryTimes and surface the last error', async () => {
    reset();
    ctrl.intercept = (_req, res) => {
      sendJson(res, 502, { error: { code: 'upstream_error', message: 'bad gateway' } });
      return true;
    };
    await assert.rejects(
      client(ctrl.url, { retryTimes: 2 }).getAgent('agent-001'),
      (e: unknown) => e instanceof ControllerHttpError && e.status === 502,
    );
    assert.equal(ctrl.hits.length, 3);
  });

  test('a POST is not retried on 503', async () => {
    reset();
    ctrl.intercept = (_req, res) => {
      sendJson(res, 503, { error: { code: 'controller_unavailable', message: 'draining' } });
      return true;
    };
    await assert.rejects(
      client(ctrl.url, { retryTimes: 3 }).batchStart({ agents: ['agent-001'], packages: ['nginx'] }),
      (e: unknown) => {
        assert.ok(e instanceof ControllerHttpError);
        assert.equal(e.status, 503);
        return true;
      },
    );
    assert.equal(ctrl.hits.length, 1);
  });

  test('batch calls post the wire request and parse the result', async () => {
    reset();
    const c = client(ctrl.url, { apiToken: 's3cret' });
    const started = await c.batchStart({ agents: ['agent-001', 'ghost'], packages: ['nginx'] });
    assert.equal(started.total, 2);
    assert.equal(started.success, 1);
    await c.batchStop({ agents: ['agent-001'] });
    await c.batchRestart({ agents: ['agent-001'], packages: [] });
    const cfg = await c.batchUpdateConfigs({
      agents: ['agent-001'],
      package: 'nginx',
      configs: [{ file_name: 'nginx.conf', content: 'worker_processes 1;\n' }],
    });
    assert.equal(cfg.success, 1);
    assert.deepEqual(
      ctrl.hits.map((h) => `${h.method} ${h.url}`),
      [
        'POST /api/v1/agents/batch/start',
        'POST /api/v1/agents/batch/stop',
        'POST /api/v1/agents/batch/restart',
        'POST /api/v1/agents/batch/configs',
      ],
    );
    assert.deepEqual(JSON.parse(ctrl.hits[0]?.body ?? ''), {
      agents: ['agent-001', 'ghost'],
      packages: ['nginx'],
    });
    assert.equal(ctrl.hits[0]?.headers['authorization'], 'Bearer s3cret');
    assert.equal(ctrl.hits[0]?.headers['content-type'], 'application/json');
    await assert.rejects(c.batchStart({ agents: [] }), ValidationError);
    await assert.rejects(
      c.batchUpdateConfigs({
        agents: ['agent-001'],
        package: 'nginx',
        configs: [{ file_name: '../etc/passwd', content: '' }],
      }),
      ValidationError,
    );
    assert.equal(ctrl.hits.length, 4);
  });

  test('a slow answer raises RequestTimeoutError (retried GET times out each attempt)', async () => {
    reset();
    ctrl.intercept = async (_req, res) => {
      await stall(res, 5000);
      if (!res.destroyed) sendJson(res, 200, {});
      return true;
    };
    const c = client(ctrl.url, { timeoutMs: 100, retryTimes: 0 });
    const t0 = Date.now();
    await assert.rejects(c.getStatus(), (e: unknown) => {
      assert.ok(e instanceof RequestTimeoutError);
      assert.equal(e.code, 'timeout');
      assert.equal(e.timeoutMs, 100);
      return true;
    });
    assert.ok(Date.now() - t0 < 900, 'timed out before the server answered');
    const retried = client(ctrl.url, { timeoutMs: 80, retryTimes: 1 });
    await assert.rejects(retried.getStatus(), RequestTimeoutError);
    assert.equal(ctrl.hits.length, 3);
    // setTimeout changes later requests.
    const c2 = client(ctrl.url, { retryTimes: 0 });
    c2.setTimeout(50);
    assert.equal(c2.timeout, 50);
    await assert.rejects(c2.getStatus(), RequestTimeoutError);
  });

  test('an AbortSignal aborts at once, without retry', async () => {
    reset();
    ctrl.intercept = async (_req, res) => {
      await stall(res, 5000);
      if (!res.destroyed) sendJson(res, 200, {});
      return true;
    };
    const c = client(ctrl.url, { retryTimes: 3 });
    const t0 = Date.now();
    await assert.rejects(
      c.getStatus(AbortSignal.timeout(50)),
      (e: unknown) => e instanceof DOMException && e.name === 'TimeoutError',
    );
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 50);
    await assert.rejects(
      c.listAgents({}, 1, 20, ac.signal),
      (e: unknown) => e instanceof DOMException && e.name === 'AbortError',
    );
    assert.ok(Date.now() - t0 < 900);
    assert.equal(ctrl.hits.length, 2);
    // Already aborted: nothing is sent.
    await assert.rejects(c.getAgent('agent-001', AbortSignal.abort()), { name: 'AbortError' });
    assert.equal(ctrl.hits.length, 2);
  });

  test('an AbortSignal also cuts the backoff sleep short', async () => {
    reset();
    ctrl.intercept = (_req, res) => {
      sendJson(res, 503, { error: { code: 'controller_unavailable', message: 'down' } });
      return true;
    };
    const c = client(ctrl.url, { retryTimes: 5, retryIntervalMs: 10_000, maxRetryIntervalMs: 10_000 });
    const ac = new AbortController();
    const t0 = Date.now();
    setTimeout(() => ac.abort(), 100);
    await assert.rejects(c.getStatus(ac.signal), { name: 'AbortError' });
    assert.ok(Date.now() - t0 < 2000);
    assert.equal(ctrl.hits.length, 1);
  });

  test('keep-alive: sequential requests share one connection', async () => {
    reset();
    const before = ctrl.connections();
    const c = client(ctrl.url);
    for (let i = 0; i < 5; i++) await c.getAgent('agent-001');
    await c.listAgents();
    await c.batchStart({ agents: ['agent-001'] });
    assert.equal(ctrl.connections() - before, 1);
    assert.equal(ctrl.hits.length, 7);
  });

  test('connection refused raises ControllerConnectionError, after retries', async () => {
    const port = await closedPort();
    const c = client(`127.0.0.1:${port}`, { retryTimes: 2 });
    await assert.rejects(c.getStatus(), (e: unknown) => {
      assert.ok(e instanceof ControllerConnectionError);
      assert.ok(e instanceof ControllerUnavailableError);
      assert.equal(e.code, 'controller_unavailable');
      assert.equal(e.causeCode, 'ECONNREFUSED');
      return true;
    });
    await assert.rejects(c.batchStart({ agents: ['x'] }), ControllerConnectionError);
  });

  test('a closed client refuses requests; close is idempotent', async () => {
    const c = new ControllerClient(ctrl.url, 'area-1');
    await c.getStatus();
    await c.close();
    await c.close();
    assert.ok(c.closed);
    await assert.rejects(c.getStatus(), ControllerConnectionError);
  });
});
