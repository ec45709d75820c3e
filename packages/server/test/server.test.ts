/**
 * The server as an operator meets it: configuration, first start on the embedded default
 * (generated master key and admin password), restart, refusal without a key on PostgreSQL,
 * OpenAPI coverage, error mapping, metrics, health, and a graceful stop.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { cp, stat, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ValidationError } from '@opsplane/models';
import { startPostgresDatabase, tempDir } from '@opsplane/test-support';
import { loadServerConfig, parseListen, startServer } from '../src/index.js';
import {
  deviceBody,
  driverSkip,
  http,
  NO_ETCD,
  pgliteTemplate,
  startTestServer,
  testLogger,
  type TestServer,
} from './helpers.js';

const pgSkip = driverSkip('postgres');
import { ROUTES } from './routes.js';

/** Unsets variables a developer's shell might carry; returns the undo. */
function clearEnv(...names: string[]): () => void {
  const saved = names.map((n) => [n, process.env[n]] as const);
  for (const n of names) delete process.env[n];
  return () => {
    for (const [n, v] of saved) if (v !== undefined) process.env[n] = v;
  };
}

describe('config', () => {
  it('reads platform.yaml with a server section; env and overrides win in that order', async () => {
    const dir = await tempDir();
    try {
      const file = join(dir.path, 'platform.yaml');
      await writeFile(
        file,
        [
          'etcd:',
          '  endpoints: ["etcd-1:2379"]',
          '  dial_timeout: 2s',
          'controller:',
          '  api_timeout: 10s',
          'server:',
          '  listen: "0.0.0.0:9090"',
          '  data_dir: ./var/opsplane',
          '  session_ttl: 2h',
          '  metrics_token: "0123456789abcdef-metrics"',
          '  login_rate_limit: { max: 5, window: 30s }',
          '',
        ].join('\n'),
      );
      const cfg = await loadServerConfig(file, {}, {});
      assert.deepEqual(cfg.etcd.endpoints, ['etcd-1:2379']);
      assert.equal(cfg.etcd.dial_timeout, 2000);
      assert.equal(cfg.controller.api_timeout, 10_000);
      assert.equal(cfg.server.listen, '0.0.0.0:9090');
      assert.equal(cfg.server.data_dir, resolve('./var/opsplane'));
      assert.equal(cfg.server.session_ttl, 7_200_000);
      assert.deepEqual(cfg.server.login_rate_limit, { max: 5, window: 30_000 });
      assert.equal(cfg.server.database_url, undefined);

      const env = {
        DATABASE_URL: 'postgres://u@db/x',
        OPSPLANE_LISTEN: '127.0.0.1:1',
        OPSPLANE_MASTER_KEY_FILE: '/etc/opsplane/key',
      };
      const withEnv = await loadServerConfig(file, {}, env);
      assert.equal(withEnv.server.database_url, 'postgres://u@db/x');
      assert.equal(withEnv.server.listen, '127.0.0.1:1');
      assert.equal(withEnv.server.master_key_file, '/etc/opsplane/key');
      const over = await loadServerConfig(file, { server: { listen: '127.0.0.1:2' } }, env);
      assert.equal(over.server.listen, '127.0.0.1:2');
    } finally {
      await dir.cleanup();
    }
  });

  it('has operator-friendly defaults and names the bad field', async () => {
    const cfg = await loadServerConfig(undefined, {}, {});
    assert.equal(cfg.server.listen, '127.0.0.1:8080');
    assert.equal(cfg.server.data_dir, resolve('./data'));
    assert.equal(cfg.server.session_ttl, 12 * 3600_000);
    assert.equal(cfg.server.cookie_secure, 'auto');
    assert.deepEqual(cfg.etcd.endpoints, ['http://127.0.0.1:2379']);
    await assert.rejects(
      loadServerConfig(undefined, { server: { listen: 'nope' } }, {}),
      (e) => e instanceof ValidationError && /server\.listen/.test(e.message),
    );
    await assert.rejects(
      loadServerConfig(undefined, { server: { sesion_ttl: '1h' } as never }, {}),
      (e) => e instanceof ValidationError && /sesion_ttl/.test(e.message),
    );
    await assert.rejects(
      loadServerConfig(undefined, { server: { session_ttl: 'soon' } }, {}),
      /server\.session_ttl/,
    );
    assert.deepEqual(parseListen(':8080'), { host: '0.0.0.0', port: 8080 });
    assert.deepEqual(parseListen('[::1]:9000'), { host: '::1', port: 9000 });
    assert.throws(() => parseListen('host:99999'), ValidationError);
  });
});

describe('first start, restart and keys', { timeout: 90_000 }, () => {
  it('embedded default: generates master.key (0600) and prints the admin password once; restart reuses both', async () => {
    const dir = await tempDir('opsplane-first-start-');
    try {
      await cp(await pgliteTemplate(), join(dir.path, 'db'), { recursive: true });
      const cfg = await loadServerConfig(
        undefined,
        { server: { listen: '127.0.0.1:0', data_dir: dir.path }, etcd: { endpoints: NO_ETCD } },
        {},
      );
      const printed: string[] = [];
      const restore = clearEnv('OPSPLANE_ADMIN_PASSWORD', 'OPSPLANE_MASTER_KEY');
      let deviceId: string;
      try {
        const s1 = await startServer(cfg, { logger: testLogger(), printSecret: (x) => printed.push(x) });
        try {
          const keyStat = await stat(join(dir.path, 'master.key'));
          assert.equal(keyStat.mode & 0o777, 0o600);
          assert.equal(printed.length, 2);
          assert.match(
            printed[0] ?? '',
            new RegExp(`generated a new master key at ${join(dir.path, 'master.key')}`),
          );
          assert.match(printed[1] ?? '', /OPSPLANE FIRST ADMIN/);
          const password = /password: (\S+)/.exec(printed[1] ?? '')?.[1] ?? '';
          assert.ok(password.length >= 16);
          const login = await http(s1.url, 'POST', '/api/v1/auth/login', {
            body: { username: 'admin', password },
          });
          assert.equal(login.status, 200);
          const cookie = (login.headers.get('set-cookie') ?? '').split(';')[0] as string;
          const d = await http<{ id: string }>(s1.url, 'POST', '/api/v1/devices', {
            auth: { cookie },
            body: deviceBody(1),
          });
          assert.equal(d.status, 201);
          deviceId = d.json.id;
          // The same data dir cannot be opened twice.
          await assert.rejects(
            startServer(cfg, { logger: testLogger(), printSecret: () => undefined }),
            /in use|already open/,
          );
        } finally {
          await s1.stop();
        }
        const s2 = await startServer(cfg, { logger: testLogger(), printSecret: (x) => printed.push(x) });
        try {
          assert.equal(printed.length, 2, 'nothing printed on restart');
          assert.equal((await s2.store.devices.loginSecrets(deviceId)).password, 'pw-1-secret');
        } finally {
          await s2.stop();
        }
        // A different key cannot read the secrets, and says so.
        const s3 = await startServer(cfg, {
          logger: testLogger(),
          masterKey: randomBytes(32).toString('hex'),
          printSecret: () => undefined,
        });
        try {
          await assert.rejects(
            s3.store.devices.loginSecrets(deviceId),
            /encrypted with master key [0-9a-f]{8}, but the configured key is/,
          );
        } finally {
          await s3.stop();
        }
      } finally {
        restore();
      }
    } finally {
      await dir.cleanup();
    }
  });

  it('PostgreSQL without a configured master key refuses to start', { skip: pgSkip }, async () => {
    const db = await startPostgresDatabase();
    const dir = await tempDir();
    const restore = clearEnv('OPSPLANE_MASTER_KEY');
    try {
      const cfg = await loadServerConfig(
        undefined,
        {
          server: { listen: '127.0.0.1:0', data_dir: dir.path, database_url: db.url },
          etcd: { endpoints: NO_ETCD },
        },
        {},
      );
      await assert.rejects(
        startServer(cfg, { logger: testLogger(), printSecret: () => undefined }),
        /no master key: set OPSPLANE_MASTER_KEY/,
      );
    } finally {
      restore();
      await db.drop();
      await dir.cleanup();
    }
  });
});

describe('HTTP plumbing', { timeout: 90_000 }, () => {
  let t: TestServer;
  const METRICS_TOKEN = 'metrics-token-0123456789';
  before(async () => {
    t = await startTestServer('pglite', { server: { body_limit: 4096, metrics_token: METRICS_TOKEN } });
  });
  after(async () => t?.stop());

  it('/healthz is open and checks the database', async () => {
    const res = await t.call('GET', '/healthz');
    assert.equal(res.status, 200);
    assert.deepEqual(res.json, { status: 'ok', database: 'ok' });
  });

  it('OpenAPI at /docs/json documents every route, its responses and security', async () => {
    const res = await t.call<{
      openapi: string;
      paths: Record<
        string,
        Record<string, { summary?: string; responses?: Record<string, unknown>; security?: unknown[] }>
      >;
      components: { securitySchemes: Record<string, unknown> };
    }>('GET', '/docs/json', { auth: t.users.viewer.token });
    assert.equal(res.status, 200);
    assert.match(res.json.openapi, /^3\./);
    assert.deepEqual(Object.keys(res.json.components.securitySchemes).sort(), ['bearerAuth', 'cookieAuth']);
    const documented = new Set(
      Object.entries(res.json.paths).flatMap(([p, ops]) =>
        Object.keys(ops).map((m) => `${m.toUpperCase()} ${p}`),
      ),
    );
    for (const rc of ROUTES.filter((r) => !r.route.startsWith('/docs'))) {
      const key = `${rc.method} ${rc.route.replace(/:(\w+)/g, '{$1}')}`;
      assert.ok(documented.has(key), `${key} missing from OpenAPI`);
      const op = res.json.paths[rc.route.replace(/:(\w+)/g, '{$1}')]?.[rc.method.toLowerCase()];
      assert.ok(op?.summary, `${key} has a summary`);
      if (rc.route !== '/metrics') assert.ok(op?.responses?.[String(rc.ok)], `${key} documents ${rc.ok}`);
    }
    assert.equal(
      documented.size,
      new Set(ROUTES.filter((r) => !r.route.startsWith('/docs')).map((r) => `${r.method} ${r.route}`)).size,
      'no undocumented extras',
    );
    assert.deepEqual(res.json.paths['/healthz']?.get?.security, []);
    assert.deepEqual(res.json.paths['/api/v1/auth/login']?.post?.security, []);
  });

  it('maps errors: bad JSON 400, field-naming validation 400, unknown parameter 400, 404, 409, 413, 415', async () => {
    const auth = t.users.operator.token;
    const post = (body: unknown, contentType?: string) =>
      t.call<{ error: { code: string; message: string } }>('POST', '/api/v1/devices', {
        auth,
        body,
        ...(contentType ? { contentType } : {}),
      });
    const raw = await fetch(`${t.url}/api/v1/devices`, {
      method: 'POST',
      headers: { authorization: `Bearer ${auth.token}`, 'content-type': 'application/json' },
      body: '{"name": ',
    });
    assert.equal(raw.status, 400);
    assert.equal(((await raw.json()) as { error: { code: string } }).error.code, 'bad_request');

    const v = await post({ ...deviceBody(5), ip: '999.1.1.1' });
    assert.equal(v.status, 400);
    assert.equal(v.json.error.code, 'validation_failed');
    assert.match(v.json.error.message, /body\.ip/);
    const nested = await post({ ...deviceBody(5), login: { username: 'root', port: 'x' } });
    assert.match(nested.json.error.message, /body\.login\.port/);
    const extra = await post({ ...deviceBody(5), colour: 'red' });
    assert.equal(extra.status, 400);
    assert.match(extra.json.error.message, /colour/);

    const unknownParam = await t.call<{ error: { code: string; message: string } }>(
      'GET',
      '/api/v1/devices?page_size=10',
      { auth },
    );
    assert.equal(unknownParam.status, 400);
    assert.equal(unknownParam.json.error.code, 'unknown_parameter');
    assert.match(unknownParam.json.error.message, /Did you mean 'pageSize'/);
    const badPage = await t.call<{ error: { message: string } }>('GET', '/api/v1/devices?pageSize=100000', {
      auth,
    });
    assert.equal(badPage.status, 400);
    assert.match(badPage.json.error.message, /pageSize/);
    const badId = await t.call<{ error: { message: string } }>('GET', '/api/v1/devices/not-a-uuid', { auth });
    assert.equal(badId.status, 400);
    assert.match(badId.json.error.message, /params\.id/);
    const missing = await t.call<{ error: { code: string } }>(
      'GET',
      '/api/v1/devices/00000000-0000-4000-8000-000000000000',
      { auth },
    );
    assert.equal(missing.status, 404);
    assert.equal(missing.json.error.code, 'not_found');

    assert.equal((await post(deviceBody(6))).status, 201);
    const dup = await post(deviceBody(6));
    assert.equal(dup.status, 409);
    assert.equal(dup.json.error.code, 'conflict');

    const big = await post({
      ...deviceBody(7),
      metadata: {
        blob: 'x'.repeat(1000),
        b2: 'x'.repeat(1000),
        b3: 'x'.repeat(1000),
        b4: 'x'.repeat(1000),
        b5: 'x'.repeat(1000),
      },
    });
    assert.equal(big.status, 413);
    assert.equal(big.json.error.code, 'payload_too_large');
    // The import route has its own, larger limit.
    const bigImport = await t.call('POST', '/api/v1/devices/import', {
      auth,
      contentType: 'text/csv',
      body:
        'name,ip,function_area,os,username\n' +
        Array.from({ length: 300 }, (_, i) => `big-${i},10.3.0.${i % 250},a,linux,root`).join('\n'),
    });
    assert.equal(bigImport.status, 200, bigImport.text);

    const media = await post('name=x', 'application/x-www-form-urlencoded');
    assert.equal(media.status, 415);
    assert.equal(media.json.error.code, 'unsupported_media_type');
  });

  it('device search, sort and pagination over HTTP', async () => {
    const auth = t.users.operator.token;
    for (let i = 0; i < 12; i++) {
      const r = await t.call('POST', '/api/v1/devices', {
        auth,
        body: {
          ...deviceBody(200 + i),
          name: `web-${String(i).padStart(2, '0')}`,
          function_area: i < 4 ? 'edge' : 'core',
        },
      });
      assert.equal(r.status, 201, r.text);
    }
    const page = await t.call<{ devices: { name: string }[]; total: number; page: number; pageSize: number }>(
      'GET',
      '/api/v1/devices?q=web-&sort=name&order=desc&page=2&pageSize=5',
      { auth: t.users.viewer.session },
    );
    assert.equal(page.status, 200);
    assert.deepEqual([page.json.total, page.json.page, page.json.pageSize], [12, 2, 5]);
    assert.deepEqual(
      page.json.devices.map((d) => d.name),
      ['web-06', 'web-05', 'web-04', 'web-03', 'web-02'],
    );
    const edge = await t.call<{ total: number }>(
      'GET',
      '/api/v1/devices?function_area=edge&status=new,online',
      { auth },
    );
    assert.equal(edge.json.total, 4);
    const badStatus = await t.call('GET', '/api/v1/devices?status=asleep', { auth });
    assert.equal(badStatus.status, 400);
  });

  it('/metrics: the metrics token or any user; Prometheus text with request and device metrics', async () => {
    assert.equal((await t.call('GET', '/metrics')).status, 401);
    assert.equal(
      (await t.call('GET', '/metrics', { headers: { authorization: 'Bearer wrong-token-000000' } })).status,
      401,
    );
    const res = await t.call('GET', '/metrics', { headers: { authorization: `Bearer ${METRICS_TOKEN}` } });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /text\/plain/);
    assert.match(res.text, /opsplane_http_requests_total\{method="GET",route="\/healthz",status="200"\} \d+/);
    assert.match(res.text, /opsplane_devices\{status="new"\} \d+/);
    assert.match(res.text, /process_cpu_user_seconds_total/);
    // The metrics token opens /metrics only.
    assert.equal(
      (await t.call('GET', '/api/v1/devices', { headers: { authorization: `Bearer ${METRICS_TOKEN}` } }))
        .status,
      401,
    );
    assert.equal((await t.call('GET', '/metrics', { auth: t.users.viewer.session })).status, 200);
  });
});

describe('graceful stop', { timeout: 60_000 }, () => {
  it('lets an in-flight import finish, then closes the database; stop() is idempotent', async () => {
    const t = await startTestServer('pglite');
    const csv =
      'name,ip,function_area,os,username,password\n' +
      Array.from({ length: 3000 }, (_, i) => `gs-${i},10.4.${i >> 8}.${i & 255},a,linux,root,pw`).join('\n');
    let answered = false;
    const inflight = t
      .call<{ created: number }>('POST', '/api/v1/devices/import', {
        auth: t.users.operator.token,
        body: csv,
        contentType: 'text/csv',
      })
      .finally(() => (answered = true));
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(answered, false, 'the import is still running when stop() is called');
    const stopping = t.server.stop();
    const res = await inflight;
    await stopping;
    assert.equal(res.status, 200, res.text);
    assert.equal(res.json.created, 3000);
    await assert.rejects(t.server.store.devices.count());
    await assert.rejects(fetch(`${t.url}/healthz`));
    await t.server.stop();
    await t.env.cleanup();
  });
});
