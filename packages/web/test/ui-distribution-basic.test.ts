/**
 * The distribution pages in headless Chromium against a real `opsplane server` process, without
 * agents and without stored artifacts: the artifacts page (the key to pin, the upload form, the
 * empty list), a staged policy created in the form and edited into a second revision (selector
 * box with its live count), a rollout started from the form and followed on its page to its end
 * (no agent matches: it succeeds at once and the revision is applied), the rollouts list, and a
 * viewer who sees all of it with no action. Every control has a label; no console error or CSP
 * violation. (ui-distribution.test.ts adds agents and an uploaded package.)
 *
 * OPSPLANE_UI_SCREENSHOTS=<dir> keeps a screenshot of each page there.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import { startServerProcess, tempDir, waitFor, type ServerProcess } from '@opsplane/test-support';
import { CHROMIUM, CHROMIUM_ARGS, chromiumSkip, pageTools } from './browser-page.js';

const ADMIN_PASSWORD = 'ui-dist-basic-admin-0123';
const VIEWER = { username: 'glancer', password: 'ui-dist-basic-viewer-0123' };
const skip = chromiumSkip;

const until = <T>(fn: () => T | Promise<T>, what: string, timeoutMs = 20_000) =>
  waitFor(fn, { timeoutMs, intervalMs: 100, what });

describe('distribution pages (no agents) in headless Chromium', { skip, timeout: 150_000 }, () => {
  let work: { path: string; cleanup(): Promise<void> };
  let server: ServerProcess | undefined;
  let browser: Browser | undefined;
  let page: Page;
  let base: string;
  let cookie: string;
  let policyId = '';
  let rolloutId = '';
  const problems: string[] = [];
  const requests: string[] = [];

  const call = <T>(method: string, path: string, body?: unknown) =>
    (server as ServerProcess).call<T>(cookie, method, path, body);
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

  before(async () => {
    work = await tempDir('opsplane-ui-dist-basic-');
    server = await startServerProcess({
      dir: join(work.path, 'server'),
      etcdEndpoints: ['http://127.0.0.1:1'],
      adminPassword: ADMIN_PASSWORD,
    });
    base = server.url;
    cookie = await server.login();
    const viewer = await call('POST', '/users', { ...VIEWER, role: 'viewer' });
    assert.equal(viewer.status, 201, JSON.stringify(viewer.json));
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
      if (/status of 401/.test(m.text()) && /\/api\/v1\/auth\/me$/.test(url)) return;
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
    await work?.cleanup();
  });

  it('shows the artifacts page: the key to pin, the upload form, an empty list', async () => {
    await page.click('#nav-artifacts');
    await page.waitForURL(/#\/artifacts$/);
    await page.locator('#artifact-upload-panel').waitFor();
    const keys = await call<{ keys: { key: string; key_id: string }[] }>('GET', '/artifacts/keys');
    const own = keys.json.keys[0];
    assert.ok(own, 'the server has a key');
    await page.locator(`#artifact-key-${own.key_id}`).waitFor();
    assert.equal(await page.locator(`#artifact-key-${own.key_id}`).inputValue(), own.key);
    await until(async () => /No artifacts yet/.test(await text('#artifacts-table tbody')), 'the empty list');
    assert.deepEqual(await unlabelled(), [], 'every control of the artifacts page has a label');
    await screenshot('artifacts.png');
  });

  it('creates a staged policy in the form and edits it into a second revision', async () => {
    await page.click('#nav-policies');
    await page.waitForURL(/#\/policies$/);
    await page.click('#new-policy');
    await page.locator('#policy-form').waitFor();
    // The form opens with one package row; without stored artifacts it offers no version.
    assert.match(await text('#policy-packages select.pkg-version'), /no stored version/);
    await page.getByRole('button', { name: 'Remove package' }).click();
    await page.fill('#policy-name', 'web-canary');
    await page.fill('#policy-description', 'the web hosts, canary first');
    await page.fill('#policy-selector', 'role=web,env in (prod)');
    await until(async () => /0 agents match now/.test(await text('#policy-matches')), 'the live count');
    await page.fill('#policy-priority', '7');
    await page.check('#policy-correct-drift');
    await page.check('#policy-staged');
    assert.deepEqual(await unlabelled(), [], 'every control of the policy form has a label');
    await screenshot('policy-form.png');
    await page.click('#policy-save');
    await page.waitForURL(/#\/policies\/[0-9a-f-]{36}$/);
    policyId = page.url().split('/').pop() ?? '';
    await until(async () => (await text('#policy-info')).includes('role=web,env in (prod)'), 'the details');
    const p = await call<{
      revision: number;
      applied_revision: number | null;
      priority: number;
      correct_drift: boolean;
    }>('GET', `/policies/${policyId}`);
    assert.deepEqual(
      [p.json.revision, p.json.applied_revision, p.json.priority, p.json.correct_drift],
      [1, null, 7, true],
    );
    assert.match(await text('#policy-agents tbody'), /No agent follows this policy/);
    assert.match(await text('#policy-rollouts-table tbody'), /Never rolled out/);

    await page.click('#policy-edit');
    await page.waitForURL(/\/edit$/);
    await page.locator('#policy-form').waitFor();
    assert.equal(await page.inputValue('#policy-selector'), 'role=web,env in (prod)');
    assert.equal(await page.isChecked('#policy-correct-drift'), true);
    await page.fill('#policy-health-timeout', '90');
    await page.check('#policy-staged');
    await page.click('#policy-save');
    await page.waitForURL(new RegExp(`#/policies/${policyId}$`));
    await until(async () => (await count('#policy-revisions tbody tr[data-key]')) === 2, 'two revisions');
    assert.match(await text('#policy-info'), /90 s/);
    assert.match(await text('#policy-info'), /2 \(applied none\)/);
  });

  it('starts a rollout from the form; its page follows it live to its end', async () => {
    await page.click('#policy-rollout');
    await page.waitForURL(/#\/policy-rollouts\/new\?policy=/);
    await page.locator('#rollout-form').waitFor();
    assert.equal(await page.inputValue('#rollout-policy'), policyId);
    assert.match(await text('#rollout-policy-about'), /web-canary: revision 2, agents run nothing of it yet/);
    await page.selectOption('#rollout-mode', 'percent');
    await page.fill('#rollout-batch', '25');
    await page.fill('#rollout-pause', '30');
    await page.fill('#rollout-max-failures', '2');
    assert.deepEqual(await unlabelled(), [], 'every control of the rollout form has a label');
    await screenshot('rollout-form.png');
    await page.click('#rollout-start');
    await page.waitForURL(/#\/policy-rollouts\/[0-9a-f-]{36}$/);
    rolloutId = page.url().split('/').pop() ?? '';
    await until(async () => (await text('#rollout-live')) === 'finished', 'the rollout to finish');
    assert.match(await text('h1'), /succeeded/);
    assert.match(await text('#rollout-waves'), /No agent matched the policy/);
    assert.match(await text('#rollout-counts'), /0 of 0 agents/);
    assert.match(await text('#rollout-info'), /30 s/);
    assert.match(await text('#rollout-info'), /more than 2 failure\(s\)/);
    assert.equal(await page.locator('#rollout-pause').isVisible(), false, 'nothing to pause once finished');
    assert.equal(await page.locator('#rollout-cancel').isVisible(), false);
    assert.ok(
      requests.some((u) => u.includes(`/api/v1/policy-rollouts/${rolloutId}/events`)),
      'the page opened the event stream',
    );
    const r = await call<{ status: string; pause_ms: number; max_failures: number }>(
      'GET',
      `/policy-rollouts/${rolloutId}`,
    );
    assert.deepEqual([r.json.status, r.json.pause_ms, r.json.max_failures], ['succeeded', 30_000, 2]);
    await screenshot('rollout.png');

    await page.click('#nav-policy-rollouts');
    await page.waitForURL(/#\/policy-rollouts$/);
    const row = `#policy-rollouts-list tbody tr[data-key="${rolloutId}"]`;
    await page.locator(row).waitFor();
    assert.match(await text(row), /web-canary\s*2\s*succeeded/);
    await screenshot('rollouts.png');

    // Succeeded: revision 2 is the applied one now.
    await go(`#/policies/${policyId}`);
    await until(
      async () => /^2$/.test((await text('#policy-info dd:nth-of-type(5)')).trim()),
      'revision 2 applied',
    );
    await page.locator(`#policy-rollouts-table tbody tr[data-key="${rolloutId}"]`).waitFor();
    assert.match(await text('#policy-revisions tbody tr[data-key="2"]'), /applied/);
    await screenshot('policy.png');
    await go('#/policies');
    await page.locator('#policies-table tbody tr[data-name="web-canary"]').waitFor();
    await screenshot('policies.png');
  });

  it('shows a viewer the pages without any action', async () => {
    await page.click('#logout');
    await page.waitForURL(/#\/login$/);
    await signIn(VIEWER.username, VIEWER.password);
    await go('#/artifacts');
    await page.locator('.key-input').first().waitFor();
    assert.equal(await count('#artifact-upload-panel'), 0);
    await go(`#/policies/${policyId}`);
    await until(async () => (await text('h1')).includes('web-canary'), 'the policy');
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
