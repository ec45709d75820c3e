/**
 * The agent under kill -9, with real processes (a real controller and agent from the fleet
 * launcher, the sample `web` package writing every start to starts.log):
 *
 * - killed right after it spawned a package, 24 times at staggered moments: the restarted agent
 *   adopts the process it left behind (found by the spawn id it wrote before spawning) and never
 *   starts a second one — exactly one process per package every time;
 * - killed while an operation runs: the journal says `interrupted` when asked again by the same
 *   id, and the operation is not run a second time.
 */
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import type { BatchOperationResult, OperationQueryResult } from '@opsplane/models';
import { pidAlive, startFleet, waitFor, type Fleet, type FleetAgent } from '@opsplane/test-support';

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

const alive = (agent: FleetAgent) => starts(agent).filter((pid) => pidAlive(pid));

/** Pids of processes whose command line runs this agent's web package (straight from /proc). */
function webProcesses(agent: FleetAgent): number[] {
  const needle = `${agent.package('web').dir}/web.mjs`;
  const out: number[] = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      if (readFileSync(`/proc/${e}/cmdline`, 'latin1').includes(needle)) out.push(Number(e));
    } catch {
      /* gone */
    }
  }
  return out;
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('agent kill -9: no duplicate package processes, no operation twice', { timeout: 240_000 }, () => {
  let fleet: Fleet;
  let agent: FleetAgent;

  before(async () => {
    fleet = await startFleet({
      areas: [{ name: 'area-1', controllers: 1, agents: 1 }],
      packages: [{ kind: 'web' }],
    });
    agent = fleet.agents[0]!;
    await waitFor(() => alive(agent).length === 1, { timeoutMs: 15_000, what: 'web running' });
  });

  after(async () => {
    await fleet?.stop();
  });

  const restart = (operationId?: string) =>
    fleet.api<BatchOperationResult>(fleet.controllers[0]!, 'POST', '/api/v1/agents/batch/restart', {
      agents: [agent.code],
      packages: ['web'],
      ...(operationId ? { operation_id: operationId } : {}),
    });

  it('killed right after a spawn, 24 times: the package is adopted, never started twice', async () => {
    for (let i = 0; i < 24; i++) {
      const known = new Set(webProcesses(agent));
      void restart().catch(() => undefined);
      // The moment the new process exists (before the agent can have written its pid down, most
      // times), or a little later: staggered over the trials.
      await waitFor(() => webProcesses(agent).some((pid) => !known.has(pid)) || undefined, {
        timeoutMs: 10_000,
        intervalMs: 1,
      }).catch(() => undefined);
      if (i % 4 === 3) await sleep(i);
      await agent.kill();
      await agent.start();
      await waitFor(() => alive(agent).length >= 1 || undefined, {
        timeoutMs: 10_000,
        what: 'web running again',
      });
      // Give a wrongly started second copy the time to show up before counting.
      await sleep(300);
      assert.equal(
        webProcesses(agent).length,
        1,
        `trial ${i}: exactly one web process (running: ${webProcesses(agent).join(', ')}; starts: ${starts(agent).join(', ')})`,
      );
      const pkgs = await fleet.api<{ packages: { name: string; pid?: number }[] }>(
        fleet.controllers[0]!,
        'GET',
        `/api/v1/agents/${agent.code}/packages`,
      );
      assert.equal(
        pkgs.body.packages.find((p) => p.name === 'web')?.pid,
        alive(agent)[0],
        `trial ${i}: the agent supervises that one`,
      );
    }
  });

  it('killed while an operation runs: asked again by id it is interrupted, not run again', async () => {
    await fleet.waitOnline(agent);
    // A stop that takes 3 s: the agent is killed in the middle of it.
    await agent.package('web').writeConfig('stop_delay: 3000\n');
    const r0 = await restart();
    assert.equal(r0.status, 200);
    await waitFor(() => alive(agent).length === 1 || undefined, { timeoutMs: 10_000 });
    const id = `op-interrupted-${Date.now()}`;
    const seen = starts(agent).length;
    void restart(id).catch(() => undefined);
    await sleep(800);
    await agent.kill();
    await agent.start();
    await fleet.waitOnline(agent);
    const q = await fleet.api<OperationQueryResult>(
      fleet.controllers[0]!,
      'POST',
      '/api/v1/agents/operations',
      {
        agents: [agent.code],
        operation_id: id,
      },
    );
    assert.equal(q.status, 200);
    assert.equal(q.body.entries[0]?.state, 'interrupted', JSON.stringify(q.body));
    assert.equal(q.body.entries[0]?.reason, 'interrupted');
    const again = await restart(id);
    assert.equal(again.body.results[0]?.reason, 'interrupted', JSON.stringify(again.body));
    assert.equal(again.body.results[0]?.replayed, true);
    await sleep(300);
    // The interrupted restart's stop had begun; whatever the agent did at its start again (start
    // the package it should run), the operation itself never ran a second time.
    assert.ok(starts(agent).length - seen <= 1, `started ${starts(agent).length - seen} times`);
    assert.equal(alive(agent).length, 1);
  });
});
