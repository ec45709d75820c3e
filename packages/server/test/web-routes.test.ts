/**
 * The web UI's static files as the server serves them: index.html at /, files under /ui/, the
 * security headers, and no way out of the web root.
 */
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { tempDir } from '@opsplane/test-support';
import { startTestServer, type TestServer } from './helpers.js';

describe('web UI files', { timeout: 60_000 }, () => {
  let t: TestServer;
  let dir: { path: string; cleanup(): Promise<void> };

  before(async () => {
    dir = await tempDir('opsplane-web-root-');
    const root = join(dir.path, 'www');
    await mkdir(join(root, 'js'), { recursive: true });
    await writeFile(join(root, 'index.html'), '<!doctype html><title>Opsplane</title>');
    await writeFile(join(root, 'js', 'main.js'), 'export {};');
    await writeFile(join(dir.path, 'secret.txt'), 'outside the web root');
    t = await startTestServer('pglite', { server: { web_root: root } });
  });
  after(async () => {
    await t?.stop();
    await dir?.cleanup();
  });

  it('serves index.html at / with strict headers, without a session', async () => {
    const res = await fetch(`${t.url}/`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/html/);
    const csp = res.headers.get('content-security-policy') ?? '';
    assert.match(csp, /script-src 'self'/);
    assert.match(csp, /frame-ancestors 'none'/);
    assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
    assert.equal(await res.text(), '<!doctype html><title>Opsplane</title>');
  });

  it('serves files under /ui/ with their content type', async () => {
    const res = await fetch(`${t.url}/ui/js/main.js`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/javascript/);
    assert.equal((await fetch(`${t.url}/ui/js/missing.js`)).status, 404);
  });

  it('never serves a file outside the web root', async () => {
    for (const p of [
      '/ui/../secret.txt',
      '/ui/%2e%2e/secret.txt',
      '/ui/..%2fsecret.txt',
      '/ui/js/%2e%2e/%2e%2e/secret.txt',
    ]) {
      const res = await fetch(`${t.url}${p}`);
      const body = await res.text();
      assert.ok(res.status >= 400 && res.status < 500, `${p} → ${res.status}`);
      assert.ok(!body.includes('outside the web root'), p);
    }
  });

  it('keeps the API closed', async () => {
    assert.equal((await fetch(`${t.url}/api/v1/devices`)).status, 401);
  });
});
