/**
 * The web UI end to end, all real: a fleet (etcd, controllers and agents as processes, two
 * areas — area-1 with two controllers, one agent of which reports a hostname full of markup),
 * an `opsplane server` process serving the built UI (dist/www), and headless Chromium driven
 * by playwright-core. Covers login (wrong password, admin, viewer), the overview, the agent
 * list (area filter, search, the hostile hostname shown as text), an agent's packages and a
 * real restart, a deployment started from the devices page and followed live, an agent killed
 * for real raising an alert (overview card, nav badge, the alerts page, acknowledged, resolved
 * once the agent is back), role-based buttons, logout, and no console error or CSP violation
 * during the whole run.
 *
 * OPSPLANE_UI_SCREENSHOTS=<dir> also keeps the screenshots there (the temp dir is removed).
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import {
  freePort,
  startFleet,
  startServerProcess,
  tempDir,
  sleep,
  waitFor,
  type Fleet,
  type ServerProcess,
} from '@opsplane/test-support';
import { CHROMIUM, CHROMIUM_ARGS, chromiumSkip, pageTools } from './browser-page.js';

const ADMIN_PASSWORD = 'ui-test-admin-password-0123';
const VIEWER = { username: 'watcher', password: 'ui-test-viewer-password-0123' };
const XSS_HOSTNAME = '<img src=x onerror="document.body.dataset.pwned=1">evil-host';
const AGENT = 'area-1-agent-1';
const XSS_AGENT = 'area-1-agent-2';
/** Killed and restarted by the alert test (nothing after it needs area-2). */
const OFFLINE_AGENT = 'area-2-agent-1';
const skip = chromiumSkip;

const until = <T>(fn: () => T | Promise<T>, what: string, timeoutMs = 20_000) =>
  waitFor(fn, { timeoutMs, intervalMs: 100, what });

interface PackageStatus {
  name: string;
  is_running: boolean;
  pid?: number;
}

interface Alert {
  id: string;
  kind: string;
  subject: string;
  status: string;
  labels: Record<string, string>;
  acknowledged_by: string | null;
}

describe('web UI in headless Chromium', { skip, timeout: 300_000 }, () => {
  let work: { path: string; cleanup(): Promise<void> };
  let fleet: Fleet | undefined;
  let server: ServerProcess | undefined;
  let browser: Browser | undefined;
  let context: BrowserContext;
  let page: Page;
  /** While true, any API call may answer 401 (the test ended the session behind the UI's back). */
  let sessionLost = false;
  let base: string;
  let cookie: string;
  let silent: Server | undefined;
  let sshPort = 0;
  const sockets = new Set<Socket>();
  const problems: string[] = [];
  const expected401: string[] = [];
  const requests: string[] = [];

  const call = async <T>(
    method: string,
    path: string,
    body?: unknown,
  ): Promise<{ status: number; json: T }> => {
    const r = await fetch(base + path, {
      method,
      headers: {
        cookie,
        origin: base,
        ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
      },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    const text = await r.text();
    return { status: r.status, json: (text ? JSON.parse(text) : undefined) as T };
  };
  const packagesOf = async (code: string) =>
    (await call<{ packages: PackageStatus[] }>('GET', `/api/v1/agents/${code}/packages`)).json.packages;
  const { text, count, screenshot, unlabelled } = pageTools(
    () => page,
    () => work.path,
  );
  const go = async (hash: string) => {
    await page.goto(`${base}/${hash}`);
  };
  const signIn = async (username: string, password: string) => {
    await page.locator('#username').waitFor();
    await page.fill('#username', username);
    await page.fill('#password', password);
    await page.click('.login-form button[type=submit]');
  };

  /** Extra screenshots, only when they are kept (OPSPLANE_UI_SCREENSHOTS). */
  const snap = async (name: string) => {
    if (process.env.OPSPLANE_UI_SCREENSHOTS) await screenshot(name);
  };

  before(async () => {
    work = await tempDir('opsplane-ui-');
    fleet = await startFleet({
      areas: [
        { name: 'area-1', controllers: 2, agents: 1 },
        { name: 'area-2', controllers: 1, agents: 1 },
      ],
    });
    await fleet.addAgent({
      area: 'area-1',
      code: XSS_AGENT,
      labels: { role: 'web', env: 'test' },
      agentConfig: { hostname: XSS_HOSTNAME },
    });

    // A "device" whose SSH port accepts connections and never answers: its deployment runs
    // until the connect timeout, long enough to follow it live.
    silent = createServer((s) => {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => undefined);
    });
    sshPort = await freePort();
    await new Promise<void>((resolve) => silent?.listen(sshPort, '127.0.0.1', resolve));

    server = await startServerProcess({
      dir: join(work.path, 'server'),
      etcdEndpoints: fleet.etcd.endpoints,
      areas: Object.fromEntries(fleet.areas.map((a) => [a, { agent_secret: fleet!.secret(a) }])),
      server: {
        agents_refresh_interval: '1s',
        deploy: { connect_timeout: '6s', online_timeout: '10s' },
        alerts: { pending_for: '0s', interval: '1s' },
        metrics_history: { interval: '1s' },
      },
      adminPassword: ADMIN_PASSWORD,
    });
    base = server.url;
    cookie = await server.login();
    const viewer = await call('POST', '/api/v1/users', { ...VIEWER, role: 'viewer' });
    assert.equal(viewer.status, 201, JSON.stringify(viewer.json));
    const device = await call('POST', '/api/v1/devices', {
      name: 'edge-01',
      ip: '127.0.0.1',
      function_area: 'area-1',
      os: 'linux',
      login: { port: sshPort, username: 'deploy', password: 'not-a-real-password' },
    });
    assert.equal(device.status, 201, JSON.stringify(device.json));
    await until(async () => {
      const r = await call<{ total: number }>('GET', '/api/v1/agents?status=online');
      return r.json.total === 3;
    }, 'the server to list the 3 agents online');

    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
    context = await browser.newContext({ viewport: { width: 1360, height: 860 } });
    // Runs before the page's own scripts and outside its CSP: reports violations as errors.
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
      // A 401 is what the session probe and a wrong password answer; the browser logs those loads.
      const expected = sessionLost ? /\/api\/v1\// : /\/api\/v1\/auth\/(me|login)$/;
      if (/status of 401/.test(m.text()) && expected.test(url)) expected401.push(url);
      else problems.push(`console.${m.type()}: ${m.text()} (${url})`);
    });
    page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
    page.on('request', (r) => requests.push(r.url()));
  });

  after(async () => {
    await browser?.close().catch(() => undefined);
    await server?.stop();
    await fleet?.stop();
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => (silent ? silent.close(() => resolve()) : resolve()));
    await work?.cleanup();
  });

  it('sends an unauthenticated visitor to the login page and shows a wrong password', async () => {
    await go('');
    await page.waitForURL(/#\/login$/);
    await page.locator('#username').waitFor();
    await signIn('admin', 'not-the-password');
    await page.locator('.login-message [role=alert]').waitFor();
    assert.equal(await text('.login-message [role=alert]'), 'invalid username or password');
    assert.match(page.url(), /#\/login$/);
  });

  it('logs the admin in to an overview with the controllers and agents online', async () => {
    await signIn('admin', ADMIN_PASSWORD);
    await page.waitForURL(/#\/$/);
    assert.equal(await text('#who-user'), 'admin');
    assert.equal(await text('#who-role'), 'admin');
    await until(
      async () => (await text('#card-controllers li[data-area="area-1"]')).includes('2/2 online'),
      'area-1 2/2',
    );
    assert.match(await text('#card-controllers li[data-area="area-2"]'), /1\/1 online/);
    assert.equal(await text('#card-controllers [data-stat="online"] .stat-value'), '3/3');
    await until(
      async () => (await text('#card-agents [data-stat="online"] .stat-value')) === '3',
      '3 agents online',
    );
    assert.equal(await text('#card-devices [data-stat="new"] .stat-value'), '1');
    await snap('overview.png');
  });

  it('lists the agents, narrows them by area and search, and shows a hostile hostname as text', async () => {
    await page.click('nav.nav >> text=Agents');
    await page.waitForURL(/#\/agents$/);
    const rows = '#agents-table tbody tr[data-key]';
    await until(async () => (await count(rows)) === 3, 'three agent rows');
    const keys = async () =>
      page.locator(rows).evaluateAll((trs) => trs.map((tr) => (tr as HTMLElement).dataset.key));
    assert.deepEqual((await keys()).sort(), [AGENT, XSS_AGENT, 'area-2-agent-1']);

    await page.selectOption('#agent-area', 'area-2');
    await until(
      async () => JSON.stringify(await keys()) === JSON.stringify(['area-2-agent-1']),
      'only area-2',
    );
    assert.match(page.url(), /area=area-2/);
    await page.selectOption('#agent-area', '');
    await until(async () => (await count(rows)) === 3, 'all areas again');

    await page.fill('#agent-search', 'evil-host');
    await until(
      async () => JSON.stringify(await keys()) === JSON.stringify([XSS_AGENT]),
      'search hits the hostname',
    );
    const hostnameCell = page.locator(`${rows}[data-key="${XSS_AGENT}"] td`).nth(1);
    assert.equal(await hostnameCell.textContent(), XSS_HOSTNAME);
    await page.fill('#agent-search', '');
    await until(async () => (await count(rows)) === 3, 'search cleared');

    // The markup stayed text: no element was created from it and its handler never ran.
    assert.equal(await count('#agents-table img'), 0);
    assert.equal(await page.evaluate(() => document.querySelectorAll('img[src="x"]').length), 0);
    assert.equal(await page.evaluate(() => document.body.dataset.pwned), undefined);

    // Sorting by a header goes through the API (sort=-id).
    await page.click('#agents-table thead button:has-text("Agent")');
    await page.click('#agents-table thead button:has-text("Agent")');
    await until(async () => (await keys())[0] === 'area-2-agent-1', 'sorted by code, descending');
    assert.match(page.url(), /sort=-id/);

    const png = await screenshot('agents.png');
    const bytes = await readFile(png);
    assert.ok(bytes.length > 5000, `screenshot has ${bytes.length} bytes`);
    assert.equal(bytes.subarray(1, 4).toString(), 'PNG');
    if (process.env.OPSPLANE_UI_SCREENSHOTS) {
      await page.setViewportSize({ width: 390, height: 844 });
      await snap('agents-narrow.png');
      await page.setViewportSize({ width: 1360, height: 860 });
    }
  });

  it('shows the hostile hostname as text on the agent page too', async () => {
    await go(`#/agents/${XSS_AGENT}`);
    await until(
      async () => (await text('#agent-details')).includes(XSS_HOSTNAME),
      'details with the hostname',
    );
    assert.equal(await count('#agent-details img'), 0);
    assert.equal(await page.evaluate(() => document.body.dataset.pwned), undefined);
  });

  it("lists an agent's packages and really restarts one", async () => {
    await go('#/agents');
    await page.locator(`#agents-table tbody tr[data-key="${AGENT}"]`).click();
    await page.waitForURL(new RegExp(`#/agents/${AGENT}$`));
    const pkgRows = '#packages-table tbody tr[data-key]';
    await until(async () => (await count(pkgRows)) === 2, 'two package rows');
    const names = await page
      .locator(pkgRows)
      .evaluateAll((trs) => trs.map((tr) => (tr as HTMLElement).dataset.key));
    assert.deepEqual(names, ['collector', 'web']);
    await until(async () => (await text('#agent-system')).includes('Memory'), 'system metrics');
    await until(async () => (await text('#agent-health')).includes('Overall'), 'health');

    const before = (await packagesOf(AGENT)).find((p) => p.name === 'web');
    assert.ok(before?.is_running && before.pid, JSON.stringify(before));
    await page.click('button[aria-label="Restart web"]');
    await until(
      async () => /restart web on area-1-agent-1: succeeded/.test(await text('#action-results')),
      'the restart result',
      60_000,
    );
    assert.equal(await count('#action-results .alert-bad'), 0);
    const after = await until(async () => {
      const p = (await packagesOf(AGENT)).find((x) => x.name === 'web');
      return p?.is_running && p.pid && p.pid !== before.pid ? p : undefined;
    }, 'web running under a new pid');
    assert.notEqual(after.pid, before.pid);
    await snap('agent.png');
  });

  it('starts a deployment from the devices page and follows it live', async () => {
    await page.click('nav.nav >> text=Devices');
    await page.waitForURL(/#\/devices$/);
    await page.locator('#devices-table tbody tr[data-key]').first().waitFor();
    assert.equal(await page.locator('#deploy-button').isDisabled(), true);
    await page.check('input[aria-label="Select edge-01"]');
    assert.match(await text('#selection-info'), /1 device selected/);
    await page.selectOption('#deploy-type', 'install');
    await page.click('#deploy-button');
    await page.waitForURL(/#\/rollouts\/[0-9a-f-]+$/);
    await page.locator('#rollout-table tbody tr[data-key]').first().waitFor();
    assert.match(await text('#rollout-table tbody tr[data-key]'), /edge-01/);

    await page.click('#rollout-table tbody tr[data-key] a');
    await page.waitForURL(/#\/deployments\/[0-9a-f-]+$/);
    const id = page.url().split('/').pop() ?? '';
    await until(async () => (await text('h1')).includes('failed'), 'the deployment to fail', 90_000);
    await until(async () => (await text('.live-state')) === 'finished', 'the stream to end');
    assert.ok((await count('#deployment-log .log-line')) > 0, 'log lines shown');
    assert.ok((await count('#steps-table tbody tr[data-key]')) > 0, 'steps shown');
    assert.ok(
      requests.some((u) => u.includes(`/api/v1/deployments/${id}/events`)),
      'the page followed the event stream',
    );
    const d = await call<{ status: string; error: string; rollout_id: string }>(
      'GET',
      `/api/v1/deployments/${id}`,
    );
    assert.equal(d.json.status, 'failed');
    assert.ok((await text('.panel [role=alert]')).includes(d.json.error), 'the error is shown');
    assert.equal(await page.locator('button:has-text("Retry")').isVisible(), true);
    await snap('deployment.png');
    await go(`#/rollouts/${d.json.rollout_id}`);
    await until(async () => (await text('h1')).includes('failed'), 'the rollout page');
    await snap('rollout.png');
    await go('#/controllers');
    await page.locator('#controllers table').first().waitFor();
    await snap('controllers.png');
    await go('#/deployments');
    await page.locator('#deployments-table tbody tr.clickable').first().waitFor();
    await snap('deployments.png');
  });

  it('shows a killed agent as a firing alert, acknowledges it, and sees it resolve once it is back', async () => {
    const victim = fleet?.agent(OFFLINE_AGENT);
    assert.ok(victim);
    const subject = `agent:${OFFLINE_AGENT}`;
    const alertOf = async (query: string) =>
      (await call<{ items: Alert[] }>('GET', `/api/v1/alerts?pageSize=500${query}`)).json.items.find(
        (a) => a.subject === subject,
      );
    // The deployment that failed above raised a (warning) alert: left firing and unacknowledged.
    const failed = await until(
      async () =>
        (await call<{ items: Alert[] }>('GET', '/api/v1/alerts?status=firing&kind=deployment_failed')).json
          .items[0],
      'the deployment_failed alert',
    );
    assert.equal(await alertOf(''), undefined, 'no alert about the agent before it is killed');

    await victim.kill();
    await go('#/');
    await until(
      async () => (await count(`#newest-alerts li[data-subject="${subject}"]`)) === 1,
      'the overview to show the agent offline alert',
      45_000,
    );
    assert.ok(Number(await text('#card-alerts [data-stat="critical"] .stat-value')) >= 1);
    assert.ok(Number(await text('#card-alerts [data-stat="warning"] .stat-value')) >= 1);
    await until(async () => Number(await text('#nav-alerts-count')) >= 1, 'the nav badge to count it');
    await snap('overview-alerts.png');

    await page.click('#nav-alerts');
    await page.waitForURL(/#\/alerts$/);
    assert.equal(await page.locator('#alert-status').inputValue(), 'firing');
    const row = `#alerts-table tbody tr[data-subject="${subject}"]`;
    await until(async () => (await count(row)) === 1, 'the alert on the alerts page');
    const cells = await page
      .locator(`${row} td`)
      .evaluateAll((tds) => tds.map((td) => (td.textContent ?? '').trim()));
    assert.deepEqual(cells.slice(0, 3), ['firing', 'critical', 'agent_offline']);
    assert.match(cells[3] ?? '', new RegExp(`Agent ${OFFLINE_AGENT}.*offline`));
    assert.equal(cells[4], 'area-2');
    assert.equal(cells[8], '—', 'not silenced');
    assert.equal(cells[9], '—', 'not acknowledged yet');
    assert.equal(await page.locator(`${row} a`).first().getAttribute('href'), `#/agents/${OFFLINE_AGENT}`);
    assert.ok(Number(await text('#nav-alerts-count')) >= 1);
    const failedRow = `#alerts-table tbody tr[data-key="${failed.id}"]`;
    assert.equal(
      await page.locator(`${failedRow} a`).first().getAttribute('href'),
      `#/deployments/${failed.labels.deployment_id}`,
    );
    assert.equal(await count(`${failedRow} button:has-text("Acknowledge")`), 1);
    await snap('alerts.png');

    await page.click(`${row} button:has-text("Acknowledge")`);
    await until(
      async () => /acknowledged by admin/.test(await text('#alert-results')),
      'the acknowledgement',
    );
    await until(async () => (await text(`${row} td.acked`)).includes('admin'), 'acknowledged by admin');
    await until(
      async () => (await count(`${row} button:has-text("Acknowledge")`)) === 0,
      'no Acknowledge button any more',
    );
    assert.equal((await alertOf('&status=firing'))?.acknowledged_by, 'admin');
    await snap('alerts-acknowledged.png');

    await victim.start();
    await page.selectOption('#alert-status', 'resolved');
    assert.match(page.url(), /#\/alerts\?status=resolved$/);
    await until(
      async () => (await count(`${row}[data-status="resolved"]`)) === 1,
      'the alert resolved once the agent is back',
      45_000,
    );
    assert.match(await text(`${row} td:first-child`), /resolved/);
    assert.match(await text(`${row} td.acked`), /admin/);
    await snap('alerts-resolved.png');

    // Back as before: three agents online, nothing about the agent firing.
    await until(async () => {
      const r = await call<{ total: number }>('GET', '/api/v1/agents?status=online');
      return r.json.total === 3 && (await alertOf('&status=firing')) === undefined;
    }, 'all agents online again');
  });

  it('creates, edits and imports devices in the UI (secrets write-only) and deploys the new one', async () => {
    await go('#/devices');
    await page.locator('#devices-table tbody tr[data-key]').first().waitFor();
    await page.click('#new-device');
    await page.locator('#device-form').waitFor();
    assert.deepEqual(await unlabelled(), [], 'every control of the device form has a label');
    await page.getByLabel('Name', { exact: true }).fill('edge-02');
    await page.getByLabel('IP address').fill('127.0.0.1');
    await page.fill('#devform-area', 'area-1');
    await page.getByLabel('Port').fill(String(sshPort));
    await page.getByLabel('Login user').fill('deploy');
    await page.getByLabel('Password', { exact: true }).fill('ui-device-secret-1');
    await page.getByLabel('Metadata (key=value per line)').fill('role=edge');
    await page.click('#devform-save');
    await until(async () => /Created edge-02/.test(await text('#device-results')), 'the device created');
    const row = '#devices-table tbody tr:has-text("edge-02")';
    await page.locator(row).waitFor();
    const created = (
      await call<{ devices: { id: string; login: { has_password: boolean } }[] }>(
        'GET',
        '/api/v1/devices?name=edge-02',
      )
    ).json.devices[0];
    assert.equal(created?.login.has_password, true);

    // Edit: the password field is empty (write-only) and says it is set; leaving it keeps it.
    await page.click('button[aria-label="Edit edge-02"]');
    await page.locator('#device-form').waitFor();
    assert.equal(await page.getByLabel('Password', { exact: true }).inputValue(), '');
    assert.match(await text('#device-form'), /set — leave empty to keep it/);
    await page.getByLabel('Metadata (key=value per line)').fill('role=edge\nenv=lab');
    await page.click('#devform-save');
    await until(async () => /Saved edge-02/.test(await text('#device-results')), 'the device saved');
    const edited = (
      await call<{
        devices: { metadata: Record<string, string>; login: { username: string; has_password: boolean } }[];
      }>('GET', '/api/v1/devices?name=edge-02')
    ).json.devices[0];
    assert.deepEqual(edited?.metadata, { env: 'lab', role: 'edge' });
    assert.equal(edited?.login.has_password, true, 'an edit that does not re-point keeps the password');
    assert.ok(!(await page.content()).includes('ui-device-secret-1'), 'the secret never comes back');

    // Another login user re-points the device: the stored password goes unless entered again.
    await page.click('button[aria-label="Edit edge-02"]');
    await page.locator('#device-form').waitFor();
    assert.match(await text('#device-form'), /drops it unless entered again/);
    await page.getByLabel('Login user').fill('ops');
    await page.getByLabel('Password', { exact: true }).fill('ui-device-secret-2');
    await page.click('#devform-save');
    const repointed = async () =>
      (
        await call<{ devices: { login: { username: string; has_password: boolean } }[] }>(
          'GET',
          '/api/v1/devices?name=edge-02',
        )
      ).json.devices[0];
    await until(async () => (await repointed())?.login.username === 'ops', 'the device saved again');
    assert.equal((await repointed())?.login.has_password, true, 'the password entered again is kept');

    // Import: a pasted CSV with one bad row; the per-row report.
    await page.click('#import-devices');
    await page
      .getByLabel('…or paste it')
      .fill(
        'name,ip,function_area,os,username\nimp-01,10.0.9.1,area-1,linux,root\nimp-bad,not-an-ip,area-1,linux,root\n',
      );
    await page.click('#import-button');
    await until(
      async () => /2 row\(s\): 1 created, 0 updated, 1 rejected/.test(await text('#import-report')),
      'the report',
    );
    assert.match(await text('#import-rejected'), /imp-bad/);
    await snap('devices-import.png');

    // Delete the imported one (two clicks: delete, confirm).
    await page.locator('#devices-table tbody tr:has-text("imp-01")').waitFor();
    await page.click('button[aria-label="Delete imp-01"]');
    await page.click('button[aria-label="Delete imp-01"]');
    await until(async () => (await count('#devices-table tbody tr:has-text("imp-01")')) === 0, 'imp-01 gone');

    // Deploy the new device, chosen by its metadata (a label selector) rather than ticked.
    await page.fill('#deploy-selector', 'role=edge,env in (lab)');
    assert.match(await text('#selection-info'), /matches the selector/);
    await page.selectOption('#deploy-type', 'install');
    await page.click('#deploy-button');
    await page.waitForURL(/#\/rollouts\/[0-9a-f-]+$/);
    await until(
      async () => (await text('#rollout-table tbody tr[data-key]')).includes('edge-02'),
      'the rollout of edge-02',
    );
  });

  it('runs a batch restart on the agents a label selector picks, with results as they arrive', async () => {
    await go('#/batches');
    await page.click('#new-batch');
    await page.waitForURL(/#\/batches\/new$/);
    await page.fill('#pick-selector', 'role=web');
    await page.press('#pick-selector', 'Enter');
    await until(async () => (await text('#count-filter')) === '1', 'one agent matches role=web');
    assert.deepEqual(
      await page
        .locator('#pick-table tbody tr[data-key]')
        .evaluateAll((trs) => trs.map((tr) => (tr as HTMLElement).dataset.key)),
      [XSS_AGENT],
    );
    assert.equal(await page.locator('#mode-filter').isChecked(), true);
    await page.selectOption('#batch-action', 'restart');
    await page.fill('#batch-packages', 'web');
    assert.deepEqual(await unlabelled(), [], 'every control of the batch form has a label');
    const before = (await packagesOf(XSS_AGENT)).find((p) => p.name === 'web');
    await page.click('#batch-run');
    await page.waitForURL(/#\/batches\/[0-9a-f-]{36}$/);
    const id = page.url().split('/').pop() ?? '';
    await until(async () => (await text('#batch-live')) === 'finished', 'the batch to finish', 60_000);
    await until(async () => (await count('#batch-results tbody tr[data-key]')) === 1, 'one result row');
    assert.equal(
      await page.locator('#batch-results tbody tr[data-key]').getAttribute('data-success'),
      'true',
    );
    assert.match(
      await text('#batch-results tbody tr[data-key]'),
      new RegExp(`${XSS_AGENT}\\s*web\\s*area-1\\s*succeeded\\s*done`),
    );
    assert.match(await text('#batch-counts'), /1 of 1 agents · 1 ok · 0 failed/);
    assert.ok(
      requests.some((u) => u.includes(`/api/v1/batches/${id}/events`)),
      'results came from the event stream',
    );
    const after = (await packagesOf(XSS_AGENT)).find((p) => p.name === 'web');
    assert.notEqual(after?.pid, before?.pid, 'really restarted');
    const job = await call<{ request: { filter?: { selector?: string } } }>('GET', `/api/v1/batches/${id}`);
    assert.equal(job.json.request.filter?.selector, 'role=web');
    await screenshot('batch-live.png');

    await page.click('nav.nav >> text=Batches');
    await until(
      async () => (await count(`#batches-table tbody tr[data-key="${id}"]`)) === 1,
      'the batch in the history',
    );
  });

  it('pushes a config with a validating editor and its diff; the audit page shows before and after', async () => {
    await go(`#/batches/new?agents=${AGENT}`);
    await until(async () => (await text('#count-chosen')) === '1', 'the agent chosen');
    assert.equal(await page.locator('#mode-chosen').isChecked(), true);
    await page.selectOption('#batch-action', 'configs');
    await page.fill('#config-package', 'web');
    assert.equal(await page.inputValue('#config-file'), 'web.yaml');
    assert.equal(await page.inputValue('#config-reference'), AGENT);
    await page.click('#config-edit-current');
    await until(
      async () => (await page.inputValue('#config-content')).includes('message: hello'),
      'the current file',
    );
    assert.match(await text('#config-diff'), /No changes/);

    await page.fill('#config-content', 'message: [unclosed\n');
    await until(async () => /Not valid YAML/.test(await text('#config-validity')), 'the YAML error');
    await page.click('#batch-run');
    await until(
      async () => /Not valid YAML/.test(await text('#batch-message')),
      'refused to push invalid YAML',
    );
    assert.match(page.url(), /#\/batches\/new/);

    const current = (
      await call<{ content: string }>('GET', `/api/v1/agents/${AGENT}/packages/web/configs/web.yaml`)
    ).json.content;
    await page.fill('#config-content', current.replace(/^message: .*$/m, 'message: pushed from the web UI'));
    await until(async () => /valid YAML/.test(await text('#config-validity')), 'valid again');
    await until(
      async () =>
        (await count('#config-diff .diff-add')) === 1 && (await count('#config-diff .diff-del')) === 1,
      'a one-line diff',
    );
    assert.match(await text('#config-diff .diff-del'), /message: hello/);
    assert.match(await text('#config-diff .diff-add'), /message: pushed from the web UI/);
    await screenshot('config-push-diff.png');
    await page.click('#batch-run');
    await page.waitForURL(/#\/batches\/[0-9a-f-]{36}$/);
    const id = page.url().split('/').pop() ?? '';
    await until(async () => (await text('#batch-live')) === 'finished', 'the push to finish', 90_000);
    assert.equal(
      await page.locator('#batch-results tbody tr[data-key]').getAttribute('data-success'),
      'true',
    );
    const now = await call<{ content: string }>(
      'GET',
      `/api/v1/agents/${AGENT}/packages/web/configs/web.yaml`,
    );
    assert.match(now.json.content, /message: pushed from the web UI/);

    // The audit page: the push with the file before and after, and the device edit field by field.
    await page.click('nav.nav >> text=Audit');
    await page.waitForURL(/#\/audit$/);
    await page.fill('#audit-action', 'batch.configs');
    await page.press('#audit-action', 'Enter');
    const pushRow = `#audit-table tbody tr[data-target="${id}"]`;
    await page.locator(pushRow).waitFor();
    const field = `${AGENT}/web/web.yaml`;
    const change = page.locator(`${pushRow} table.changes tr[data-field="${field}"]`);
    assert.match((await change.locator('td.before').textContent()) ?? '', /message: hello/);
    assert.match((await change.locator('td.after').textContent()) ?? '', /message: pushed from the web UI/);
    await page.fill('#audit-action', 'device.update');
    await page.press('#audit-action', 'Enter');
    const devRow = '#audit-table tbody tr[data-action="device.update"]';
    await until(async () => (await count(devRow)) >= 1, 'the device edit in the log');
    const ds = async (f: string) =>
      page
        .locator(`${devRow} table.changes tr[data-field="${f}"] td`)
        .evaluateAll((tds) => tds.map((td) => (td.textContent ?? '').trim()));
    assert.deepEqual(await ds('login.username'), ['deploy', 'ops']);
    assert.deepEqual(await ds('metadata.env'), ['∅', 'lab']);
    assert.match(await text(devRow), /admin/);
    assert.ok(!(await page.content()).includes('ui-device-secret-1'), 'no secret in the audit page');
    assert.deepEqual(await unlabelled(), []);
    await screenshot('audit.png');
  });

  it('draws the agent’s metrics over time with uPlot', async () => {
    await go(`#/agents/${AGENT}`);
    await until(
      async () => Number((await page.locator('#chart-host').getAttribute('data-points')) ?? 0) >= 3,
      'three samples in the host chart',
      30_000,
    );
    assert.ok((await count('#chart-host canvas')) >= 1, 'uPlot drew on a canvas');
    assert.ok((await count('#chart-pkg-rss canvas')) >= 1, 'a chart per package series');
    assert.match(
      (await page.locator('#chart-host .chart-canvas').getAttribute('aria-label')) ?? '',
      /CPU now .* %, peak/,
    );
    assert.match(await text('#chart-pkg-rss figcaption'), /collector now .*, peak .*; web now/);
    await page.selectOption('#history-window', '6h');
    assert.match(page.url(), /window=6h/);
    await page.locator('#chart-host canvas').first().scrollIntoViewIfNeeded();
    await screenshot('agent-charts.png');
  });

  it("revokes an agent's identity (its controller drops it) and reinstates it", async () => {
    const agent = fleet?.agents.find((a) => a.code === XSS_AGENT);
    assert.ok(agent);
    await go(`#/agents/${XSS_AGENT}`);
    const revoke = page.locator('#agent-revoke');
    await revoke.click();
    assert.equal(await revoke.textContent(), 'Confirm revoke', 'asks once more');
    await revoke.click();
    await until(
      async () => /Revoked .* by admin: revoked in the web UI/.test(await text('#agent-identity')),
      'the revoked notice',
    );
    await until(
      async () => (await agent.connectedController()) === undefined,
      'the controller to drop the agent',
    );
    await screenshot('agent-revoked.png');
    const reinstate = page.locator('#agent-reinstate');
    await reinstate.click();
    await reinstate.click();
    await until(async () => (await count('#agent-revoke')) === 1, 'the revoke button again');
    assert.equal(await text('#agent-identity'), '');
    await fleet?.waitOnline(agent, 20_000);
  });

  it('silences alerts by rule and area, and ends a silence', async () => {
    await go('#/alerts');
    await page.locator('#silences-table').waitFor();
    await page.selectOption('#silence-kind', 'agent_offline');
    await page.fill('#silence-area', 'area-2');
    await page.selectOption('#silence-duration', '1h');
    await page.fill('#silence-comment', 'area-2 maintenance');
    await page.press('#silence-comment', 'Enter'); // submits with the keyboard
    await until(async () => /Silenced/.test(await text('#silence-results')), 'the silence created');
    await until(async () => /area-2 maintenance/.test(await text('#silences-table')), 'listed');
    assert.match(await text('#silences-table tbody tr[data-key]'), /rule agent_offline, area area-2/);
    const s = (await call<{ silences: { id: string; area: string }[] }>('GET', '/api/v1/silences')).json
      .silences;
    assert.equal(s[0]?.area, 'area-2');
    assert.deepEqual(await unlabelled(), []);
    await page.click('#silences-table button:has-text("End")');
    await page.click('#silences-table button:has-text("Confirm end")');
    await until(async () => /No active silence/.test(await text('#silences-table')), 'the silence ended');
  });

  it('administers users with roles per area, API tokens and area credentials', async () => {
    await go('#/admin');
    await page.locator('#users-table tbody tr[data-key]').first().waitFor();
    await page.click('#new-user');
    await page.getByLabel('Username').fill('dora');
    await page.getByLabel('Role (every area)').selectOption('viewer');
    await page.getByLabel('Roles per area (area=role per line)').fill('area-1=operator');
    await page.getByLabel('Password', { exact: true }).fill('dora-password-123');
    assert.deepEqual(await unlabelled(), []);
    await page.click('#user-save');
    await until(async () => /Created dora/.test(await text('#user-results')), 'dora created');
    await until(
      async () => /area-1: operator/.test(await text('#users-table tr[data-user="dora"]')),
      'her area role',
    );
    await page.click('button[aria-label="Disable dora"]');
    await until(
      async () => /disabled/.test(await text('#users-table tr[data-user="dora"]')),
      'dora disabled',
    );

    await page.fill('#token-name', 'ui-ci');
    await page.selectOption('#token-expires', '168h');
    await page.fill('#token-areas', 'area-1');
    await page.click('#token-create');
    const secret = await until(
      async () =>
        (await page
          .locator('#token-value')
          .inputValue()
          .catch(() => '')) || undefined,
      'the secret shown once',
    );
    assert.match(secret, /^opsp_/);
    await until(
      async () => /area-1/.test(await text('#tokens-table tr[data-token="ui-ci"]')),
      'listed with its scope',
    );
    assert.ok(!(await text('#tokens-table')).includes(secret), 'never listed');
    await page.click('button[aria-label="Revoke ui-ci"]');
    await page.click('button[aria-label="Revoke ui-ci"]');
    await until(async () => /revoked/.test(await text('#tokens-table tr[data-token="ui-ci"]')), 'revoked');

    await page.click('button[aria-label="Set the credentials of area-2"]');
    await page.getByLabel('Controller API token').fill('area-2-ui-token-0123456789');
    await page.click('#area-save');
    await until(async () => /Credentials of area-2 saved/.test(await text('#area-results')), 'saved');
    await until(
      async () => /set/.test(await text('#areas-table tr[data-area="area-2"] td:nth-child(6)')),
      'the token set',
    );
    // Back as it was (the fleet's controllers take no token): remove it.
    await page.click('button[aria-label="Set the credentials of area-2"]');
    await page.check('#area-clear-token');
    await page.click('#area-save');
    await until(
      async () => /not set/.test(await text('#areas-table tr[data-area="area-2"] td:nth-child(6)')),
      'removed again',
    );
    await screenshot('admin.png');
  });

  it('can be used with the keyboard: skip link, navigation, forms', async () => {
    await go('#/batches');
    await page.locator('#batches-table').waitFor();
    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate(() => document.activeElement?.className), 'skip-link');
    await page.keyboard.press('Enter');
    assert.equal(await page.evaluate(() => document.activeElement?.id), 'main');
    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate(() => document.activeElement?.id), 'new-batch');
    await page.keyboard.press('Enter');
    await page.waitForURL(/#\/batches\/new$/);
    await page.focus('#pick-search');
    await page.keyboard.type(AGENT);
    await until(
      async () => (await count('#pick-table tbody tr[data-key]')) === 1,
      'searched with the keyboard',
    );
    await page.focus(`input[aria-label="Choose ${AGENT}"]`);
    await page.keyboard.press('Space');
    await until(async () => (await text('#count-chosen')) === '1', 'chosen with the space bar');
    for (const hash of [
      '#/devices',
      '#/agents',
      `#/agents/${AGENT}`,
      '#/alerts',
      '#/audit',
      '#/admin',
      '#/batches',
    ]) {
      await go(hash);
      await page.locator('main h1').waitFor();
      await sleep(300);
      assert.deepEqual(await unlabelled(), [], `unlabelled controls on ${hash}`);
    }
  });

  it('goes to the login page when the session is gone, and back after logging in', async () => {
    await page.click('nav.nav >> text=Agents');
    await page.locator('#agents-table tbody tr[data-key]').first().waitFor();
    sessionLost = true;
    await context.clearCookies();
    await page.waitForURL(/#\/login\?next=%23%2Fagents$/, { timeout: 15_000 });
    await signIn('admin', ADMIN_PASSWORD);
    await page.waitForURL(/#\/agents$/);
    sessionLost = false;
    await until(async () => (await count('#agents-table tbody tr[data-key]')) === 3, 'the agents again');
  });

  it('logs out to the login page', async () => {
    await page.click('#logout');
    await page.waitForURL(/#\/login$/);
    await page.locator('#username').waitFor();
    assert.equal(await count('#logout'), 0);
    await snap('login.png');
  });

  it('shows a viewer no action buttons', async () => {
    await signIn(VIEWER.username, VIEWER.password);
    await page.waitForURL(/#\/$/);
    assert.equal(await text('#who-role'), 'viewer');
    await go(`#/agents/${AGENT}`);
    await until(
      async () => (await count('#packages-table tbody tr[data-key]')) === 2,
      'packages for the viewer',
    );
    assert.equal(await count('#packages-table button'), 0);
    assert.equal(await count('#agent-revoke'), 0, 'revoking is for admins');
    assert.equal(await page.getByRole('button', { name: /Restart/ }).count(), 0);
    assert.doesNotMatch(await text('#packages-table thead'), /Actions/);

    await go('#/devices');
    await page.locator('#devices-table tbody tr[data-key]').first().waitFor();
    assert.equal(await count('#deploy-button'), 0);
    assert.equal(await count('input.select-device'), 0);
    assert.equal(await count('#new-device'), 0);
    assert.equal(await count('button[aria-label^="Edit "]'), 0);
    await go('#/batches');
    await page.locator('#batches-table').waitFor();
    assert.equal(await count('#new-batch'), 0);
    await go('#/admin');
    await page.locator('#tokens-table').waitFor();
    assert.equal(await count('#users-table'), 0, 'users are for admins');
    assert.equal(await count('#token-create'), 0);
    await go('#/devices');
    await page.locator('#devices-table tbody tr[data-key]').first().waitFor();
    await snap('devices-viewer.png');

    await go('#/deployments');
    await page.locator('#deployments-table tbody tr.clickable').first().click();
    await page.waitForURL(/#\/deployments\/[0-9a-f-]+$/);
    await until(async () => (await text('.live-state')) === 'finished', 'the finished deployment');
    assert.equal(await page.getByRole('button', { name: /Retry|Cancel/ }).count(), 0);

    // The failed deployment's alert is firing and unacknowledged: an admin saw Acknowledge there.
    await page.click('#nav-alerts');
    await page.waitForURL(/#\/alerts$/);
    await page.locator('#alerts-table tbody tr[data-kind="deployment_failed"]').first().waitFor();
    assert.equal(await count('#alerts-table button'), 0);
    assert.equal(await page.getByRole('button', { name: /Acknowledge/ }).count(), 0);
    assert.doesNotMatch(await text('#alerts-table thead'), /Actions/);

    await page.click('#logout');
    await page.waitForURL(/#\/login$/);
    await page.locator('#username').waitFor();
  });

  it('saw no console error, page error or CSP violation', () => {
    assert.deepEqual(problems, []);
    assert.ok(expected401.length >= 2, `expected 401s: ${expected401.join(', ')}`);
  });
});
