/**
 * The daily-operations API over real HTTP, on PGlite and PostgreSQL: roles per area (a user who
 * is operator in one area and viewer elsewhere; tokens scoped to areas), the audit trail's
 * before/after values (secrets redacted), silences, metrics history, label selectors on
 * deployments, and the pure pieces (selectors, the agent index with a selector, config text
 * redaction).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { waitFor } from '@opsplane/test-support';
import { matchesSelector, parseSelector, SelectorError, type AgentView, type Role } from '@opsplane/api';
import { AgentIndex } from '../src/services/agent-index.js';
import { redactConfigText } from '../src/services/batches.js';
import { changesBetween } from '../src/services/audit-trail.js';
import { effectiveRoles } from '../src/services/access.js';
import {
  DRIVERS,
  deviceBody,
  driverSkip,
  sessionFor,
  startTestServer,
  type Auth,
  type TestServer,
} from './helpers.js';

interface Change {
  field: string;
  before: unknown;
  after: unknown;
}
interface Entry {
  action: string;
  actor: string;
  ip: string | null;
  result: string;
  target_id: string | null;
  changes: Change[];
  details: Record<string, unknown>;
}

describe('label selectors', () => {
  it('parse equality, set and existence requirements; reject what is not one', () => {
    assert.deepEqual(parseSelector('env=prod, role!=db,tier in (web, api),zone notin (z9),canary,!legacy'), [
      { key: 'env', op: '=', values: ['prod'] },
      { key: 'role', op: '!=', values: ['db'] },
      { key: 'tier', op: 'in', values: ['web', 'api'] },
      { key: 'zone', op: 'notin', values: ['z9'] },
      { key: 'canary', op: 'exists', values: [] },
      { key: 'legacy', op: '!exists', values: [] },
    ]);
    assert.deepEqual(parseSelector('env==prod'), [{ key: 'env', op: '=', values: ['prod'] }]);
    assert.deepEqual(parseSelector(''), []);
    for (const bad of ['env=prod,', 'tier in ()', 'tier in (a', 'a b', '=x', 'env=pr od'])
      assert.throws(() => parseSelector(bad), SelectorError, bad);
  });

  it('match like Kubernetes: != and notin also hold without the label', () => {
    const m = (s: string, l: Record<string, string>) => matchesSelector(parseSelector(s), l);
    const web = { env: 'prod', role: 'web' };
    assert.ok(m('env=prod,role!=db', web));
    assert.ok(!m('env=prod,role!=web', web));
    assert.ok(m('role in (web,api)', web));
    assert.ok(!m('role notin (web)', web));
    assert.ok(m('zone notin (z1)', web), 'no zone label: notin holds');
    assert.ok(m('team!=x', web), 'no team label: != holds');
    assert.ok(!m('team in (x)', web), 'no team label: in does not');
    assert.ok(m('env,!canary', web));
    assert.ok(!m('canary', web));
  });

  it('select agents of the aggregated view by their labels (with the other filters)', () => {
    const agent = (code: string, area: string, labels: Record<string, string>): AgentView => ({
      id: code,
      agent_code: code,
      area,
      controller_id: 'c1',
      device_id: null,
      device_name: null,
      address: '10.0.0.1',
      hostname: code,
      status: 'online',
      health_status: 'healthy',
      service_count: 0,
      last_heartbeat: new Date().toISOString(),
      register_time: new Date().toISOString(),
      last_health_check: new Date().toISOString(),
      version: '1',
      labels,
      services: [],
    });
    const index = new AgentIndex([
      agent('a1', 'area-1', { env: 'prod', role: 'web' }),
      agent('a2', 'area-1', { env: 'prod', role: 'db' }),
      agent('a3', 'area-2', { env: 'staging', role: 'web' }),
      agent('a4', 'area-2', {}),
    ]);
    const codes = (f: Parameters<AgentIndex['select']>[0]) => index.select(f).map((a) => a.agent_code);
    assert.deepEqual(codes({ selector: 'env=prod,role!=db' }), ['a1']);
    assert.deepEqual(codes({ selector: 'role in (web)' }), ['a1', 'a3']);
    assert.deepEqual(codes({ selector: 'role in (web)', area: ['area-2'] }), ['a3']);
    assert.deepEqual(codes({ selector: '!env' }), ['a4']);
    const page = index.query({ selector: 'role notin (db)', page: 1, pageSize: 2, sort: 'id', desc: false });
    assert.equal(page.total, 3);
    assert.deepEqual(
      page.agents.map((a) => a.agent_code),
      ['a1', 'a3'],
    );
  });
});

describe('audit changes and roles, the pure parts', () => {
  it('changesBetween lists changed fields by path, redacts secrets, keeps has_* booleans', () => {
    const c = changesBetween(
      { name: 'a', login: { port: 22, has_password: false }, token: 'x', metadata: { r: '1' } },
      { name: 'a', login: { port: 2222, has_password: true }, token: 'y', metadata: { r: '2' } },
    );
    assert.deepEqual(c, [
      { field: 'login.has_password', before: false, after: true },
      { field: 'login.port', before: 22, after: 2222 },
      { field: 'metadata.r', before: '1', after: '2' },
      { field: 'token', before: '[redacted]', after: '[redacted]' },
    ]);
    assert.deepEqual(
      changesBetween(null, { name: 'n' }).map((x) => [x.field, x.before, x.after]),
      [['name', null, 'n']],
    );
  });

  it('config text redaction hides values of secret-looking keys', () => {
    const t = redactConfigText(
      'port: 8080\npassword: hunter2\n"api_key": "k-123"\ntoken=abc\nnested:\n  secret:\n',
    );
    assert.ok(!/hunter2|k-123|abc/.test(t), t);
    assert.match(t, /port: 8080/);
    assert.match(t, /password: \[redacted\]/);
  });

  it('effective roles: a token caps every role and, scoped, is viewer elsewhere', () => {
    const user: [Role, Record<string, Role>] = ['viewer', { 'area-a': 'operator', 'area-b': 'admin' }];
    assert.deepEqual(effectiveRoles(...user), {
      role: 'viewer',
      areaRoles: { 'area-a': 'operator', 'area-b': 'admin' },
    });
    assert.deepEqual(effectiveRoles(...user, { role: 'operator', areas: null }), {
      role: 'viewer',
      areaRoles: { 'area-a': 'operator', 'area-b': 'operator' },
    });
    assert.deepEqual(effectiveRoles('operator', {}, { role: 'operator', areas: ['area-c'] }), {
      role: 'viewer',
      areaRoles: { 'area-c': 'operator' },
    });
  });
});

for (const driver of DRIVERS) {
  describe(`daily operations API on ${driver}`, { timeout: 120_000, skip: driverSkip(driver) }, () => {
    let t: TestServer;
    /** viewer everywhere, operator in area-a. */
    let ana: { id: string; session: Auth };
    const admin = () => t.users.admin.session;
    const audit = async (q: string) =>
      (await t.call<{ entries: Entry[] }>('GET', `/api/v1/audit?${q}`, { auth: admin() })).json.entries;

    before(async () => {
      t = await startTestServer(driver, {
        server: { deploy: { poll_interval: '1h' }, metrics_history: { interval: '0s' } },
      });
      const u = await t.call<{ id: string; area_roles: Record<string, string> }>('POST', '/api/v1/users', {
        auth: admin(),
        body: {
          username: 'ana',
          password: 'ana-password-123',
          role: 'viewer',
          area_roles: { 'area-a': 'operator' },
        },
      });
      assert.equal(u.status, 201, JSON.stringify(u.json));
      assert.deepEqual(u.json.area_roles, { 'area-a': 'operator' });
      ana = { id: u.json.id, session: await sessionFor(t.server, u.json.id) };
    });
    after(async () => t?.stop());

    it('a user who is operator in one area changes devices there and nowhere else', async () => {
      const me = await t.call<{ role: string; area_roles: Record<string, string> }>(
        'GET',
        '/api/v1/auth/me',
        {
          auth: ana.session,
        },
      );
      assert.equal(me.json.role, 'viewer');
      assert.deepEqual(me.json.area_roles, { 'area-a': 'operator' });

      const inA = await t.call<{ id: string }>('POST', '/api/v1/devices', {
        auth: ana.session,
        body: deviceBody(1, { name: 'ana-a', function_area: 'area-a' }),
      });
      assert.equal(inA.status, 201, JSON.stringify(inA.json));
      const inB = await t.call<{ error: { code: string; message: string } }>('POST', '/api/v1/devices', {
        auth: ana.session,
        body: deviceBody(2, { name: 'ana-b', function_area: 'area-b' }),
      });
      assert.equal(inB.status, 403);
      assert.match(inB.json.error.message, /operator role in area area-b/);
      const move = await t.call('PATCH', `/api/v1/devices/${inA.json.id}`, {
        auth: ana.session,
        body: { function_area: 'area-b' },
      });
      assert.equal(move.status, 403, 'moving a device to an area where she is a viewer');
      const denied = await audit('action=device.create&result=failure&actor=ana');
      assert.equal(denied.length, 1, 'the refusal is audited');

      // An import rejects the rows of other areas, row by row.
      const rep = await t.call<{ created: number; rejected: { row: number; reason: string }[] }>(
        'POST',
        '/api/v1/devices/import',
        {
          auth: ana.session,
          contentType: 'text/csv',
          body: 'name,ip,function_area,os,username\nimp-a,10.9.0.1,area-a,linux,root\nimp-b,10.9.0.2,area-b,linux,root\n',
        },
      );
      assert.equal(rep.status, 200, JSON.stringify(rep.json));
      assert.equal(rep.json.created, 1);
      assert.deepEqual(
        rep.json.rejected.map((r) => [r.row, /not an operator in area area-b/.test(r.reason)]),
        [[2, true]],
      );
      // Not an operator anywhere else: users, bundles, global tokens stay closed.
      assert.equal((await t.call('GET', '/api/v1/users', { auth: ana.session })).status, 403);
    });

    it('batches and deployments are judged by the areas of their agents and devices', async () => {
      const dev = async (name: string, area: string, metadata: Record<string, string> = {}) =>
        (
          await t.call<{ id: string; agent_code: string }>('POST', '/api/v1/devices', {
            auth: admin(),
            body: deviceBody(Math.floor(Math.random() * 60_000) + 1000, {
              name,
              function_area: area,
              metadata,
            }),
          })
        ).json;
      const a = await dev('bat-a', 'area-a', { role: 'web' });
      const b = await dev('bat-b', 'area-b', { role: 'web' });
      const inA = await t.call<{ results: { reason: string }[] }>('POST', '/api/v1/batches', {
        auth: ana.session,
        body: { action: 'restart', agents: [a.agent_code], packages: ['web'] },
      });
      assert.equal(inA.status, 201, JSON.stringify(inA.json));
      const both = await t.call<{ error: { message: string } }>('POST', '/api/v1/batches', {
        auth: ana.session,
        body: { action: 'restart', agents: [a.agent_code, b.agent_code], packages: ['web'] },
      });
      assert.equal(both.status, 403);
      assert.match(both.json.error.message, /area-b/);

      // Deployments by label selector over device metadata: only her area's web devices.
      const sel = await t.call<{ deployments: { device_name: string }[] }>('POST', '/api/v1/deployments', {
        auth: ana.session,
        body: { type: 'restart', area: 'area-a', selector: 'role=web' },
      });
      assert.equal(sel.status, 202, JSON.stringify(sel.json));
      assert.deepEqual(
        sel.json.deployments.map((d) => d.device_name),
        ['bat-a'],
      );
      const all = await t.call('POST', '/api/v1/deployments', {
        auth: ana.session,
        body: { type: 'restart', selector: 'role in (web)' },
      });
      assert.equal(all.status, 403, 'the selector also matches area-b');
      const none = await t.call<{ error: { code: string } }>('POST', '/api/v1/deployments', {
        auth: admin(),
        body: { type: 'restart', selector: 'role=nothing-has-this' },
      });
      assert.equal(none.status, 404);
      const bad = await t.call<{ error: { code: string } }>('POST', '/api/v1/deployments', {
        auth: admin(),
        body: { type: 'restart', selector: 'role in (' },
      });
      assert.equal(bad.status, 400);
      const agents = await t.call<{ error: { message: string } }>('GET', '/api/v1/agents?selector=env%3D', {
        auth: ana.session,
      });
      assert.equal(agents.status, 200, 'env= (empty value) is a selector');
      const badAgents = await t.call<{ error: { message: string } }>('GET', '/api/v1/agents?selector=a%20b', {
        auth: ana.session,
      });
      assert.equal(badAgents.status, 400);
    });

    it('tokens: scoped to areas, at most the creator’s role there; last used is recorded', async () => {
      const scoped = await t.call<{ token: string; areas: string[]; role: string }>(
        'POST',
        '/api/v1/tokens',
        {
          auth: ana.session,
          body: { name: 'ana-ci', role: 'operator', areas: ['area-a'], expires_in: '24h' },
        },
      );
      assert.equal(scoped.status, 201, JSON.stringify(scoped.json));
      assert.deepEqual(scoped.json.areas, ['area-a']);
      const tooMuch = await t.call('POST', '/api/v1/tokens', {
        auth: ana.session,
        body: { name: 'ana-wide', role: 'operator' },
      });
      assert.equal(tooMuch.status, 403, 'not operator everywhere');

      // An admin's token scoped to area-a acts as viewer elsewhere, and for global things.
      const adminScoped = await t.call<{ token: string }>('POST', '/api/v1/tokens', {
        auth: admin(),
        body: { name: 'admin-area-a', role: 'admin', areas: ['area-a'] },
      });
      const auth = { token: adminScoped.json.token };
      assert.equal(
        (
          await t.call('POST', '/api/v1/devices', {
            auth,
            body: deviceBody(70_001, { name: 'tok-a', function_area: 'area-a' }),
          })
        ).status,
        201,
      );
      assert.equal(
        (
          await t.call('POST', '/api/v1/devices', {
            auth,
            body: deviceBody(70_002, { name: 'tok-b', function_area: 'area-b' }),
          })
        ).status,
        403,
      );
      assert.equal((await t.call('GET', '/api/v1/users', { auth })).status, 403, 'users are not an area’s');
      const me = await t.call<{ token_areas: string[]; area_roles: Record<string, string> }>(
        'GET',
        '/api/v1/auth/me',
        {
          auth,
        },
      );
      assert.deepEqual(me.json.token_areas, ['area-a']);
      assert.deepEqual(me.json.area_roles, { 'area-a': 'admin' });
      const area = await t.call('PUT', '/api/v1/areas/area-a/credentials', {
        auth,
        body: { controller_token: 'area-a-token-0123456789' },
      });
      assert.equal(area.status, 200, 'an admin of area-a sets its credentials');
      await waitFor(
        async () =>
          (
            await t.call<{ tokens: { name: string; last_used_at: string | null }[] }>(
              'GET',
              '/api/v1/tokens?all=true',
              {
                auth: admin(),
              },
            )
          ).json.tokens.find((x) => x.name === 'admin-area-a')?.last_used_at,
        { timeoutMs: 5000, what: 'last_used_at of the token' },
      );
      assert.equal(
        (
          await t.call('PUT', '/api/v1/areas/area-b/credentials', {
            auth,
            body: { controller_token: 'x-0123456789' },
          })
        ).status,
        403,
      );
    });

    it('the audit log has every change before and after, secrets redacted, who and from where', async () => {
      const d = await t.call<{ id: string }>('POST', '/api/v1/devices', {
        auth: admin(),
        body: deviceBody(80_001, {
          name: 'aud-1',
          function_area: 'area-a',
          login: { username: 'root', password: 'first-secret-pw' },
        }),
      });
      const upd = await t.call('PATCH', `/api/v1/devices/${d.json.id}`, {
        auth: ana.session,
        body: {
          ip: '10.77.0.9',
          login: { port: 2222, password: 'second-secret-pw' },
          metadata: { role: 'edge' },
        },
      });
      assert.equal(upd.status, 200);
      const [e] = await audit(`action=device.update&target_id=${d.json.id}`);
      assert.ok(e);
      assert.equal(e.actor, 'ana');
      assert.equal(e.ip, '127.0.0.1');
      const by = new Map(e.changes.map((c) => [c.field, c]));
      assert.deepEqual(by.get('ip'), { field: 'ip', before: deviceBody(80_001).ip, after: '10.77.0.9' });
      assert.deepEqual(by.get('login.port'), { field: 'login.port', before: 22, after: 2222 });
      assert.deepEqual(by.get('metadata.role'), { field: 'metadata.role', before: null, after: 'edge' });
      assert.deepEqual(by.get('login.password'), {
        field: 'login.password',
        before: '[redacted]',
        after: '[redacted]',
      });
      const text = JSON.stringify(await audit('q=aud'));
      assert.ok(
        !text.includes('first-secret-pw') && !text.includes('second-secret-pw'),
        'no secret in the log',
      );

      const roles = await t.call('PATCH', `/api/v1/users/${ana.id}`, {
        auth: admin(),
        body: { area_roles: { 'area-b': 'operator', 'area-a': null }, password: 'ana-new-password-1' },
      });
      assert.equal(roles.status, 200);
      const [ue] = await audit(`action=user.update&target_id=${ana.id}`);
      assert.deepEqual(
        ue?.changes.map((c) => [c.field, c.before, c.after]),
        [
          ['area_roles.area-a', 'operator', null],
          ['area_roles.area-b', null, 'operator'],
          ['password', '[redacted]', '[redacted]'],
        ],
      );
      ana.session = await sessionFor(t.server, ana.id); // the password reset ended her sessions
      const del = await t.call('DELETE', `/api/v1/devices/${d.json.id}`, { auth: admin() });
      assert.equal(del.status, 204);
      const [de] = await audit(`action=device.delete&target_id=${d.json.id}`);
      assert.ok(de?.changes.some((c) => c.field === 'name' && c.before === 'aud-1' && c.after === null));
      // Free text and target filters.
      assert.ok((await audit('q=aud-1')).length >= 3);
    });

    it('silences: created by rule/area/agent, shown on matching alerts, ended early', async () => {
      const fire = (subject: string, area: string) =>
        t.server.store.alerts.fire({
          kind: 'agent_offline',
          severity: 'critical',
          subject,
          area,
          title: subject,
          message: 'test',
          labels: {},
        });
      const a1 = (await fire('agent:sil-a1', 'area-a'))!;
      const b1 = (await fire('agent:sil-b1', 'area-b'))!;
      const s = await t.call<{ id: string; active: boolean; expires_at: string }>(
        'POST',
        '/api/v1/silences',
        {
          auth: admin(),
          body: { kind: 'agent_offline', area: 'area-a', duration: '2h', comment: 'maintenance' },
        },
      );
      assert.equal(s.status, 201, JSON.stringify(s.json));
      assert.ok(s.json.active);
      const list = await t.call<{ items: { id: string; silenced_by: string | null }[] }>(
        'GET',
        '/api/v1/alerts?status=firing&pageSize=500',
        { auth: ana.session },
      );
      const silenced = new Map(list.json.items.map((x) => [x.id, x.silenced_by]));
      assert.equal(silenced.get(a1.id), s.json.id);
      assert.equal(silenced.get(b1.id), null);
      const only = await t.call<{ items: { id: string }[] }>('GET', '/api/v1/alerts?silenced=true', {
        auth: admin(),
      });
      assert.deepEqual(
        only.json.items.map((x) => x.id),
        [a1.id],
      );
      const anaDenied = await t.call('POST', '/api/v1/silences', {
        auth: ana.session,
        body: { kind: 'agent_offline', duration: '1h' },
      });
      assert.equal(anaDenied.status, 403, 'a silence of every area needs the role everywhere');
      const anaB = await t.call('POST', '/api/v1/silences', {
        auth: ana.session,
        body: { area: 'area-b', duration: '1h' },
      });
      assert.equal(anaB.status, 201, 'operator in area-b now');
      const ended = await t.call<{ active: boolean }>('DELETE', `/api/v1/silences/${s.json.id}`, {
        auth: admin(),
      });
      assert.equal(ended.status, 200);
      assert.equal(ended.json.active, false);
      const active = await t.call<{ silences: { id: string }[] }>('GET', '/api/v1/silences', {
        auth: admin(),
      });
      assert.ok(!active.json.silences.some((x) => x.id === s.json.id));
      const all = await t.call<{ silences: { id: string }[] }>('GET', '/api/v1/silences?all=true', {
        auth: admin(),
      });
      assert.ok(all.json.silences.some((x) => x.id === s.json.id));
      assert.ok((await audit('action=silence.expire')).length >= 1);
    });

    it('metrics history: oldest first, per package, bounded by the window; purged past retention', async () => {
      const now = Date.now();
      const at = (minsAgo: number) => new Date(now - minsAgo * 60_000);
      await t.server.store.metrics.insert(
        [3, 2, 1].map((m) => ({
          agentCode: 'agt-hist',
          at: at(m),
          cpuPercent: 10 * m,
          memoryUsedBytes: 1e9,
          memoryTotalBytes: 4e9,
          load1: 0.5,
          rxBytes: 100,
          txBytes: 200,
        })),
        [2, 1].flatMap((m) =>
          ['web', 'collector'].map((pkg) => ({
            agentCode: 'agt-hist',
            package: pkg,
            at: at(m),
            cpuPercent: m,
            rssBytes: 5e6,
            restarts: m === 1 ? 1 : 0,
            running: true,
          })),
        ),
      );
      // The same instant again (another server): written once.
      await t.server.store.metrics.insert(
        [
          {
            agentCode: 'agt-hist',
            at: at(1),
            cpuPercent: 99,
            memoryUsedBytes: 0,
            memoryTotalBytes: 0,
            load1: 0,
            rxBytes: 0,
            txBytes: 0,
          },
        ],
        [],
      );
      const h = await t.call<{
        system: { cpu_percent: number; memory_used_percent: number }[];
        packages: { name: string; points: { restarts: number }[] }[];
      }>('GET', '/api/v1/agents/agt-hist/metrics/history?window=1h', { auth: ana.session });
      assert.equal(h.status, 200);
      assert.deepEqual(
        h.json.system.map((p) => p.cpu_percent),
        [30, 20, 10],
      );
      assert.equal(h.json.system[0]?.memory_used_percent, 25);
      assert.deepEqual(
        h.json.packages.map((p) => [p.name, p.points.map((x) => x.restarts)]),
        [
          ['collector', [0, 1]],
          ['web', [0, 1]],
        ],
      );
      const one = await t.call<{ packages: { name: string }[] }>(
        'GET',
        '/api/v1/agents/agt-hist/metrics/history?window=1h&package=web',
        { auth: ana.session },
      );
      assert.deepEqual(
        one.json.packages.map((p) => p.name),
        ['web'],
      );
      assert.equal(
        (await t.call('GET', '/api/v1/agents/agt-hist/metrics/history?window=48h', { auth: admin() })).status,
        400,
      );
      assert.equal(await t.server.store.metrics.purge(at(2.5)), 1, 'the 3-minute-old sample');
    });
  });
}
