/**
 * The platform half of the server against a real fleet: a real etcd, real `opsplane controller`
 * processes (area-1 with two controllers, area-2 with one, all requiring an API token) and real
 * `opsplane agent` processes with real packages, the agents' codes issued by the server's device
 * import. Checks that the aggregated view equals the union of what every controller lists, the
 * by-code join and the passthroughs, the per-area controller token, controller history, and a
 * cross-area batch restart with one area's controller SIGKILLed first: every (agent, package)
 * has exactly one result, the dead area's say why, and the job is persisted.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startEtcd, startFleet, waitFor, type EtcdHandle, type Fleet } from '@opsplane/test-support';
import type {
  AgentDetail,
  AgentListResponse,
  Area,
  BatchJob,
  ControllerHistoryResponse,
  ControllerListResponse,
} from '@opsplane/api';
import { startTestServer, type Auth, type TestServer } from './helpers.js';

const TOKEN = 'fleet-controller-token-0123456789';

interface ControllerAgent {
  id: string;
  status: string;
  last_heartbeat: string;
}

describe(
  'platform: aggregated agents, by-code, batches across areas (real fleet)',
  { timeout: 90_000 },
  () => {
    let etcd: EtcdHandle;
    let t: TestServer;
    let fleet: Fleet;
    let op: Auth;
    let viewer: Auth;
    const codes: Record<string, string[]> = {};
    const deviceNames = new Map<string, string>();
    const ORPHAN = 'orphan-agent-1';

    before(async () => {
      etcd = await startEtcd();
      t = await startTestServer('pglite', {
        etcd: etcd.endpoints,
        areas: { 'area-1': { controller_token: TOKEN }, 'area-2': { controller_token: TOKEN } },
        server: { agents_refresh_interval: '2s' },
      });
      op = t.users.operator.token;
      viewer = t.users.viewer.token;
      // Devices first: the platform issues the agent codes the agents are then installed with.
      const csv =
        'name,ip,function_area,os,username,password\n' +
        [
          'web-1a,10.1.0.1,area-1',
          'web-1b,10.1.0.2,area-1',
          'web-2a,10.2.0.1,area-2',
          'web-2b,10.2.0.2,area-2',
        ]
          .map((r) => `${r},linux,root,pw`)
          .join('\n');
      const imp = await t.call<{ created: number }>('POST', '/api/v1/devices/import', {
        auth: op,
        body: csv,
        contentType: 'text/csv',
      });
      assert.equal(imp.json.created, 4, imp.text);
      const list = await t.call<{ devices: { name: string; function_area: string; agent_code: string }[] }>(
        'GET',
        '/api/v1/devices?sort=name',
        { auth: viewer },
      );
      for (const d of list.json.devices) {
        (codes[d.function_area] ??= []).push(d.agent_code);
        deviceNames.set(d.agent_code, d.name);
      }
      fleet = await startFleet({
        etcd,
        apiToken: TOKEN,
        areas: [
          { name: 'area-1', controllers: 2, agents: 2 },
          { name: 'area-2', controllers: 1, agents: 2 },
        ],
        agentCode: (area, i) => codes[area]?.[i] ?? `${area}-extra-${i}`,
      });
      // An agent the inventory does not know (installed by hand): found through the view.
      await fleet.addAgent({ area: 'area-1', code: ORPHAN });
    });

    after(async () => {
      await fleet?.stop();
      await t?.stop();
      await etcd?.stop();
    });

    const allCodes = () => [...(codes['area-1'] ?? []), ...(codes['area-2'] ?? []), ORPHAN].sort();

    async function view(query = ''): Promise<AgentListResponse> {
      const r = await t.call<AgentListResponse>('GET', `/api/v1/agents?pageSize=500${query}`, { auth: op });
      assert.equal(r.status, 200, r.text);
      return r.json;
    }

    it('the aggregated list equals the union of every controller’s list, joined with devices', async () => {
      await waitFor(
        async () => {
          const v = await view('&refresh=true&status=online');
          return v.total === 5 && v.errors.length === 0;
        },
        { timeoutMs: 30_000, intervalMs: 300, what: 'all five agents online in the aggregated view' },
      );
      const v = await view('&refresh=true');
      // Straight from the controllers, merged the documented way: newest heartbeat wins.
      const union = new Map<string, ControllerAgent & { area: string; controller: string }>();
      for (const c of fleet.controllers) {
        const r = await fleet.api<{ agents: ControllerAgent[]; total: number }>(
          c,
          'GET',
          '/api/v1/agents?pageSize=1000',
        );
        assert.equal(r.status, 200);
        for (const a of r.body.agents) {
          const prev = union.get(a.id);
          if (
            !prev ||
            Date.parse(a.last_heartbeat) > Date.parse(prev.last_heartbeat) ||
            (a.status === 'online' && prev.status !== 'online')
          )
            union.set(a.id, { ...a, area: c.area, controller: c.id });
        }
      }
      assert.deepEqual([...union.keys()].sort(), allCodes());
      assert.deepEqual(v.agents.map((a) => a.id).sort(), [...union.keys()].sort());
      assert.equal(v.total, union.size);
      for (const a of v.agents) {
        const u = union.get(a.id);
        assert.equal(a.status, u?.status, `status of ${a.id}`);
        assert.equal(a.area, u?.area, `area of ${a.id}`);
        assert.equal(a.agent_code, a.id);
        const holder = await fleet.holderOf(a.id);
        assert.equal(a.controller_id, holder?.id, `holder of ${a.id}`);
        assert.equal(a.device_name, deviceNames.get(a.id) ?? null, `device of ${a.id}`);
        assert.equal(a.device_id === null, a.id === ORPHAN);
        assert.deepEqual(a.services.map((s) => s.name).sort(), ['collector', 'web']);
      }
      assert.equal(v.stale, false);
      assert.ok(v.refreshed_at);

      // Filter, search, sort, paginate.
      const a1 = await view('&area=area-1&status=online&sort=-id');
      assert.deepEqual(
        a1.agents.map((a) => a.id),
        [...(codes['area-1'] ?? []), ORPHAN].sort().reverse(),
      );
      const q = await view('&q=WEB-2');
      assert.deepEqual(q.agents.map((a) => a.id).sort(), [...(codes['area-2'] ?? [])].sort());
      const p = await t.call<AgentListResponse>('GET', '/api/v1/agents?sort=id&page=2&pageSize=2', {
        auth: viewer,
      });
      assert.equal(p.json.total, 5);
      assert.deepEqual(
        p.json.agents.map((a) => a.id),
        allCodes().slice(2, 4),
      );
      const bad = await t.call<{ error: { code: string; message: string } }>(
        'GET',
        '/api/v1/agents?page_size=5',
        {
          auth: viewer,
        },
      );
      assert.equal(bad.status, 400);
      assert.match(bad.json.error.message, /pageSize/);
      const forced = await t.call('GET', '/api/v1/agents?refresh=true', { auth: viewer });
      assert.equal(forced.status, 403, 'viewers may read the view but not force a refresh');

      // Live controllers and their history.
      const cl = await t.call<ControllerListResponse>('GET', '/api/v1/controllers', { auth: viewer });
      assert.equal(cl.json.total, 3);
      assert.equal(cl.json.discovery.synced, true);
      for (const c of cl.json.controllers) {
        assert.equal(c.status, 'online');
        assert.equal(c.last_error, null);
        assert.ok(c.listed_agents !== null);
      }
      const hist = await t.call<ControllerHistoryResponse>('GET', '/api/v1/controllers/history', {
        auth: viewer,
      });
      assert.deepEqual(
        hist.json.history
          .filter((h) => h.went_at === null)
          .map((h) => `${h.area}/${h.controller_id}`)
          .sort(),
        fleet.controllers.map((c) => `${c.area}/${c.id}`).sort(),
      );
    });

    it('by-code joins device and live agent; passthroughs reach the holding controller', async () => {
      const code = codes['area-2']?.[0] as string;
      const r = await t.call<AgentDetail>('GET', `/api/v1/agents/by-code/${code}`, { auth: viewer });
      assert.equal(r.status, 200, r.text);
      assert.equal(r.json.id, code);
      assert.equal(r.json.area, 'area-2');
      assert.equal(r.json.status, 'online');
      assert.equal(r.json.device?.name, deviceNames.get(code));
      assert.equal(r.json.device_id, r.json.device?.id);
      assert.equal(r.json.controller_id, (await fleet.holderOf(code))?.id);
      assert.ok(!/"password"/.test(r.text));

      const orphan = await t.call<AgentDetail>('GET', `/api/v1/agents/by-code/${ORPHAN}`, { auth: viewer });
      assert.equal(orphan.status, 200, orphan.text);
      assert.equal(orphan.json.device, null);
      assert.equal(orphan.json.area, 'area-1');

      const unknown = await t.call<{ error: { code: string } }>('GET', '/api/v1/agents/by-code/agt-nobody', {
        auth: viewer,
      });
      assert.equal(unknown.status, 404);
      assert.equal(unknown.json.error.code, 'agent_not_found');

      const pk = await t.call<{ agent_id: string; packages: { name: string; is_running: boolean }[] }>(
        'GET',
        `/api/v1/agents/${code}/packages`,
        { auth: viewer },
      );
      assert.equal(pk.status, 200, pk.text);
      assert.deepEqual(pk.json.packages.map((x) => x.name).sort(), ['collector', 'web']);
      const h = await t.call<{ overall_status: string }>('GET', `/api/v1/agents/${code}/health`, {
        auth: viewer,
      });
      assert.equal(h.status, 200, h.text);
      assert.ok(['healthy', 'degraded', 'unhealthy', 'unknown'].includes(h.json.overall_status));
      assert.equal(
        (await t.call('GET', `/api/v1/agents/${code}/metrics/system`, { auth: viewer })).status,
        200,
      );
      const sm = await t.call<{ services: unknown[] }>(
        'GET',
        `/api/v1/agents/${code}/metrics/services?package=web`,
        {
          auth: viewer,
        },
      );
      assert.equal(sm.status, 200, sm.text);
    });

    it('uses each area’s controller token; a wrong one is reported, never passed off as the caller’s 401', async () => {
      const admin = t.users.admin.token;
      const areas = await t.call<{ areas: Area[] }>('GET', '/api/v1/areas', { auth: viewer });
      const a2 = areas.json.areas.find((a) => a.name === 'area-2');
      assert.deepEqual(
        {
          t: a2?.has_controller_token,
          s: a2?.has_agent_secret,
          c: a2?.controllers_online,
          d: a2?.devices,
          n: a2?.agents,
        },
        { t: true, s: false, c: 1, d: 2, n: 2 },
      );
      assert.ok(!areas.text.includes(TOKEN));
      const put = await t.call<Area>('PUT', '/api/v1/areas/area-2/credentials', {
        auth: admin,
        body: { controller_token: 'not-the-token' },
      });
      assert.equal(put.status, 200, put.text);
      assert.ok(!put.text.includes('not-the-token'));
      try {
        const code = codes['area-2']?.[0] as string;
        const r = await t.call<{ error: { code: string; message: string } }>(
          'GET',
          `/api/v1/agents/by-code/${code}`,
          {
            auth: viewer,
          },
        );
        assert.equal(r.status, 502, r.text);
        assert.match(r.json.error.message, /credentials/);
        const v = await view('&refresh=true');
        assert.ok(
          v.errors.some((e) => e.area === 'area-2' && e.controller_id !== ''),
          `area-2 reported: ${JSON.stringify(v.errors)}`,
        );
        assert.ok(v.agents.every((a) => a.area !== 'area-2'));
      } finally {
        const back = await t.call('PUT', '/api/v1/areas/area-2/credentials', {
          auth: admin,
          body: { controller_token: TOKEN },
        });
        assert.equal(back.status, 200);
      }
      const v = await view('&refresh=true');
      assert.equal(v.total, 5);
      assert.deepEqual(v.errors, []);
    });

    it('batch restart across two areas with area-2’s controller SIGKILLed: one result per agent, persisted', async () => {
      const area1 = codes['area-1'] ?? [];
      const area2 = codes['area-2'] ?? [];
      const pidOf = async (code: string) => {
        const r = await t.call<{ packages: { name: string; pid?: number }[] }>(
          'GET',
          `/api/v1/agents/${code}/packages`,
          {
            auth: viewer,
          },
        );
        return r.json.packages.find((p) => p.name === 'web')?.pid;
      };
      const before = new Map(await Promise.all(area1.map(async (c) => [c, await pidOf(c)] as const)));

      const dead = fleet.controllersOf('area-2')[0];
      assert.ok(dead);
      await dead.kill();
      const asked = [...area1, ...area2, 'agt-nowhere'];
      const res = await t.call<BatchJob>('POST', '/api/v1/batches', {
        auth: op,
        body: { action: 'restart', agents: asked, packages: ['web'] },
      });
      assert.equal(res.status, 201, res.text);
      const job = res.json;
      assert.equal(job.status, 'done');
      const results = job.results ?? [];
      assert.deepEqual(
        results.map((r) => r.agent_code).sort(),
        [...asked].sort(),
        'exactly one result per agent',
      );
      assert.ok(results.every((r) => r.package === 'web'));
      assert.equal(job.total, asked.length);
      for (const r of results) {
        if (area1.includes(r.agent_code)) {
          assert.equal(r.success, true, JSON.stringify(r));
          assert.equal(r.area, 'area-1');
        } else if (area2.includes(r.agent_code)) {
          assert.equal(r.success, false);
          assert.equal(r.area, 'area-2');
          assert.match(r.error ?? '', /area-2/, `the reason names the area: ${r.error}`);
        } else {
          assert.equal(r.success, false);
          assert.match(r.error ?? '', /^agent_not_found/);
        }
      }
      assert.equal(job.success, area1.length);
      assert.equal(job.failed, area2.length + 1);

      // Persisted and readable later.
      const got = await t.call<BatchJob>('GET', `/api/v1/batches/${job.id}`, { auth: viewer });
      assert.equal(got.status, 200);
      assert.deepEqual(got.json.results, job.results);
      assert.equal(got.json.requested_by, t.users.operator.username);
      const listed = await t.call<{ batches: BatchJob[]; total: number }>('GET', '/api/v1/batches', {
        auth: viewer,
      });
      assert.ok(listed.json.batches.some((b) => b.id === job.id && b.results === undefined));
      const audit = await t.call<{ entries: { target_id: string }[] }>(
        'GET',
        '/api/v1/audit?action=batch.*',
        {
          auth: viewer,
        },
      );
      assert.ok(audit.json.entries.some((e) => e.target_id === job.id));

      // The restarts happened.
      for (const c of area1) {
        await waitFor(
          async () => {
            const pid = await pidOf(c);
            return pid !== undefined && pid !== before.get(c);
          },
          { timeoutMs: 15_000, what: `web of ${c} restarted` },
        );
      }

      // The dead controller leaves discovery (lease expiry) and its history row closes; the view
      // reports area-2 instead of silently shrinking.
      await waitFor(
        async () => {
          const h = await t.call<ControllerHistoryResponse>(
            'GET',
            `/api/v1/controllers/history?area=area-2`,
            {
              auth: viewer,
            },
          );
          return h.json.history.find((x) => x.controller_id === dead.id)?.went_at;
        },
        { timeoutMs: 20_000, what: 'history records the controller went' },
      );
      const v = await view('&refresh=true');
      assert.ok(
        v.errors.some((e) => e.area === 'area-2'),
        JSON.stringify(v.errors),
      );

      // A batch by filter over the view: area-1's online agents only.
      const byFilter = await t.call<BatchJob>('POST', '/api/v1/batches', {
        auth: op,
        body: { action: 'restart', filter: { area: 'area-1', status: 'online' }, packages: ['collector'] },
      });
      assert.equal(byFilter.status, 201, byFilter.text);
      assert.deepEqual(byFilter.json.results?.map((r) => r.agent_code).sort(), [...area1, ORPHAN].sort());
      assert.ok(
        byFilter.json.results?.every((r) => r.success),
        byFilter.text,
      );

      const forbidden = await t.call('POST', '/api/v1/batches', {
        auth: viewer,
        body: { action: 'restart', agents: area1 },
      });
      assert.equal(forbidden.status, 403);
    });
  },
);
