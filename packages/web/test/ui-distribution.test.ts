/**
 * The distribution pages end to end, all real: a fleet (etcd, a controller, two agents labelled
 * role=web that pin the server's artifact key), an `opsplane server` process serving the built
 * UI, and headless Chromium (playwright-core). An admin uploads a package archive from the file
 * input, sees the key to pin, creates a staged policy in the form (package version chosen among
 * the stored ones, a config file, a label selector), edits it into a second revision, starts a
 * rollout of one agent per wave from the form and follows it live (event stream): paused,
 * resumed, wave by wave to the end, with per-wave and per-agent results; the policy page then
 * shows both agents applied. An artifact in use cannot be deleted. A viewer sees the pages with
 * no action. No console error or CSP violation.
 *
 * OPSPLANE_UI_SCREENSHOTS=<dir> keeps a screenshot of each page there.
 */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import {
  packageArchive,
  startFleet,
  startServerProcess,
  tempDir,
  waitFor,
  type Fleet,
  type ServerProcess,
} from '@opsplane/test-support';
import { CHROMIUM, CHROMIUM_ARGS, chromiumSkip, pageTools } from './browser-page.js';

const ADMIN_PASSWORD = 'ui-dist-admin-password-0123';
const VIEWER = { username: 'looker', password: 'ui-dist-viewer-password-0123' };
const AGENTS = ['dist-web-1', 'dist-web-2'];
const skip = chromiumSkip;

const until = <T>(fn: () => T | Promise<T>, what: string, timeoutMs = 30_000) =>
  waitFor(fn, { timeoutMs, intervalMs: 100, what });

describe('distribution pages in headless Chromium', { skip, timeout: 240_000 }, () => {
  let work: { path: string; cleanup(): Promise<void> };
  let fleet: Fleet | undefined;
  let server: ServerProcess | undefined;
  let browser: Browser | undefined;
  let page: Page;
  let base: string;
  let cookie: string;
  let archivePath: string;
  let policyId = '';
  let rolloutId = '';
  const problems: string[] = [];
  const requests: string[] = [];

  const call = <T>(method: string, path: string, body?: unknown) =>
    (server as ServerProcess).call<T>(cookie, method, `${path}`, body);
  const { text, count, screenshot, unlabelled } = pageTools(
    () => page,
    () => work.path,
  );
  const go = (hash: string) => page.goto(`${base}/${hash}`);
  const signIn = async (username: string, password: string) => {
    await page.locator('#username').waitFor();
    await page.fill('#username', username);
    await page.fill('#password', password);
    await page.click('.login-form button[type=submit]');
    await page.waitForURL(/#\/$/);
  };
  const rowStatus = (agent: string) =>
    page.locator(`#rollout-agents tbody tr[data-agent="${agent}"]`).getAttribute('data-status');
  const waveStatus = (n: number) =>
    page.locator(`#rollout-waves li[data-wave="${n}"]`).getAttribute('data-status');

  before(async () => {
    work = await tempDir('opsplane-ui-dist-');
    fleet = await startFleet({ areas: [{ name: 'area-1', controllers: 1, agents: 0 }] });
    server = await startServerProcess({
      dir: join(work.path, 'server'),
      etcdEndpoints: fleet.etcd.endpoints,
      areas: { 'area-1': { agent_secret: fleet.secret('area-1') } },
      server: { agents_refresh_interval: '1s' },
      adminPassword: ADMIN_PASSWORD,
    });
    base = server.url;
    cookie = await server.login();
    const viewer = await call('POST', '/users', { ...VIEWER, role: 'viewer' });
    assert.equal(viewer.status, 201, JSON.stringify(viewer.json));
    // The agents pin the server's key, as an install writes it into agent.yaml.
    const keys = await call<{ keys: { key: string }[] }>('GET', '/artifacts/keys');
    assert.equal(keys.status, 200, JSON.stringify(keys.json));
    for (const code of AGENTS)
      await fleet.addAgent({
        area: 'area-1',
        code,
        labels: { role: 'web' },
        agentConfig: { artifact_keys: keys.json.keys.map((k) => k.key) },
      });
    await until(async () => {
      const r = await call<{ total: number }>('GET', '/agents?status=online&selector=role%3Dweb');
      return r.json.total === 2;
    }, 'the server to list both agents online');

    archivePath = join(work.path, 'hello-2.0.0.tar.gz');
    await writeFile(
      archivePath,
      packageArchive({
        manifest: [
          'name: hello',
          'version: 2.0.0',
          'command: /bin/sh',
          "args: ['-c', 'exec sleep 3600']",
          'health_check: { type: process, start_period: 0s, interval: 200ms }',
          '',
        ].join('\n'),
        files: { 'README.txt': 'hello' },
      }),
    );

    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
    const context = await browser.newContext({ viewport: { width: 1360, height: 860 } });
    await context.addInitScript(() =>
      document.addEventListener('securitypolicyviolation', (e) =>
        console.error(`CSP violation: ${e.violatedDirective} blocked ${e.blockedURI}`),
      ),
    );
    page = await context.newPage();
    page.setDefaultTimeout(20_000);
    page.on('console', (m) => {
      if (m.type() !== 'error' && m.type() !== 'warning') return;
      const url = m.location().url;
      // The session probe's 401 before login, and the 409 of the refused delete, are expected.
      if (/status of 401/.test(m.text()) && /\/api\/v1\/auth\/me$/.test(url)) return;
      if (/status of 409/.test(m.text()) && /\/api\/v1\/artifacts\/[0-9a-f]{64}$/.test(url)) return;
      problems.push(`console.${m.type()}: ${m.text()} (${url})`);
    });
    page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
    page.on('request', (r) => requests.push(r.url()));
    await go('');
    await signIn('admin', ADMIN_PASSWORD);
  });

  after(async () => {
    await browser?.close().catch(() => undefined);
    await server?.stop();
    await fleet?.stop();
    await work?.cleanup();
  });

  it('uploads a package archive from the file input and shows the key to pin', async () => {
    await page.click('#nav-artifacts');
    await page.waitForURL(/#\/artifacts$/);
    await page.locator('#artifact-upload-panel').waitFor();
    assert.deepEqual(await unlabelled(), [], 'every control of the artifacts page has a label');
    await page.setInputFiles('#artifact-file', archivePath);
    await page.selectOption('#artifact-kind', 'package');
    await page.click('#artifact-upload');
    await until(
      async () => /Stored package hello 2\.0\.0 \(any\/any/.test(await text('#artifact-upload-message')),
      'the upload notice',
    );
    const row = '#artifacts-table tbody tr[data-name="hello"][data-version="2.0.0"]';
    await page.locator(row).waitFor();
    assert.match(await text(row), /hello\s*2\.0\.0\s*package\s*any\/any.*server/);
    const stored = await call<{ items: { sha256: string; key_id: string }[] }>(
      'GET',
      '/artifacts?name=hello',
    );
    assert.equal(stored.json.items.length, 1);
    const sha = stored.json.items[0]?.sha256 ?? '';
    assert.match((await page.locator(row).locator('code').getAttribute('title')) ?? '', new RegExp(sha));

    // The key shown is the one that signed it (the id is the signature's key_id).
    const keys = await call<{ keys: { key: string; key_id: string }[] }>('GET', '/artifacts/keys');
    const signer = keys.json.keys.find((k) => k.key_id === stored.json.items[0]?.key_id);
    assert.ok(signer, 'the signing key is listed');
    assert.equal(await page.locator(`#artifact-key-${signer.key_id}`).inputValue(), signer.key);
    await screenshot('artifacts.png');
  });

  it('creates a staged policy in the form and edits it into a second revision', async () => {
    await page.click('#nav-policies');
    await page.waitForURL(/#\/policies$/);
    await page.click('#new-policy');
    await page.waitForURL(/#\/policies\/new$/);
    await page.locator('#policy-form').waitFor();
    await page.fill('#policy-name', 'hello-web');
    await page.fill('#policy-description', 'hello on the web hosts');
    await page.fill('#policy-selector', 'role=web');
    const pkg = page.locator('#policy-packages .package-row').first();
    await pkg.locator('input.pkg-name').fill('hello');
    await until(
      async () => (await pkg.locator('select.pkg-version option[value="2.0.0"]').count()) === 1,
      'the stored version offered',
    );
    await pkg.locator('select.pkg-version').selectOption('2.0.0');
    await pkg.getByRole('button', { name: 'Add config file' }).click();
    await pkg.locator('input.cfg-name').fill('hello.conf');
    await pkg.locator('textarea.cfg-content').fill('greeting=hi\n');
    await page.check('#policy-staged');
    assert.deepEqual(await unlabelled(), [], 'every control of the policy form has a label');
    await screenshot('policy-form.png');
    await page.click('#policy-save');
    await page.waitForURL(/#\/policies\/[0-9a-f-]{36}$/);
    policyId = page.url().split('/').pop() ?? '';
    await until(async () => (await text('#policy-info')).includes('role=web'), 'the policy details');
    assert.match(await text('#policy-packages-table'), /hello\s*2\.0\.0\s*hello\.conf/);
    const p = await call<{ revision: number; applied_revision: number | null; packages: unknown[] }>(
      'GET',
      `/policies/${policyId}`,
    );
    assert.deepEqual([p.json.revision, p.json.applied_revision], [1, null]);
    assert.deepEqual(p.json.packages, [
      { name: 'hello', version: '2.0.0', configs: [{ file_name: 'hello.conf', content: 'greeting=hi\n' }] },
    ]);
    // Staged: no agent follows it before a rollout.
    await until(
      async () => /No agent follows this policy/.test(await text('#policy-agents tbody')),
      'no follower yet',
    );

    await page.click('#policy-edit');
    await page.waitForURL(/\/edit$/);
    await page.locator('#policy-form').waitFor();
    assert.equal(await page.inputValue('#policy-name'), 'hello-web');
    assert.equal(await page.locator('#policy-packages textarea.cfg-content').inputValue(), 'greeting=hi\n');
    await page.fill('#policy-description', 'hello, rolled out one host at a time');
    await page.check('#policy-staged');
    await page.click('#policy-save');
    await page.waitForURL(new RegExp(`#/policies/${policyId}$`));
    await until(async () => (await count('#policy-revisions tbody tr[data-key]')) === 2, 'two revisions');
    assert.match(await text('#policy-info'), /one host at a time/);
  });

  it('starts a rollout from the form and follows it live: paused, resumed, wave by wave to the end', async () => {
    await page.click('#policy-rollout');
    await page.waitForURL(/#\/policy-rollouts\/new\?policy=/);
    await page.locator('#rollout-form').waitFor();
    assert.equal(await page.inputValue('#rollout-policy'), policyId);
    assert.match(await text('#rollout-policy-about'), /hello-web: revision 2/);
    await page.selectOption('#rollout-mode', 'size');
    await page.fill('#rollout-batch', '1');
    await page.fill('#rollout-pause', '1');
    await page.fill('#rollout-max-failures', '0');
    await page.fill('#rollout-wave-timeout', '60');
    assert.deepEqual(await unlabelled(), [], 'every control of the rollout form has a label');
    await screenshot('rollout-form.png');
    await page.click('#rollout-start');
    await page.waitForURL(/#\/policy-rollouts\/[0-9a-f-]{36}$/);
    rolloutId = page.url().split('/').pop() ?? '';
    // Pause at once: no further wave starts while paused.
    await page.locator('#rollout-pause:not([hidden])').click();
    await until(
      async () => (await page.locator('#rollout-resume').isVisible()) === true,
      'paused (Resume shown)',
    );
    assert.match(await text('h1'), /paused/);
    assert.match(await text('#rollout-message'), /paused by admin/);
    assert.equal(await page.locator('#rollout-pause').isVisible(), false);
    await until(async () => (await count('#rollout-waves li.wave')) === 2, 'two waves of one agent');
    assert.equal(await waveStatus(2), 'pending', 'no second wave while paused');
    await screenshot('rollout-paused.png');

    await page.click('#rollout-resume');
    await until(async () => (await text('#rollout-live')) === 'finished', 'the rollout to finish', 90_000);
    assert.match(await text('h1'), /succeeded/);
    for (const a of AGENTS) assert.equal(await rowStatus(a), 'applied', a);
    assert.equal(await waveStatus(2), 'done');
    assert.match(await text('#rollout-counts'), /2 of 2 agents · 2 applied/);
    assert.ok(
      requests.some((u) => u.includes(`/api/v1/policy-rollouts/${rolloutId}/events`)),
      'progress came from the event stream',
    );
    await screenshot('rollout.png');

    await page.click('#nav-policy-rollouts');
    await page.waitForURL(/#\/policy-rollouts$/);
    await page.locator(`#policy-rollouts-list tbody tr[data-key="${rolloutId}"]`).waitFor();
    assert.match(
      await text(`#policy-rollouts-list tbody tr[data-key="${rolloutId}"]`),
      /hello-web\s*2\s*succeeded\s*2\/2/,
    );
    await screenshot('rollouts.png');
  });

  it("shows each agent's convergence on the policy page; an artifact in use cannot be deleted", async () => {
    await go(`#/policies/${policyId}`);
    await until(
      async () =>
        (
          await page
            .locator('#policy-agents tbody tr[data-agent]')
            .evaluateAll((trs) => trs.map((tr) => tr.textContent ?? ''))
        ).filter((t) => /applied/.test(t) && /hello 2\.0\.0/.test(t)).length === 2,
      'both agents applied with hello 2.0.0',
    );
    assert.match(await text('#policy-agents-summary'), /2 agent\(s\) · 2 applied/);
    assert.match(await text('#policy-revisions tbody tr[data-key="2"]'), /applied/);
    await page.locator(`#policy-rollouts-table tbody tr[data-key="${rolloutId}"]`).waitFor();
    await screenshot('policy.png');
    await go('#/policies');
    await page.locator('#policies-table tbody tr[data-name="hello-web"]').waitFor();
    await screenshot('policies.png');

    await go('#/artifacts');
    const del = page.getByRole('button', { name: /^Delete hello 2\.0\.0/ });
    await del.click();
    await del.click();
    await page.locator('.list-status [role=alert]').first().waitFor();
    assert.equal(await count('#artifacts-table tbody tr[data-name="hello"]'), 1, 'still stored');
  });

  it('shows a viewer the pages without any action', async () => {
    await page.click('#logout');
    await page.waitForURL(/#\/login$/);
    await signIn(VIEWER.username, VIEWER.password);
    await go('#/artifacts');
    await page.locator('#artifacts-table tbody tr[data-name="hello"]').waitFor();
    assert.equal(await count('#artifact-upload-panel'), 0);
    assert.equal(await count('#artifacts-table button'), 0);
    await page.locator('.key-input').first().waitFor();
    await go(`#/policies/${policyId}`);
    await page.locator('#policy-agents tbody tr[data-agent]').first().waitFor();
    assert.equal(await count('#policy-edit, #policy-rollout, #policy-delete'), 0);
    await go('#/policies');
    await page.locator('#policies-table tbody tr[data-name]').first().waitFor();
    assert.equal(await count('#new-policy'), 0);
    await go('#/policy-rollouts');
    await page.locator('#policy-rollouts-list tbody tr[data-key]').first().waitFor();
    assert.equal(await count('#new-rollout'), 0);
    await go(`#/policy-rollouts/${rolloutId}`);
    await until(async () => (await text('#rollout-live')) === 'finished', 'the finished rollout');
    assert.equal(await count('#rollout-pause, #rollout-resume, #rollout-cancel'), 0);
  });

  it('saw no console error, page error or CSP violation', () => {
    assert.deepEqual(problems, []);
  });
});
