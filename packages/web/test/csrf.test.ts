/**
 * F1 and F3 of issue 15, reproduced as found — in a real headless Chromium against a real
 * `opsplane server` process: the admin logs in through the web UI, then opens a page served from
 * another port of the same host (same site, so the SameSite=Strict cookie goes along) that
 *
 * - auto-submits an `enctype=text/plain` form whose body is a CSV creating a device (F1),
 * - posts the same CSV and a token request with `fetch(…, { mode: 'no-cors', credentials: 'include' })`,
 * - auto-submits a `text/plain` form to /auth/logout (F3) and a url-encoded one to /devices.
 *
 * Every request reaches the server with the session cookie and is refused with 403 csrf_origin
 * (audited); nothing is created and the session survives. The UI itself keeps working: its
 * same-origin JSON requests (a token created from the page, the overview, logout) succeed.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import { freePort, startServerProcess, tempDir, waitFor, type ServerProcess } from '@opsplane/test-support';
import { CHROMIUM, CHROMIUM_ARGS, chromiumSkip } from './browser-page.js';

const ADMIN_PASSWORD = 'csrf-test-admin-password-0123';
const skip = chromiumSkip;

const CSV_HEADER = 'name,ip,function_area,os,username';

/** The attacker's pages: each attacks `target` when loaded and sets document.title = 'done'. */
function attackerPages(target: string): Record<string, string> {
  const api = `${target}/api/v1`;
  // text/plain forms send `name=value\r\n`: the name carries the CSV header and a row.
  const formField = `${CSV_HEADER}\ncsrf-form,10.66.0.1,area-1,linux,root\nrest`;
  const page = (body: string) =>
    `<!doctype html><html><head><title>attacker</title></head><body>${body}</body></html>`;
  const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;');
  return {
    '/form-import': page(
      `<form method="POST" action="${api}/devices/import" enctype="text/plain">` +
        `<textarea name="${esc(formField)}">x</textarea></form>` +
        `<script>document.forms[0].submit()</script>`,
    ),
    '/form-logout': page(
      `<form method="POST" action="${api}/auth/logout" enctype="text/plain"><input name="a" value="b"></form>` +
        `<script>document.forms[0].submit()</script>`,
    ),
    '/form-urlencoded': page(
      `<form method="POST" action="${api}/devices">` +
        `<input name="name" value="csrf-urlencoded"><input name="ip" value="10.66.0.3"></form>` +
        `<script>document.forms[0].submit()</script>`,
    ),
    '/fetch-no-cors': page(
      `<script>
        const opts = (body, type) => ({ method: 'POST', mode: 'no-cors', credentials: 'include',
          headers: { 'content-type': type }, body });
        Promise.allSettled([
          fetch('${api}/devices/import', opts(${JSON.stringify(`${CSV_HEADER}\ncsrf-fetch,10.66.0.2,area-1,linux,root\n`)}, 'text/plain')),
          fetch('${api}/tokens', opts(JSON.stringify({ name: 'csrf-token' }), 'application/json')),
          fetch('${api}/auth/logout', { method: 'POST', mode: 'no-cors', credentials: 'include' }),
        ]).then(() => { document.title = 'done'; });
      </script>`,
    ),
  };
}

interface Seen {
  path: string;
  status: number;
  code?: string;
}

describe('CSRF from a page on another port of the same host, in Chromium', { skip, timeout: 180_000 }, () => {
  let work: { path: string; cleanup(): Promise<void> };
  let server: ServerProcess | undefined;
  let attacker: Server | undefined;
  let attackerUrl: string;
  let browser: Browser | undefined;
  let ui: Page;
  let token: string;
  const seen: Seen[] = [];

  const api = async <T>(method: string, path: string, body?: unknown) => {
    const r = await fetch(`${server!.url}/api/v1${path}`, {
      method,
      headers: {
        authorization: `Bearer ${token}`,
        ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
      },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    return { status: r.status, json: (await r.json()) as T };
  };

  before(async () => {
    work = await tempDir('opsplane-csrf-');
    server = await startServerProcess({
      dir: join(work.path, 'server'),
      // Nothing listens on port 1: the server serves without etcd.
      etcdEndpoints: ['http://127.0.0.1:1'],
      adminPassword: ADMIN_PASSWORD,
    });
    const cookie = await server.login();
    const created = await server.call<{ token: string }>(cookie, 'POST', '/tokens', { name: 'csrf-test' });
    assert.equal(created.status, 201, JSON.stringify(created.json));
    token = created.json.token;

    const port = await freePort();
    attackerUrl = `http://127.0.0.1:${port}`;
    const pages = attackerPages(server.url);
    attacker = createServer((req, res) => {
      const html = pages[req.url ?? ''];
      res.writeHead(html ? 200 : 404, { 'content-type': 'text/html; charset=utf-8' }).end(html ?? 'no');
    });
    await new Promise<void>((resolve) => attacker!.listen(port, '127.0.0.1', resolve));

    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
    const context = await browser.newContext();
    context.on('response', (r) => {
      const u = new URL(r.url());
      if (u.origin !== server!.url || !u.pathname.startsWith('/api/v1/') || r.request().method() === 'GET')
        return;
      // Only what the attacker's pages sent (the UI's own page is `ui`).
      if (r.request().frame().page() === ui) return;
      void r.text().then(
        (t) => {
          let code: string | undefined;
          try {
            code = (JSON.parse(t) as { error?: { code?: string } }).error?.code;
          } catch {
            code = undefined;
          }
          seen.push({ path: u.pathname, status: r.status(), ...(code ? { code } : {}) });
        },
        () => seen.push({ path: u.pathname, status: r.status() }),
      );
    });
    ui = await context.newPage();
    ui.setDefaultTimeout(20_000);
    await ui.goto(`${server.url}/`);
    await ui.locator('#username').waitFor();
    await ui.fill('#username', 'admin');
    await ui.fill('#password', ADMIN_PASSWORD);
    await ui.click('.login-form button[type=submit]');
    await ui.waitForURL(/#\/$/);
    assert.equal(await ui.locator('#who-user').textContent(), 'admin');
  });

  after(async () => {
    await browser?.close().catch(() => undefined);
    await new Promise<void>((resolve) => (attacker ? attacker.close(() => resolve()) : resolve()));
    await server?.stop();
    await work?.cleanup();
  });

  const sessionAlive = async () =>
    ui.evaluate(async () => (await fetch('/api/v1/auth/me', { credentials: 'same-origin' })).status);

  it('the UI works: its same-origin JSON requests pass the Origin check', async () => {
    const status = await ui.evaluate(async () => {
      const r = await fetch('/api/v1/tokens', {
        method: 'POST',
        credentials: 'same-origin',
        headers: { 'content-type': 'application/json', accept: 'application/json' },
        body: JSON.stringify({ name: 'made-by-the-ui-page' }),
      });
      return r.status;
    });
    assert.equal(status, 201);
    assert.equal(await sessionAlive(), 200);
  });

  it('an auto-submitting text/plain form on another port cannot import a device (F1)', async () => {
    const page = await ui.context().newPage();
    const response = page.waitForResponse((r) => r.url().endsWith('/api/v1/devices/import'));
    await page.goto(`${attackerUrl}/form-import`);
    const r = await response;
    // 403 csrf_origin, not 401: the cookie went along (same site) and the Origin check refused it.
    assert.equal(r.status(), 403);
    assert.equal(((await r.json()) as { error: { code: string } }).error.code, 'csrf_origin');
    await page.close();
  });

  it('neither can a url-encoded form nor no-cors fetches (import, token, logout)', async () => {
    const page = await ui.context().newPage();
    const form = page.waitForResponse((r) => r.url().endsWith('/api/v1/devices'));
    await page.goto(`${attackerUrl}/form-urlencoded`);
    assert.equal((await form).status(), 403);
    await page.goto(`${attackerUrl}/fetch-no-cors`);
    await waitFor(async () => (await page.title()) === 'done', {
      timeoutMs: 15_000,
      intervalMs: 50,
      what: 'the no-cors fetches',
    });
    await page.close();
  });

  it('an auto-submitting text/plain form cannot log the admin out (F3)', async () => {
    const page = await ui.context().newPage();
    const response = page.waitForResponse((r) => r.url().endsWith('/api/v1/auth/logout'));
    await page.goto(`${attackerUrl}/form-logout`);
    assert.equal((await response).status(), 403);
    await page.close();
    assert.equal(await sessionAlive(), 200, 'the session survived');
  });

  it('nothing was created, every forged request was refused with csrf_origin and audited', async () => {
    await waitFor(() => seen.length >= 6, {
      timeoutMs: 10_000,
      intervalMs: 50,
      what: 'the forged requests to be seen',
    });
    // Opaque (no-cors) answers cannot be read by the page; the audit below names their codes.
    assert.deepEqual(seen.map((s) => `${s.path} ${s.status}`).sort(), [
      '/api/v1/auth/logout 403',
      '/api/v1/auth/logout 403',
      '/api/v1/devices 403',
      '/api/v1/devices/import 403',
      '/api/v1/devices/import 403',
      '/api/v1/tokens 403',
    ]);
    const devices = await api<{ total: number }>('GET', '/devices');
    assert.equal(devices.json.total, 0);
    const tokens = await api<{ tokens: { name: string }[] }>('GET', '/tokens');
    assert.deepEqual(tokens.json.tokens.map((x) => x.name).sort(), ['csrf-test', 'made-by-the-ui-page']);
    const audit = await api<{ entries: { action: string; actor: string; details: { error?: string } }[] }>(
      'GET',
      '/audit?result=failure',
    );
    const refused = audit.json.entries.filter((e) => e.details.error === 'csrf_origin');
    assert.equal(refused.length, 6);
    assert.ok(refused.every((e) => e.actor === 'admin'));
    assert.deepEqual([...new Set(refused.map((e) => e.action))].sort(), [
      'auth.logout',
      'device.create',
      'device.import',
      'token.create',
    ]);
    // And the UI still logs out for real.
    await ui.click('#logout');
    await ui.waitForURL(/#\/login$/);
    assert.equal(await sessionAlive(), 401);
  });
});
