/**
 * The web UI over HTTPS in headless Chromium: an `opsplane server` process with `server.tls`
 * (a certificate of the built-in CA), the login and the overview working, the session cookie
 * Secure, and no console error.
 *
 * How Chromium trusts the test CA: it has no flag to add a root CA (its store is the NSS
 * database of the user profile), and `ignoreHTTPSErrors` would accept any certificate at all.
 * Instead the browser gets `--ignore-certificate-errors-spki-list` with the hash of the server
 * certificate's key only — and the test checks that a certificate with any other key (here
 * from another CA) is still refused, so nothing else is waived.
 */
import assert from 'node:assert/strict';
import { createHash, X509Certificate } from 'node:crypto';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:https';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { chromium, type Browser } from 'playwright-core';
import { CertificateAuthority, initCa } from '@opsplane/pki';
import { skipUnlessAvailable, startServerProcess, tempDir, type ServerProcess } from '@opsplane/test-support';

const CHROMIUM = '/usr/bin/chromium';
const ADMIN_PASSWORD = 'ui-https-admin-password-0123';
const skip = skipUnlessAvailable(
  'chromium',
  existsSync(CHROMIUM),
  `${CHROMIUM} is not installed (node scripts/ensure-deps.mjs installs Debian's chromium)`,
);

const spkiHash = (pem: string) =>
  createHash('sha256')
    .update(new X509Certificate(pem).publicKey.export({ type: 'spki', format: 'der' }))
    .digest('base64');

describe('web UI over HTTPS in headless Chromium', { skip, timeout: 180_000 }, () => {
  let work: { path: string; cleanup(): Promise<void> };
  let server: ServerProcess | undefined;
  let browser: Browser | undefined;
  let stranger: Server | undefined;
  let strangerUrl = '';

  before(async () => {
    work = await tempDir('opsplane-ui-https-');
    const caDir = join(work.path, 'ca');
    await initCa(caDir);
    const ca = await CertificateAuthority.load(caDir);
    const leaf = await ca.issue({ kind: 'server', name: 'platform', area: '' });
    await writeFile(join(work.path, 'server.crt'), leaf.certPem);
    await writeFile(join(work.path, 'server.key'), leaf.keyPem, { mode: 0o600 });
    server = await startServerProcess({
      dir: join(work.path, 'server'),
      // No etcd: the UI's pages that do not need controllers work regardless.
      etcdEndpoints: ['http://127.0.0.1:1'],
      server: { tls: { cert: join(work.path, 'server.crt'), key: join(work.path, 'server.key') } },
      adminPassword: ADMIN_PASSWORD,
      ca: ca.bundlePem,
    });
    // A server whose certificate comes from another CA (another key): must stay refused.
    const other = await (await CertificateAuthority.create()).issue({ kind: 'server', name: 'x', area: '' });
    stranger = createServer({ cert: other.certPem, key: other.keyPem }, (_req, res) => res.end('hello'));
    await new Promise<void>((r) => stranger?.listen(0, '127.0.0.1', r));
    strangerUrl = `https://127.0.0.1:${(stranger.address() as { port: number }).port}/`;
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        `--ignore-certificate-errors-spki-list=${spkiHash(leaf.certPem)}`,
      ],
    });
  });

  after(async () => {
    await browser?.close();
    await server?.stop();
    stranger?.close();
    await work?.cleanup();
  });

  it('logs in and shows the overview over https, with a Secure session cookie and no console error', async () => {
    assert.ok(browser && server);
    assert.match(server.url, /^https:\/\//);
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const page = await context.newPage();
    page.setDefaultTimeout(20_000);
    const problems: string[] = [];
    page.on('console', (m) => {
      if (m.type() !== 'error') return;
      // The session probe before login answers 401; the browser logs that load.
      if (/status of 401/.test(m.text()) && /\/api\/v1\/auth\/me$/.test(m.location().url)) return;
      problems.push(`${m.text()} (${m.location().url})`);
    });
    page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
    const res = await page.goto(`${server.url}/`);
    assert.equal(res?.status(), 200);
    assert.equal(await page.evaluate(() => location.protocol), 'https:');
    await page.locator('#username').waitFor();
    await page.fill('#username', 'admin');
    await page.fill('#password', ADMIN_PASSWORD);
    await page.click('.login-form button[type=submit]');
    await page.waitForFunction(() => !document.querySelector('.login-form'));
    const cookies = await context.cookies();
    const session = cookies.find((c) => c.name === 'opsplane_session');
    assert.ok(session, 'logged in');
    assert.equal(session.secure, true, 'the session cookie is Secure over https');
    assert.equal(session.httpOnly, true);
    await page.screenshot({ path: join(work.path, 'https-overview.png') });
    assert.deepEqual(problems, []);
    await context.close();
  });

  it('still refuses a certificate with any other key', async () => {
    assert.ok(browser);
    const context = await browser.newContext();
    const page = await context.newPage();
    await assert.rejects(page.goto(strangerUrl), /ERR_CERT_AUTHORITY_INVALID|ERR_CERT/);
    await context.close();
  });
});
