/**
 * Operations that tell the truth, with real processes: a real etcd, `opsplane controller`
 * processes (two per area, so agents can fail over), `opsplane agent` processes supervising the
 * sample `web` package — which appends every start to its starts.log and takes 1.5 s to stop —
 * and the platform server. Controllers are SIGKILLed before dispatch, during it and after their
 * agents acted, SIGSTOPped for longer than the call timeout, and the server is SIGKILLed
 * mid-batch. Each case checks, per agent, that the reported result is what the agent did (its
 * starts counted in the file), that the reason is the true one, that exactly one process runs
 * per package, and that the batch finished within its deadline plus a small margin.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import {
  pidAlive,
  startEtcd,
  startFleet,
  startServerProcess,
  tempDir,
  waitFor,
  type EtcdHandle,
  type Fleet,
  type FleetAgent,
  type FleetController,
  type ServerProcess,
} from '@opsplane/test-support';
import type { AgentListResponse, BatchJob, BatchResult } from '@opsplane/api';
import { startTestServer, type Auth, type TestServer } from './helpers.js';

const TOKEN = 'truth-controller-token-0123456789';
/** One controller call: the SIGSTOP case must outlast it. */
const CALL_TIMEOUT = '3s';
const STOP_DELAY_MS = 1500;

/** Every start of an agent's web package, as the package itself wrote them: pids. */
function starts(agent: FleetAgent): number[] {
  try {
    return readFileSync(`${agent.package('web').dir}/starts.log`, 'utf8')
      .trim()
      .split('\n')
      .filter(Boolean)
      .map((l) => Number(l.split(' ')[1]));
  } catch {
    return [];
  }
}

/** Web processes of the agent that are alive (there must be exactly one). */
const alive = (agent: FleetAgent) => starts(agent).filter((pid) => pidAlive(pid));

/** A package writes its start a moment after the agent reports it: wait for those lines. */
async function settled(fleet: Fleet, job: BatchJob): Promise<void> {
  const pids = (job.results ?? []).flatMap((r) =>
    r.new_pid !== undefined ? [[r.agent_code, r.new_pid] as const] : [],
  );
  await waitFor(() => pids.every(([code, pid]) => starts(fleet.agent(code)).includes(pid)), {
    timeoutMs: 5000,
    what: 'every reported new process has written its start',
  }).catch(() => undefined);
}

async function assertTruth(
  fleet: Fleet,
  job: BatchJob,
  before: Map<string, number>,
  expectedStarts: (code: string) => number,
): Promise<void> {
  await settled(fleet, job);
  const results = job.results ?? [];
  const byAgent = new Map(results.map((r) => [r.agent_code, r]));
  for (const agent of fleet.agents) {
    const r = byAgent.get(agent.code);
    assert.ok(r, `a result for ${agent.code}`);
    const did = starts(agent).length - (before.get(agent.code) ?? 0);
    assert.equal(did, expectedStarts(agent.code), `${agent.code} started ${did} times: ${JSON.stringify(r)}`);
    if (did > 0) {
      assert.equal(r.success, true, `${agent.code} restarted, and its result says so: ${JSON.stringify(r)}`);
      assert.equal(r.reason, 'done', JSON.stringify(r));
      assert.ok(
        r.new_pid !== undefined && starts(agent).includes(r.new_pid),
        `new pid ${r.new_pid} is a real start`,
      );
    } else {
      assert.equal(
        r.success,
        false,
        `${agent.code} did not restart, and its result says so: ${JSON.stringify(r)}`,
      );
      assert.notEqual(r.reason, 'done');
    }
    assert.equal(
      alive(agent).length,
      1,
      `${agent.code}: exactly one web process (${alive(agent).join(', ')})`,
    );
  }
}

describe('operations that tell the truth under controller faults (real fleet)', { timeout: 240_000 }, () => {
  let etcd: EtcdHandle;
  let t: TestServer;
  let fleet: Fleet;
  let op: Auth;

  before(async () => {
    etcd = await startEtcd();
    t = await startTestServer('pglite', {
      etcd: etcd.endpoints,
      areas: { 'area-1': { controller_token: TOKEN }, 'area-2': { controller_token: TOKEN } },
      server: { agents_refresh_interval: '1s', batch_wait: '0s', batch_failover_wait: '20s' },
      env: { OPSPLANE_CONTROLLER_API_TIMEOUT: CALL_TIMEOUT },
    });
    op = t.users.operator.token;
    fleet = await startFleet({
      etcd,
      apiToken: TOKEN,
      areas: [
        { name: 'area-1', controllers: 2, agents: 4 },
        { name: 'area-2', controllers: 2, agents: 2 },
      ],
      packages: [{ kind: 'web', config: { stop_delay: STOP_DELAY_MS } }],
    });
    await waitFor(
      async () => {
        const r = await t.call<AgentListResponse>('GET', '/api/v1/agents?status=online&refresh=true', {
          auth: op,
        });
        return r.json.total === fleet.agents.length;
      },
      { timeoutMs: 30_000, intervalMs: 300, what: 'every agent online in the aggregated view' },
    );
  });

  after(async () => {
    for (const c of fleet?.controllers ?? []) if (c.running) process.kill(c.process.pid, 'SIGCONT');
    await fleet?.stop();
    await t?.stop();
    await etcd?.stop();
  });

  const startCounts = () => new Map(fleet.agents.map((a) => [a.code, starts(a).length]));

  async function startBatch(timeout = '40s'): Promise<{ id: string; startedAt: number }> {
    const startedAt = Date.now();
    const res = await t.call<BatchJob>('POST', '/api/v1/batches?wait=0s', {
      auth: op,
      body: { action: 'restart', agents: fleet.agents.map((a) => a.code), packages: ['web'], timeout },
    });
    assert.equal(res.status, 202, res.text);
    assert.equal(res.json.operation_id, res.json.id);
    return { id: res.json.id, startedAt };
  }

  async function finished(id: string, withinMs: number): Promise<BatchJob> {
    const job = await waitFor(
      async () => {
        const r = await t.call<BatchJob>('GET', `/api/v1/batches/${id}`, { auth: op });
        return r.json.status !== 'running' ? r.json : undefined;
      },
      { timeoutMs: withinMs, intervalMs: 200, what: `batch ${id} finished` },
    );
    assert.equal(job.status, 'done');
    assert.equal(job.total, fleet.agents.length, 'one result per (agent, package)');
    return job;
  }

  /** The controller holding most agents of area-1 now. */
  async function busiest(): Promise<{ ctrl: FleetController; agents: FleetAgent[] }> {
    const held = new Map<FleetController, FleetAgent[]>();
    for (const a of fleet.agentsOf('area-1')) {
      const c = await fleet.holderOf(a.code);
      if (c) held.set(c, [...(held.get(c) ?? []), a]);
    }
    const [ctrl, agents] = [...held].sort((x, y) => y[1].length - x[1].length)[0]!;
    return { ctrl, agents };
  }

  async function backOnline(): Promise<void> {
    for (const c of fleet.controllers) if (!c.running) await c.start();
    for (const a of fleet.agents) await fleet.waitOnline(a, 20_000);
    await waitFor(
      async () => {
        const r = await t.call<AgentListResponse>('GET', '/api/v1/agents?status=online&refresh=true', {
          auth: op,
        });
        return r.json.total === fleet.agents.length && r.json.agents.every((a) => a.status === 'online');
      },
      { timeoutMs: 20_000, intervalMs: 300, what: 'the view sees every agent online again' },
    );
  }

  it('kill -9 of a controller during dispatch: every agent restarted once, and every result says done', async () => {
    const { ctrl, agents } = await busiest();
    assert.ok(agents.length > 0);
    const before = startCounts();
    const { id, startedAt } = await startBatch();
    // Its agents have the operation and are stopping their package (1.5 s): kill their controller now.
    await waitFor(() => agents.every((a) => starts(a).length === before.get(a.code)), { timeoutMs: 1000 });
    await new Promise((r) => setTimeout(r, 400));
    await ctrl.kill();
    const job = await finished(id, 40_000 + 5_000);
    await assertTruth(fleet, job, before, () => 1);
    // The agents of the killed controller answered through the one they failed over to.
    const moved = (job.results ?? []).filter((r) => agents.some((a) => a.code === r.agent_code));
    assert.ok(
      moved.every((r) => (r.attempts ?? 1) >= 2),
      JSON.stringify(moved),
    );
    assert.ok(Date.now() - startedAt < 40_000);
    await backOnline();
  });

  it('kill -9 of a controller before dispatch: its agents are found where they failed over to, and act once', async () => {
    const { ctrl } = await busiest();
    const before = startCounts();
    await ctrl.kill();
    const { id } = await startBatch();
    const job = await finished(id, 45_000);
    await assertTruth(fleet, job, before, () => 1);
    await backOnline();
  });

  it('kill -9 of a controller right after its agents acted: the recorded results are read back, nothing runs twice', async () => {
    const { ctrl, agents } = await busiest();
    const before = startCounts();
    const { id } = await startBatch();
    // As soon as one of its agents has started the package again, its controller dies.
    await waitFor(() => agents.some((a) => starts(a).length > (before.get(a.code) ?? 0)), {
      timeoutMs: 15_000,
      intervalMs: 20,
      what: 'an agent of the doomed controller restarted its package',
    });
    await ctrl.kill();
    const job = await finished(id, 45_000);
    await assertTruth(fleet, job, before, () => 1);
    await backOnline();
  });

  it('SIGSTOP of a controller past the call timeout: the healthy controller’s agents are done at once; two concurrent batches restart every package exactly twice', async () => {
    const { ctrl, agents } = await busiest();
    const stalled = new Set(agents.map((a) => a.code));
    const before = startCounts();
    process.kill(ctrl.process.pid, 'SIGSTOP');
    try {
      const first = await startBatch('30s');
      const second = await startBatch('30s');
      // The agents of every other controller get their results without waiting for the stalled one.
      const early = await waitFor(
        async () => {
          const r = await t.call<BatchJob>('GET', `/api/v1/batches/${first.id}`, { auth: op });
          const others = (r.json.results ?? []).filter((x) => !stalled.has(x.agent_code));
          return others.length === fleet.agents.length - stalled.size ? others : undefined;
        },
        { timeoutMs: 15_000, intervalMs: 100, what: 'results of the agents of healthy controllers' },
      );
      assert.ok(
        early.every((r: BatchResult) => r.reason === 'done'),
        JSON.stringify(early),
      );
      const jobs = [await finished(first.id, 35_000), await finished(second.id, 35_000)];
      for (const job of jobs) await settled(fleet, job);
      assert.ok(Date.now() - first.startedAt < 30_000 + 5_000, 'within the deadline');
      for (const job of jobs)
        for (const r of job.results ?? []) assert.equal(r.reason, 'done', JSON.stringify(r));
      for (const agent of fleet.agents) {
        // Two restarts, one per batch, chained: one's new process is the other's old one, and
        // the survivor is the last. (A process the second restart stops while node is still
        // booting dies before it can log its start, so the file may show one line fewer.)
        const [x, y] = jobs.map((j) => j.results?.find((r) => r.agent_code === agent.code));
        assert.ok(
          x?.new_pid && y?.new_pid && x.new_pid !== y.new_pid,
          `${agent.code}: ${JSON.stringify([x, y])}`,
        );
        const [firstDone, lastDone] = x.old_pid === y.new_pid ? [y, x] : [x, y];
        assert.equal(
          lastDone.old_pid,
          firstDone.new_pid,
          `${agent.code}: restarts chain: ${JSON.stringify([x, y])}`,
        );
        assert.deepEqual(alive(agent), [lastDone.new_pid]);
        const logged = starts(agent).slice(before.get(agent.code) ?? 0);
        assert.ok(logged.length >= 1 && logged.length <= 2, `${agent.code}: ${logged.length} starts logged`);
        assert.ok(
          logged.every((pid) => pid === x.new_pid || pid === y.new_pid),
          `${agent.code}: only the reported starts`,
        );
      }
    } finally {
      process.kill(ctrl.process.pid, 'SIGCONT');
    }
    await backOnline();
  });

  it('asking again under the same Idempotency-Key never acts twice (the controller route)', async () => {
    const agent = fleet.agents[0]!;
    const holder = await fleet.holderOf(agent.code);
    assert.ok(holder);
    const before = starts(agent).length;
    const send = () =>
      fetch(`${holder.url}/api/v1/agents/batch/restart`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${TOKEN}`,
          'content-type': 'application/json',
          'idempotency-key': `key-${before}`,
        },
        body: JSON.stringify({ agents: [agent.code], packages: ['web'] }),
      }).then((r) => r.json() as Promise<{ results: BatchResult[] }>);
    const a = await send();
    const b = await send();
    assert.equal(a.results[0]?.reason, 'done');
    assert.equal(b.results[0]?.replayed, true, JSON.stringify(b));
    assert.equal(b.results[0]?.new_pid, a.results[0]?.new_pid);
    await waitFor(() => starts(agent).includes(a.results[0]!.new_pid!), { timeoutMs: 5000 });
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(starts(agent).length - before, 1, 'restarted once for two requests');
  });
});

describe(
  'operations that tell the truth when the server dies mid-batch (real fleet, server process)',
  { timeout: 180_000 },
  () => {
    let etcd: EtcdHandle;
    let fleet: Fleet;
    let server: ServerProcess;
    let dir: { path: string; cleanup: () => Promise<void> };

    before(async () => {
      etcd = await startEtcd();
      fleet = await startFleet({
        etcd,
        apiToken: TOKEN,
        areas: [{ name: 'area-1', controllers: 2, agents: 4 }],
        packages: [{ kind: 'web', config: { stop_delay: STOP_DELAY_MS } }],
      });
      dir = await tempDir('opsplane-truth-server-');
      server = await startServerProcess({
        dir: dir.path,
        etcdEndpoints: etcd.endpoints,
        areas: { 'area-1': { controller_token: TOKEN } },
        server: { agents_refresh_interval: '1s', batch_wait: '0s', batch_reconcile_wait: '30s' },
        adminPassword: 'truth-admin-password',
      });
    });

    after(async () => {
      await server?.stop().catch(() => undefined);
      await fleet?.stop();
      await etcd?.stop();
      await dir?.cleanup();
    });

    it('kill -9 of the server mid-batch: the next start asks the agents and records what each did', async () => {
      let cookie = await server.login('admin', 'truth-admin-password');
      await waitFor(
        async () => {
          const r = await server.call<AgentListResponse>(cookie, 'GET', '/agents?status=online&refresh=true');
          return r.json.total === fleet.agents.length;
        },
        { timeoutMs: 30_000, intervalMs: 300, what: 'every agent online' },
      );
      const before = new Map(fleet.agents.map((a) => [a.code, starts(a).length]));
      const res = await server.call<BatchJob>(cookie, 'POST', '/batches?wait=0s', {
        action: 'restart',
        agents: fleet.agents.map((a) => a.code),
        packages: ['web'],
        timeout: '40s',
      });
      assert.equal(res.status, 202);
      const id = res.json.id;
      // The agents are stopping their package (1.5 s) when the server dies.
      await new Promise((r) => setTimeout(r, 500));
      await server.kill();
      await server.restart();
      cookie = await server.login('admin', 'truth-admin-password');
      const job = await waitFor(
        async () => {
          const r = await server.call<BatchJob>(cookie, 'GET', `/batches/${id}`);
          return r.json.status !== 'running' ? r.json : undefined;
        },
        { timeoutMs: 60_000, intervalMs: 300, what: 'the cut-off batch reconciled' },
      );
      assert.equal(job.status, 'done', JSON.stringify(job));
      await assertTruth(fleet, job, before, (code) =>
        starts(fleet.agent(code)).length > (before.get(code) ?? 0) ? 1 : 0,
      );
      // The agents had the operation before the server died: every one of them restarted once.
      for (const a of fleet.agents) assert.equal(starts(a).length - (before.get(a.code) ?? 0), 1, a.code);
    });
  },
);
