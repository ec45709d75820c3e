/**
 * F1/F3 of issue 15 at the HTTP level (the real-Chromium attack is packages/web/test/csrf.test.ts):
 * state-changing requests with the session cookie need the server's own Origin (or
 * Sec-Fetch-Site: same-origin, or an origin of server.allowed_origins); bearer requests do not;
 * bodies are JSON (the import also takes CSV), anything else is a 415; refusals are audited.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { loadServerConfig } from '../src/index.js';
import { sessionFor, startTestServer, type TestServer } from './helpers.js';

const CSV = 'name,ip,function_area,os,username\ncsrf-1,10.9.9.1,area-1,linux,root\n';

describe('CSRF and content types', { timeout: 60_000 }, () => {
  let t: TestServer;
  let origin: string;
  before(async () => {
    t = await startTestServer('pglite', { server: { allowed_origins: ['https://ops.example.com:443'] } });
    origin = new URL(t.url).origin;
  });
  after(async () => t?.stop());

  const raw = async (
    method: string,
    path: string,
    headers: Record<string, string>,
    body?: string,
  ): Promise<{ status: number; code?: string }> => {
    const res = await fetch(t.url + path, { method, headers, ...(body !== undefined ? { body } : {}) });
    const text = await res.text();
    return {
      status: res.status,
      code: text ? (JSON.parse(text) as { error?: { code?: string } }).error?.code : undefined,
    };
  };
  const devicesNamed = async (name: string) =>
    (await t.call<{ total: number }>('GET', `/api/v1/devices?name=${name}`, { auth: t.users.admin.token }))
      .json.total;

  it('refuses cookie requests without an Origin or from a foreign one (403 csrf_origin), audited', async () => {
    const { cookie } = t.users.operator.session;
    const json = { cookie: cookie as string, 'content-type': 'application/json' };
    const body = JSON.stringify({ name: 'x-token' });
    assert.deepEqual(await raw('POST', '/api/v1/tokens', json, body), { status: 403, code: 'csrf_origin' });
    for (const o of [
      'http://127.0.0.1:1',
      'null',
      'http://evil.example',
      origin.replace('http:', 'https:'),
    ]) {
      assert.deepEqual(
        await raw('POST', '/api/v1/tokens', { ...json, origin: o }, body),
        { status: 403, code: 'csrf_origin' },
        o,
      );
    }
    const csv = { cookie: cookie as string, 'content-type': 'text/csv', origin: 'http://127.0.0.1:1' };
    assert.deepEqual(await raw('POST', '/api/v1/devices/import', csv, CSV), {
      status: 403,
      code: 'csrf_origin',
    });
    assert.equal(await devicesNamed('csrf-1'), 0);
    const audit = await t.call<{
      entries: { action: string; result: string; actor: string; details: { error?: string } }[];
    }>('GET', '/api/v1/audit?action=device.import', { auth: t.users.admin.token });
    const row = audit.json.entries[0];
    assert.equal(row?.result, 'failure');
    assert.equal(row?.actor, 'operator-user');
    assert.equal(row?.details.error, 'csrf_origin');
  });

  it('accepts its own origin, an allowed origin and Sec-Fetch-Site: same-origin with the cookie', async () => {
    const { cookie } = t.users.operator.session;
    const base = { cookie: cookie as string, 'content-type': 'application/json' };
    const extras: Record<string, string>[] = [
      { origin },
      { origin: 'https://ops.example.com' },
      { 'sec-fetch-site': 'same-origin' },
      // Behind a TLS proxy without trust_proxy the server thinks it is http: the browser's word wins.
      { origin: origin.replace('http:', 'https:'), 'sec-fetch-site': 'same-origin' },
    ];
    for (const extra of extras) {
      const r = await raw('POST', '/api/v1/tokens', { ...base, ...extra }, JSON.stringify({ name: 'ok' }));
      assert.equal(r.status, 201, JSON.stringify(extra));
    }
    const csv = { cookie: cookie as string, 'content-type': 'text/csv; charset=utf-8', origin };
    assert.equal((await raw('POST', '/api/v1/devices/import', csv, CSV)).status, 200);
    assert.equal(await devicesNamed('csrf-1'), 1);
  });

  it('does not check bearer-token requests (browsers never send a token by themselves)', async () => {
    const r = await raw(
      'POST',
      '/api/v1/tokens',
      {
        authorization: `Bearer ${t.users.operator.token.token}`,
        'content-type': 'application/json',
        origin: 'http://evil.example',
      },
      JSON.stringify({ name: 'bearer' }),
    );
    assert.equal(r.status, 201);
  });

  it('refuses bodies that are not JSON (or CSV for the import) with 415, for every caller', async () => {
    const tokenAuth = { authorization: `Bearer ${t.users.operator.token.token}` };
    const cookieAuth = { cookie: t.users.operator.session.cookie as string, origin };
    for (const auth of [tokenAuth, cookieAuth]) {
      for (const type of [
        'text/plain',
        'application/x-www-form-urlencoded',
        'multipart/form-data; boundary=x',
      ]) {
        const h = { ...auth, 'content-type': type };
        assert.deepEqual(
          await raw('POST', '/api/v1/devices/import', h, CSV),
          { status: 415, code: 'unsupported_media_type' },
          type,
        );
        assert.deepEqual(await raw('POST', '/api/v1/tokens', h, '{"name":"x"}'), {
          status: 415,
          code: 'unsupported_media_type',
        });
        // Even without a body: a form that posts nothing still declares its type.
        assert.deepEqual(await raw('POST', '/api/v1/auth/logout', h, ''), {
          status: 415,
          code: 'unsupported_media_type',
        });
      }
    }
  });

  it('logout: a cross-origin text/plain POST leaves the session alone; a same-origin one ends it', async () => {
    const session = await sessionFor(t.server, t.users.viewer.id);
    const cookie = session.cookie as string;
    const foreign = await raw(
      'POST',
      '/api/v1/auth/logout',
      { cookie, origin: 'http://127.0.0.1:1', 'content-type': 'text/plain' },
      'x=y',
    );
    assert.deepEqual(foreign, { status: 403, code: 'csrf_origin' });
    const noOrigin = await raw('POST', '/api/v1/auth/logout', { cookie });
    assert.deepEqual(noOrigin, { status: 403, code: 'csrf_origin' });
    assert.equal((await t.call('GET', '/api/v1/auth/me', { auth: session })).status, 200);
    assert.equal((await raw('POST', '/api/v1/auth/logout', { cookie, origin })).status, 204);
    assert.equal((await t.call('GET', '/api/v1/auth/me', { auth: session })).status, 401);
  });

  it('login refuses a foreign Origin (login CSRF) and accepts none (CLI) or its own', async () => {
    const body = JSON.stringify({ username: t.users.viewer.username, password: t.users.viewer.password });
    const json = { 'content-type': 'application/json' };
    assert.deepEqual(
      await raw('POST', '/api/v1/auth/login', { ...json, origin: 'http://127.0.0.1:1' }, body),
      {
        status: 403,
        code: 'csrf_origin',
      },
    );
    assert.equal((await raw('POST', '/api/v1/auth/login', json, body)).status, 200);
    assert.equal((await raw('POST', '/api/v1/auth/login', { ...json, origin }, body)).status, 200);
  });

  it('server.allowed_origins must hold origins', async () => {
    await assert.rejects(
      loadServerConfig(undefined, { server: { allowed_origins: ['https://ops.example.com/path'] } }, {}),
      /not an origin/,
    );
    const cfg = await loadServerConfig(
      undefined,
      { server: { allowed_origins: ['HTTPS://Ops.Example.com:443'] } },
      {},
    );
    assert.deepEqual(cfg.server.allowed_origins, ['https://ops.example.com']);
  });
});
