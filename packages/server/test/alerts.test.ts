/**
 * Alerting end to end, real parts only: a real etcd, an area with two real controllers and two
 * real agents (with real packages), the real server pointing at that etcd (pending_for 0s), and
 * two real HTTP webhook receivers run by the test — the external systems. One checks every
 * request's HMAC signature and records what it got; the other answers 500 twice before it
 * accepts, and wants deployment_failed only.
 *
 * Before the server starts, an extra agent connects and is killed, so the controllers list it
 * offline though this server never saw it online: it must not alert (no flood of old records).
 */
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { startEtcd, startFleet, waitFor, type EtcdHandle, type Fleet } from '@opsplane/test-support';
import type { Alert, AlertListResponse, AlertNotification, Rollout } from '@opsplane/api';
import { startTestServer, type TestServer } from './helpers.js';

const WEBHOOK_SECRET = 'receiver-shared-secret-0123456789';

interface Received {
  headers: IncomingHttpHeaders;
  body: AlertNotification;
  signatureOk: boolean;
  answered: number;
}

interface Receiver {
  url: string;
  got: Received[];
  close(): Promise<void>;
}

/** An HTTP endpoint standing in for the paging system; answers 500 to its first `failFirst` requests. */
async function startReceiver(o: { secret?: string; failFirst?: number } = {}): Promise<Receiver> {
  const got: Received[] = [];
  let failures = o.failFirst ?? 0;
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      const want = o.secret
        ? `sha256=${createHmac('sha256', o.secret).update(raw).digest('hex')}`
        : undefined;
      const answered = failures > 0 ? 500 : 200;
      if (failures > 0) failures--;
      got.push({
        headers: req.headers,
        body: JSON.parse(raw) as AlertNotification,
        signatureOk: want === undefined || req.headers['x-opsplane-signature'] === want,
        answered,
      });
      res.writeHead(answered, { 'content-type': 'text/plain' }).end(answered === 200 ? 'ok' : 'try later');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/hooks/opsplane`,
    got,
    close: () => new Promise((r) => server.close(() => r())),
  };
}

describe('alerts: rules, API and webhooks against a real fleet', { timeout: 240_000 }, () => {
  let etcd: EtcdHandle;
  let fleet: Fleet;
  let t: TestServer;
  let receiver: Receiver;
  let flaky: Receiver;
  const GHOST = 'ghost-agent';

  before(async () => {
    receiver = await startReceiver({ secret: WEBHOOK_SECRET });
    flaky = await startReceiver({ failFirst: 2 });
    etcd = await startEtcd();
    fleet = await startFleet({ etcd, areas: [{ name: 'area-1', controllers: 2, agents: 2 }] });
    const ghost = await fleet.addAgent({ area: 'area-1', code: GHOST });
    await ghost.kill();
    await waitFor(
      async () => {
        for (const c of fleet.controllers) {
          const r = await fleet.api<{ agents: { id: string; status: string }[] }>(c, 'GET', '/api/v1/agents');
          if (r.body.agents.some((a) => a.id === GHOST && a.status === 'offline')) return true;
        }
        return false;
      },
      { timeoutMs: 20_000, what: 'the killed ghost agent listed offline' },
    );
    t = await startTestServer('pglite', {
      etcd: etcd.endpoints,
      areas: { 'area-1': { agent_secret: fleet.secret('area-1') } },
      server: {
        agents_refresh_interval: '1s',
        alerts: {
          interval: '500ms',
          pending_for: '0s',
          timeout: '2s',
          webhooks: [
            { url: receiver.url, secret: WEBHOOK_SECRET },
            { url: flaky.url, kinds: ['deployment_failed'] },
          ],
        },
      },
    });
  });

  after(async () => {
    await t?.stop();
    await fleet?.stop();
    await etcd?.stop();
    await receiver?.close();
    await flaky?.close();
  });

  const list = async (query = ''): Promise<Alert[]> => {
    const r = await t.call<AlertListResponse>('GET', `/api/v1/alerts?pageSize=500${query}`, {
      auth: t.users.viewer.token,
    });
    assert.equal(r.status, 200, r.text);
    return r.json.items;
  };

  const waitAlert = (subject: string, status: 'firing' | 'resolved', timeoutMs = 30_000) =>
    waitFor(async () => (await list()).find((a) => a.subject === subject && a.status === status), {
      timeoutMs,
      intervalMs: 200,
      what: `${subject} ${status}`,
    });

  /** What the signing receiver got about one alert, in arrival order. */
  const events = (id: string) => receiver.got.filter((g) => g.body.alert.id === id).map((g) => g.body.event);

  it('an agent nobody saw online does not alert; a healthy fleet has no alerts', async () => {
    await waitFor(
      async () => {
        const r = await t.call<{ agents: { id: string; status: string }[] }>('GET', '/api/v1/agents', {
          auth: t.users.viewer.token,
        });
        const ids = r.json.agents.filter((a) => a.status === 'online').map((a) => a.id);
        return ids.length === 2 && r.json.agents.some((a) => a.id === GHOST && a.status === 'offline');
      },
      { timeoutMs: 30_000, intervalMs: 200, what: 'the view: two agents online, the ghost offline' },
    );
    await t.server.alerts.evaluate();
    await t.server.alerts.evaluate();
    assert.deepEqual(await list(), []);
    assert.equal(receiver.got.length, 0);
  });

  it('agent offline: fires when killed, resolves when it is back; webhooks signed, in order', async () => {
    const agent = fleet.agentsOf('area-1')[0]!;
    await agent.kill();
    const firing = await waitAlert(`agent:${agent.code}`, 'firing');
    assert.equal(firing.kind, 'agent_offline');
    assert.equal(firing.severity, 'critical');
    assert.equal(firing.area, 'area-1');
    assert.equal(firing.labels.agent_code, agent.code);
    assert.equal((await list('&status=firing&kind=agent_offline')).length, 1);
    assert.equal((await list('&status=firing&area=area-2')).length, 0);
    await waitFor(() => events(firing.id).includes('firing'), { what: 'the firing webhook' });

    await agent.start();
    const resolved = await waitAlert(`agent:${agent.code}`, 'resolved');
    assert.equal(resolved.id, firing.id);
    assert.ok(resolved.resolved_at);
    await waitFor(() => events(firing.id).length === 2, { what: 'the resolved webhook' });
    assert.deepEqual(events(firing.id), ['firing', 'resolved']);
    for (const g of receiver.got) {
      assert.ok(g.signatureOk, 'x-opsplane-signature is the HMAC-SHA256 of the body');
      assert.equal(g.headers['x-opsplane-event'], g.body.event);
    }
    const last = receiver.got.at(-1)!;
    assert.equal(last.body.alert.status, 'resolved');
    assert.equal(flaky.got.length, 0, 'the second webhook wants deployment_failed only');
    assert.ok(!(await list()).some((a) => a.subject === `agent:${GHOST}`));
  });

  it('package unhealthy: a web package whose config makes it fail its health check', async () => {
    const agent = fleet.agentsOf('area-1')[1]!;
    const web = agent.package('web');
    const restartWeb = async () => {
      const r = await t.call<{ success: number }>('POST', '/api/v1/batches', {
        auth: t.users.operator.token,
        body: { action: 'restart', agents: [agent.code], packages: ['web'] },
      });
      assert.equal(r.status, 201, r.text);
      assert.equal(r.json.success, 1, r.text);
    };
    web.writeConfig({ healthy: false, message: 'broken on purpose' });
    await restartWeb();
    const firing = await waitAlert(`package:${agent.code}/web`, 'firing');
    assert.equal(firing.kind, 'package_unhealthy');
    assert.equal(firing.labels.package, 'web');
    assert.equal(firing.labels.health_status, 'unhealthy');
    web.writeConfig({ healthy: true, message: 'fixed' });
    await restartWeb();
    await waitAlert(`package:${agent.code}/web`, 'resolved');
    await waitFor(() => events(firing.id).length === 2, { what: 'both package webhooks' });
  });

  it('controller offline: fires when killed (its registration expires), resolves when restarted', async () => {
    const c = fleet.controllersOf('area-1')[0]!;
    await c.kill();
    const firing = await waitAlert(`controller:area-1/${c.id}`, 'firing');
    assert.equal(firing.kind, 'controller_offline');
    assert.equal(firing.severity, 'critical');
    assert.equal(firing.labels.controller_id, c.id);
    await c.start();
    await waitAlert(`controller:area-1/${c.id}`, 'resolved');
    await waitFor(() => events(firing.id).length === 2, { what: 'both controller webhooks' });
    assert.deepEqual(events(firing.id), ['firing', 'resolved']);
  });

  it('deployment failed: fires once; retried delivery; ack by operators only; metrics', async () => {
    const op = t.users.operator.token;
    const dev = await t.call<{ id: string }>('POST', '/api/v1/devices', {
      auth: op,
      body: {
        name: 'unreachable-1',
        ip: '127.0.0.1',
        function_area: 'area-1',
        os: 'linux',
        login: { port: 1, username: 'root', password: 'nobody-listens' },
      },
    });
    assert.equal(dev.status, 201, dev.text);
    const dep = await t.call<Rollout>('POST', '/api/v1/deployments', {
      auth: op,
      body: { type: 'restart', devices: [dev.json.id] },
    });
    assert.equal(dep.status, 202, dep.text);
    const deploymentId = dep.json.deployments[0]!.id;
    const firing = await waitAlert(`deployment:${deploymentId}`, 'firing');
    assert.equal(firing.kind, 'deployment_failed');
    assert.equal(firing.labels.device_name, 'unreachable-1');
    assert.match(firing.message, /restart on device unreachable-1/);

    // The flaky receiver: 500, 500, then 200 — one delivery (same id and body), three attempts.
    await waitFor(() => flaky.got.some((g) => g.answered === 200), {
      timeoutMs: 20_000,
      what: 'the retried delivery',
    });
    assert.deepEqual(
      flaky.got.map((g) => [g.answered, g.headers['x-opsplane-attempt']]),
      [
        [500, '1'],
        [500, '2'],
        [200, '3'],
      ],
    );
    assert.equal(new Set(flaky.got.map((g) => g.headers['x-opsplane-delivery'])).size, 1);
    assert.ok(flaky.got.every((g) => g.body.event === 'firing' && g.body.alert.id === firing.id));

    await t.server.alerts.evaluate();
    assert.equal(
      (await list()).filter((a) => a.subject === `deployment:${deploymentId}`).length,
      1,
      'fires once',
    );

    const asViewer = await t.call('POST', `/api/v1/alerts/${firing.id}/ack`, { auth: t.users.viewer.token });
    assert.equal(asViewer.status, 403);
    const acked = await t.call<Alert>('POST', `/api/v1/alerts/${firing.id}/ack`, { auth: op });
    assert.equal(acked.status, 200, acked.text);
    assert.equal(acked.json.acknowledged_by, t.users.operator.username);
    assert.ok(acked.json.acknowledged_at);
    assert.equal(acked.json.status, 'firing', 'an ack does not resolve');
    const got = await t.call<Alert>('GET', `/api/v1/alerts/${firing.id}`, { auth: t.users.viewer.token });
    assert.equal(got.json.acknowledged_by, t.users.operator.username);
    const audit = await t.call<{ entries: { action: string; target_id: string; result: string }[] }>(
      'GET',
      '/api/v1/audit?action=alert.ack',
      { auth: op },
    );
    assert.ok(audit.json.entries.some((e) => e.target_id === firing.id && e.result === 'success'));
    assert.ok(
      audit.json.entries.some((e) => e.result === 'failure'),
      'the denied attempt too',
    );
    const missing = await t.call('GET', '/api/v1/alerts/00000000-0000-4000-8000-000000000000', { auth: op });
    assert.equal(missing.status, 404);

    const metrics = await t.call('GET', '/metrics', { auth: op });
    const value = (series: string) => Number(new RegExp(`^${series} (\\S+)$`, 'm').exec(metrics.text)?.[1]);
    assert.equal(value('opsplane_alerts_firing{kind="deployment_failed",severity="warning"}'), 1);
    assert.equal(value('opsplane_alerts_firing{kind="agent_offline",severity="critical"}'), 0);
    assert.ok(value('opsplane_alert_notifications_total{result="retried"}') >= 2);
    assert.ok(value('opsplane_alert_notifications_total{result="delivered"}') >= 7);
  });
});
