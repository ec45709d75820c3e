/**
 * End to end, as real processes: etcd, `opsplane controller` ×3 (two in area-1, one in area-2),
 * `opsplane agent` ×5 (three in area-1, two in area-2), each agent supervising the sample
 * packages of `opsplane demo` (`web`: HTTP service whose /health follows its config file
 * web.yaml; `collector`: tails a log and its config file collector.yaml, crashes when told to). Everything is driven through the controllers' public
 * HTTP API (and curl), and checked against the processes themselves: pids, ports, files on
 * disk, etcd keys.
 *
 * The tests share one fleet and run in order; the destructive ones (agent killed, controller
 * killed) come where they do not disturb the others, the controller kill last.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type {
  AgentsResponse,
  BatchOperationResult,
  ControllerStatusResponse,
  ErrorBody,
  PackageStatus,
} from '@opsplane/models';
import { agentToken } from '@opsplane/models';
import {
  curl,
  pidAlive,
  startFleet,
  waitFor,
  type Fleet,
  type FleetAgent,
  type FleetController,
} from '@opsplane/test-support';

const API_TOKEN = 'e2e-fleet-api-token-0123456789';
const AUTH = ['-H', `Authorization: Bearer ${API_TOKEN}`];
const T = { timeout: 45_000 };

let fleet: Fleet;

/** `agent/package:success` for every result, sorted: the exact set a batch answered. */
function pairs(r: BatchOperationResult): string[] {
  return r.results.map((x) => `${x.agent_code}/${x.package}:${x.success}`).sort();
}

function expectPairs(r: BatchOperationResult, expected: string[]): void {
  assert.deepEqual(pairs(r), [...expected].sort(), JSON.stringify(r.results, null, 1));
  const ok = expected.filter((e) => e.endsWith(':true')).length;
  assert.equal(r.total, expected.length);
  assert.equal(r.success, ok);
  assert.equal(r.failed, expected.length - ok);
}

async function batch(
  ctrl: FleetController,
  action: 'start' | 'stop' | 'restart',
  agents: string[],
  packages: string[],
): Promise<BatchOperationResult> {
  const r = await fleet.api<BatchOperationResult>(ctrl, 'POST', `/api/v1/agents/batch/${action}`, {
    agents,
    packages,
  });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.body;
}

/** The agent's packages, asked through a controller of its area (forwarded if another holds it). */
async function packagesOf(agent: FleetAgent): Promise<PackageStatus[]> {
  const ctrl = fleet.controllersOf(agent.area).find((c) => c.running);
  assert.ok(ctrl, `no controller of ${agent.area} running`);
  const r = await fleet.api<{ agent_id: string; packages: PackageStatus[] }>(
    ctrl,
    'GET',
    `/api/v1/agents/${agent.code}/packages`,
  );
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.equal(r.body.agent_id, agent.code);
  return r.body.packages;
}

async function pkg(agent: FleetAgent, name: string): Promise<PackageStatus> {
  const p = (await packagesOf(agent)).find((x) => x.name === name);
  assert.ok(p, `agent ${agent.code} reports no package ${name}`);
  return p;
}

async function runningPid(agent: FleetAgent, name: string): Promise<number> {
  const p = await pkg(agent, name);
  assert.equal(p.is_running, true, `${agent.code}/${name} not running: ${JSON.stringify(p)}`);
  assert.ok(p.pid, `${agent.code}/${name} has no pid`);
  return p.pid;
}

/** What the web package itself says over its port (pid, config, health). */
async function webSays(agent: FleetAgent): Promise<{
  status: number;
  body: { pid: number; healthy: boolean; config: Record<string, unknown> };
}> {
  const url = agent.package('web').healthUrl;
  assert.ok(url);
  const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
  return { status: res.status, body: (await res.json()) as never };
}

async function portRefuses(agent: FleetAgent): Promise<boolean> {
  try {
    await webSays(agent);
    return false;
  } catch {
    return true;
  }
}

/** Runs assertions; a failure carries `more()` (e.g. package logs) in its message. */
async function explain(fn: () => Promise<void>, more: () => Promise<string>): Promise<void> {
  try {
    await fn();
  } catch (e) {
    throw new Error(`${e instanceof Error ? e.message : String(e)}\n${await more()}`, { cause: e });
  }
}

/** Controller base URL each agent reports being connected to. */
async function connections(): Promise<Map<string, string | undefined>> {
  const out = new Map<string, string | undefined>();
  for (const a of fleet.agents) if (a.running) out.set(a.code, await a.connectedController());
  return out;
}

describe('opsplane fleet end to end (real etcd, controllers, agents, packages)', { timeout: 120_000 }, () => {
  before(async () => {
    const t0 = Date.now();
    fleet = await startFleet({
      areas: [
        { name: 'area-1', controllers: 2, agents: 3 },
        { name: 'area-2', controllers: 1, agents: 2 },
      ],
      apiToken: API_TOKEN,
      timing: { heartbeatInterval: '1s', offlineAfter: '3s', leaseTtl: '3s', refreshInterval: '1s' },
    });
    console.log(`# fleet up in ${Date.now() - t0} ms (root ${fleet.root})`);
  });

  after(async () => {
    await fleet?.stop();
  });

  it(
    'lists every agent online through the controller holding it; curl works with the guide URLs',
    T,
    async () => {
      const held = await connections();
      const [a, b] = fleet.controllersOf('area-1');
      const [c] = fleet.controllersOf('area-2');
      assert.ok(a && b && c);
      // Each agent tries its controllers in its configured (rotated) order, so they spread.
      assert.deepEqual(
        fleet.agents.map((x) => [x.code, held.get(x.code)]),
        [
          ['area-1-agent-1', a.url],
          ['area-1-agent-2', b.url],
          ['area-1-agent-3', a.url],
          ['area-2-agent-1', c.url],
          ['area-2-agent-2', c.url],
        ],
      );
      // Each controller answers for its whole area (as a Go controller does), saying which of
      // the area's controllers holds each agent.
      const byUrl = new Map(fleet.controllers.map((x) => [x.url, x.id]));
      for (const ctrl of fleet.controllers) {
        const r = await fleet.api<AgentsResponse>(ctrl, 'GET', '/api/v1/agents?page=1&pageSize=20');
        assert.equal(r.status, 200);
        assert.equal(r.body.page, 1);
        assert.equal(r.body.pageSize, 20);
        const expected = fleet.agentsOf(ctrl.area).map((x) => x.code);
        assert.deepEqual(r.body.agents.map((x) => x.id).sort(), expected.sort(), `listed by ${ctrl.id}`);
        assert.equal(r.body.total, expected.length);
        for (const ag of r.body.agents) {
          assert.equal(ag.status, 'online');
          assert.equal(ag.controller_id, byUrl.get(held.get(ag.id) ?? ''), `holder of ${ag.id}`);
          assert.equal(ag.area_id, ctrl.area);
          assert.equal(ag.agent_code, ag.id);
          assert.equal(ag.hostname, `host-${ag.id}`);
          assert.deepEqual(ag.services.map((s) => s.name).sort(), ['collector', 'web']);
          assert.ok(
            ag.services.every((s) => s.is_running && s.pid),
            JSON.stringify(ag.services),
          );
        }
      }

      // The guide's troubleshooting commands, with real curl (this controller wants the API token).
      const status = await curl([...AUTH, `${c.url}/api/v1/status`]);
      assert.equal(status.status, 200, status.body);
      const st = JSON.parse(status.body) as ControllerStatusResponse & { online_agent_count: number };
      assert.equal(st.id, c.id);
      assert.equal(st.area, 'area-2');
      assert.equal(st.agent_count, 2);
      assert.equal(st.online_agent_count, 2);
      const list = await curl([...AUTH, `${c.url}/api/v1/agents?page=1&pageSize=20`]);
      assert.equal(list.status, 200, list.body);
      const listed = JSON.parse(list.body) as AgentsResponse;
      assert.deepEqual(listed.agents.map((x) => x.id).sort(), ['area-2-agent-1', 'area-2-agent-2']);
      assert.equal(listed.pageSize, 20);

      const wrong = await curl([...AUTH, `${c.url}/api/v1/agents?page=1&page_size=20`]);
      assert.equal(wrong.status, 400, wrong.body);
      const err = JSON.parse(wrong.body) as ErrorBody;
      assert.equal(err.error.code, 'unknown_parameter');
      assert.match(err.error.message, /'page_size'/);
      assert.match(err.error.message, /pageSize/);

      const noToken = await curl([`${c.url}/api/v1/status`]);
      assert.equal(noToken.status, 401, noToken.body);
    },
  );

  it(
    'a batch sent to one area-1 controller reaches agents held by the other one (forwarding)',
    T,
    async () => {
      const [a, b] = fleet.controllersOf('area-1');
      assert.ok(a && b);
      const onB = fleet.agent('area-1-agent-2'); // held by b (see the first test)
      const onA = fleet.agent('area-1-agent-1');
      assert.equal(await onB.connectedController(), b.url);
      // a knows its peer once its discovery has seen b in etcd: a forwarded read proves it.
      await waitFor(
        async () => (await fleet.api(a, 'GET', `/api/v1/agents/${onB.code}/packages`)).status === 200,
        {
          what: `${a.id} forwarding reads to ${b.id}`,
        },
      );
      const before = { a: await runningPid(onA, 'collector'), b: await runningPid(onB, 'collector') };
      const r = await batch(a, 'restart', [onB.code, onA.code], ['collector']);
      expectPairs(r, [`${onB.code}/collector:true`, `${onA.code}/collector:true`]);
      for (const x of r.results) assert.match(x.message ?? '', /^restarted \(old pid \d+\)/);
      const afterB = await runningPid(onB, 'collector');
      const afterA = await runningPid(onA, 'collector');
      assert.notEqual(afterB, before.b);
      assert.notEqual(afterA, before.a);
      assert.equal(pidAlive(before.b), false);
      // The forwarded single-agent read came from b.
      const direct = await fleet.api(a, 'GET', `/api/v1/agents/${onB.code}`);
      assert.equal(direct.status, 200);
      assert.equal(direct.headers.get('x-opsplane-served-by'), b.id);
    },
  );

  it(
    'batch start/stop/restart, with and without a package list: exact results, real processes',
    T,
    async () => {
      const ctrl = fleet.controllersOf('area-1')[0];
      assert.ok(ctrl);
      const agents = fleet.agentsOf('area-1');
      const codes = agents.map((x) => x.code);
      const all = (ok: boolean, names = ['web', 'collector']) =>
        codes.flatMap((c) => names.map((n) => `${c}/${n}:${ok}`));
      const pids = async (name: string) => Promise.all(agents.map((x) => runningPid(x, name)));

      const web0 = await pids('web');
      const col0 = await pids('collector');

      // stop, one package named
      expectPairs(await batch(ctrl, 'stop', codes, ['web']), all(true, ['web']));
      for (const [i, x] of agents.entries()) {
        assert.equal(pidAlive(web0[i] as number), false, `${x.code} web pid ${web0[i]} still alive`);
        assert.equal(await portRefuses(x), true, `${x.code} web port still answers`);
        const w = await pkg(x, 'web');
        assert.equal(w.is_running, false);
        assert.equal(w.status, 'stopped');
        assert.equal(w.pid, undefined);
      }
      assert.deepEqual(await pids('collector'), col0, 'collector untouched by stop [web]');

      // start, empty list = every package of each agent
      const started = await batch(ctrl, 'start', codes, []);
      expectPairs(started, all(true));
      for (const x of started.results.filter((y) => y.package === 'collector'))
        assert.match(x.message ?? '', /already running/);
      const web1 = await pids('web');
      for (const [i, x] of agents.entries()) {
        assert.notEqual(web1[i], web0[i]);
        const said = await waitFor(async () => {
          const w = await webSays(x);
          return w.status === 200 ? w : undefined;
        });
        assert.equal(said.body.pid, web1[i], `${x.code}: port served by the pid the agent reports`);
      }

      // restart, empty list: every package gets a new process
      expectPairs(await batch(ctrl, 'restart', codes, []), all(true));
      const web2 = await pids('web');
      const col2 = await pids('collector');
      for (const i of agents.keys()) {
        assert.notEqual(web2[i], web1[i]);
        assert.notEqual(col2[i], col0[i]);
        assert.equal(pidAlive(web1[i] as number), false);
        assert.equal(pidAlive(col0[i] as number), false);
      }

      // stop, empty list: nothing left running
      expectPairs(await batch(ctrl, 'stop', codes, []), all(true));
      for (const [i, x] of agents.entries()) {
        for (const p of await packagesOf(x)) assert.equal(p.is_running, false, `${x.code}/${p.name}`);
        assert.equal(pidAlive(web2[i] as number), false);
        assert.equal(pidAlive(col2[i] as number), false);
        assert.equal(await portRefuses(x), true);
      }

      // start, both named
      expectPairs(await batch(ctrl, 'start', codes, ['web', 'collector']), all(true));
      const web3 = await pids('web');
      const col3 = await pids('collector');
      // restart, one named: only that one changes
      expectPairs(await batch(ctrl, 'restart', codes, ['web']), all(true, ['web']));
      const web4 = await pids('web');
      for (const i of agents.keys()) assert.notEqual(web4[i], web3[i]);
      assert.deepEqual(await pids('collector'), col3);
      for (const x of agents) await waitFor(async () => (await webSays(x)).status === 200);
    },
  );

  it('an offline agent and an unknown agent each get a failed result saying why', T, async () => {
    const [ctrl] = fleet.controllersOf('area-2');
    assert.ok(ctrl);
    const [on, off] = fleet.agentsOf('area-2');
    assert.ok(on && off);
    const offWeb = await runningPid(off, 'web');
    await off.kill(); // SIGKILL: the agent is gone, its packages keep running (as on a real host)
    await waitFor(
      async () => {
        const r = await fleet.api<AgentsResponse>(ctrl, 'GET', `/api/v1/agents?id=${off.code}`);
        return r.body.agents[0]?.status === 'offline';
      },
      { what: `${off.code} listed offline` },
    );

    const r = await batch(ctrl, 'restart', [on.code, off.code, 'ghost-agent-9'], []);
    expectPairs(r, [
      `${on.code}/web:true`,
      `${on.code}/collector:true`,
      `${off.code}/web:false`,
      `${off.code}/collector:false`,
      'ghost-agent-9/:false',
    ]);
    for (const x of r.results.filter((y) => y.agent_code === off.code))
      assert.match(x.error ?? '', /^agent_offline: .*offline/);
    const ghost = r.results.find((y) => y.agent_code === 'ghost-agent-9');
    assert.match(ghost?.error ?? '', /^agent_not_found: .*ghost-agent-9/);

    const named = await batch(ctrl, 'stop', [off.code, 'ghost-agent-9'], ['web']);
    expectPairs(named, [`${off.code}/web:false`, 'ghost-agent-9/web:false']);
    assert.match(named.results.find((y) => y.agent_code === off.code)?.error ?? '', /^agent_offline:/);
    assert.match(
      named.results.find((y) => y.agent_code === 'ghost-agent-9')?.error ?? '',
      /^agent_not_found:/,
    );
    assert.equal(pidAlive(offWeb), true, 'nothing reached the offline agent’s packages');

    // Back on line, the agent adopts the packages it left running.
    await off.start();
    assert.equal(await runningPid(off, 'web'), offWeb);
  });

  it(
    'batch config: written on disk and restarted; an unhealthy config is rolled back; ../x refused',
    T,
    async () => {
      const ctrl = fleet.controllersOf('area-1')[1];
      assert.ok(ctrl);
      const agents = fleet.agentsOf('area-1');
      const codes = agents.map((x) => x.code);
      const before = await Promise.all(agents.map((x) => runningPid(x, 'web')));
      const webLogs = async () =>
        (
          await Promise.all(
            agents.map(
              async (x) => `--- ${x.code} web.log ---\n${(await x.package('web').log()).slice(-1500)}`,
            ),
          )
        ).join('\n');

      await explain(async () => {
        const good = 'healthy: true\nmessage: v2\n';
        const r = await fleet.api<BatchOperationResult>(ctrl, 'POST', '/api/v1/agents/batch/configs', {
          agents: codes,
          package: 'web',
          configs: [{ file_name: 'web.yaml', content: good }],
          config_file: 'web.yaml',
        });
        assert.equal(r.status, 200, JSON.stringify(r.body));
        expectPairs(
          r.body,
          codes.map((c) => `${c}/web:true`),
        );
        for (const x of r.body.results) assert.match(x.message ?? '', /restarted; healthy/);
        const applied = await Promise.all(agents.map((x) => runningPid(x, 'web')));
        for (const [i, x] of agents.entries()) {
          assert.equal(await x.package('web').readConfig(), good, `${x.code}: file on disk`);
          assert.notEqual(applied[i], before[i], `${x.code}: web restarted`);
          const said = await webSays(x);
          assert.equal(said.status, 200);
          assert.equal(said.body.pid, applied[i]);
          assert.equal(said.body.config.message, 'v2', `${x.code}: the service runs with the new config`);
          // The previous version is kept.
          assert.ok(
            (await readdir(join(x.package('web').configDir, '.history'))).some((f) =>
              f.startsWith('web.yaml.'),
            ),
          );
        }

        const bad = 'healthy: false\nmessage: v3-broken\n';
        const rb = await fleet.api<BatchOperationResult>(ctrl, 'POST', '/api/v1/agents/batch/configs', {
          agents: codes,
          package: 'web',
          configs: [{ file_name: 'web.yaml', content: bad }],
        });
        assert.equal(rb.status, 200, JSON.stringify(rb.body));
        expectPairs(
          rb.body,
          codes.map((c) => `${c}/web:false`),
        );
        for (const x of rb.body.results) {
          assert.match(x.error ?? '', /^rolled_back: health check failed after config update/);
          assert.match(x.message ?? '', /previous config restored; package healthy again/);
        }
        for (const [i, x] of agents.entries()) {
          assert.equal(await x.package('web').readConfig(), good, `${x.code}: old content back on disk`);
          const w = await pkg(x, 'web');
          assert.equal(w.is_running, true);
          assert.notEqual(w.pid, applied[i], 'restarted with the old config');
          const said = await webSays(x);
          assert.equal(said.status, 200);
          assert.equal(said.body.config.message, 'v2');
        }
      }, webLogs);

      const evil = await fleet.api<ErrorBody>(ctrl, 'POST', '/api/v1/agents/batch/configs', {
        agents: codes,
        package: 'web',
        configs: [{ file_name: '../x', content: 'pwned' }],
      });
      assert.equal(evil.status, 400);
      assert.equal(evil.body.error.code, 'validation_failed');
      assert.match(evil.body.error.message, /file_name/);
      for (const x of agents) {
        assert.equal(existsSync(join(x.package('web').dir, 'x')), false);
        assert.equal(existsSync(join(x.package('web').configDir, 'x')), false);
      }
    },
  );

  it(
    'kill -9 of a package: restarted per policy; a package crashing fast 5 times ends failed',
    T,
    async () => {
      const x = fleet.agent('area-1-agent-2');
      const w0 = await pkg(x, 'web');
      assert.ok(w0.pid);
      process.kill(w0.pid, 'SIGKILL');
      const w1 = await waitFor(
        async () => {
          const w = await pkg(x, 'web');
          return w.is_running && w.status === 'running' && w.pid !== w0.pid ? w : undefined;
        },
        { what: 'web restarted after kill -9' },
      );
      assert.equal(w1.restarts, (w0.restarts ?? 0) + 1);
      assert.match(w1.last_error ?? '', /SIGKILL/);
      assert.equal(pidAlive(w0.pid), false);
      const said = await waitFor(async () => {
        const s = await webSays(x);
        return s.status === 200 ? s : undefined;
      });
      assert.equal(said.body.pid, w1.pid);

      // The collector's config makes it exit 3 at once; an explicit restart starts the crash loop.
      const y = fleet.agent('area-1-agent-3');
      const collector = y.package('collector');
      const goodConfig = await collector.readConfig();
      await collector.writeConfig({ exit_code: 3 });
      const ctrl = fleet.controllersOf('area-1')[0];
      assert.ok(ctrl);
      expectPairs(await batch(ctrl, 'restart', [y.code], ['collector']), [`${y.code}/collector:true`]);
      const failed = await waitFor(
        async () => {
          const c = await pkg(y, 'collector');
          return c.status === 'failed' ? c : undefined;
        },
        { timeoutMs: 15_000, what: 'collector failed' },
      );
      assert.equal(failed.is_running, false);
      assert.equal(failed.pid, undefined);
      assert.equal(failed.health_status, 'unhealthy');
      assert.match(failed.last_error ?? '', /exited with code 3 \(5 crashes in a row\)/);
      // It stays failed (no more restarts) until an explicit start.
      const restarts = failed.restarts;
      await new Promise((r) => setTimeout(r, 800));
      const still = await pkg(y, 'collector');
      assert.equal(still.status, 'failed');
      assert.equal(still.restarts, restarts);

      await collector.writeConfig(goodConfig);
      expectPairs(await batch(ctrl, 'start', [y.code], ['collector']), [`${y.code}/collector:true`]);
      const back = await pkg(y, 'collector');
      assert.equal(back.status, 'running');
      assert.equal(back.last_error, undefined);
    },
  );

  it('an agent with a wrong token is refused by every controller and listed nowhere', T, async () => {
    const intruder = await fleet.addAgent({
      area: 'area-1',
      code: 'intruder-1',
      token: agentToken('not-the-area-secret-0000', 'area-1', 'intruder-1'),
      packages: [],
      waitOnline: false,
      // A refused agent retries at about reconnect.max; keep that short here.
      agentConfig: { reconnect: { initial: '100ms', max: '500ms' } },
    });
    const urls = fleet.controllersOf('area-1').map((c) => c.url);
    assert.deepEqual([...intruder.controllerUrls].sort(), [...urls].sort());
    // It tries both controllers of its area (round robin); both answer 401.
    await waitFor(
      async () => {
        const m = await intruder.metricsText();
        return urls.every((u) =>
          new RegExp(
            `opsplane_agent_connect_attempts_total\\{controller="${u}",result="refused"\\} [1-9]`,
          ).test(m),
        );
      },
      { timeoutMs: 15_000, what: 'refused by both area-1 controllers' },
    );
    assert.equal((await intruder.healthz()).connected, false);
    assert.doesNotMatch(await intruder.metricsText(), /result="connected"/);
    for (const ctrl of fleet.controllers) {
      const list = await fleet.api<AgentsResponse>(ctrl, 'GET', '/api/v1/agents?page=1&pageSize=1000');
      assert.equal(list.status, 200);
      assert.ok(!list.body.agents.some((a) => a.id === 'intruder-1'), `${ctrl.id} lists the intruder`);
      const one = await fleet.api<ErrorBody>(ctrl, 'GET', '/api/v1/agents/intruder-1');
      assert.equal(one.status, 404, `${ctrl.id}: ${JSON.stringify(one.body)}`);
    }
    await intruder.kill();
  });

  it(
    'kill -9 of an area-1 controller: agents fail over within 5 s, its etcd key vanishes within TTL + 1 s',
    T,
    async () => {
      const [victim, survivor] = fleet.controllersOf('area-1');
      assert.ok(victim && survivor);
      const held = fleet.agentsOf('area-1').filter((x) => x.running);
      const conn = await connections();
      const onVictim = held.filter((x) => conn.get(x.code) === victim.url);
      assert.ok(onVictim.length >= 1, 'the victim holds agents');
      const reg = JSON.parse(await fleet.etcd.etcdctl(['get', victim.etcdKey, '--print-value-only'])) as {
        id: string;
        address: string;
        area: string;
      };
      assert.deepEqual([reg.id, reg.address, reg.area], [victim.id, victim.address, 'area-1']);

      const t0 = Date.now();
      await victim.kill();
      const [failoverMs, keyGoneMs] = await Promise.all([
        (async () => {
          await waitFor(
            async () => {
              const r = await fleet.api<AgentsResponse>(
                survivor,
                'GET',
                '/api/v1/agents?status=online&pageSize=100',
              );
              const ids = new Set(r.body.agents.map((a) => a.id));
              return onVictim.every((x) => ids.has(x.code));
            },
            { timeoutMs: 5000, intervalMs: 50, what: 'agents of the killed controller online on its peer' },
          );
          return Date.now() - t0;
        })(),
        (async () => {
          await waitFor(
            async () =>
              (await fleet.etcd.etcdctl(['get', victim.etcdKey, '--print-value-only'])).trim() === '',
            { timeoutMs: 4000, intervalMs: 100, what: `etcd key ${victim.etcdKey} gone` },
          );
          return Date.now() - t0;
        })(),
      ]);
      console.log(`# failover ${failoverMs} ms, etcd key gone ${keyGoneMs} ms after kill -9`);
      assert.ok(failoverMs < 5000);
      assert.ok(keyGoneMs <= 4000);
      for (const x of onVictim) assert.equal(await x.connectedController(), survivor.url);
      const r = await fleet.api<AgentsResponse>(survivor, 'GET', '/api/v1/agents?page=1&pageSize=20');
      for (const x of held) {
        const listed = r.body.agents.find((a) => a.id === x.code);
        assert.equal(listed?.status, 'online', x.code);
        assert.equal(listed?.controller_id, survivor.id);
      }
      // And they are still operable through the survivor.
      expectPairs(
        await batch(
          survivor,
          'restart',
          onVictim.map((x) => x.code),
          ['collector'],
        ),
        onVictim.map((x) => `${x.code}/collector:true`),
      );
    },
  );
});
