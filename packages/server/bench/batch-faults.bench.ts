/**
 * Batch-under-faults benchmark: cross-area batch restarts while a controller is SIGKILLed at a
 * random moment, on a real fleet — a real etcd, two areas with two `opsplane controller`
 * processes each, real `opsplane agent` processes supervising the sample `web` package (which
 * writes every start to its starts.log and takes 1 s to stop), and the real server. For every
 * trial it compares each agent's reported result with what the agent did (its starts counted in
 * the file) and counts the web processes alive per agent, then prints ONE JSON object:
 * mismatches (must be 0), duplicate processes (must be 0), and the time to final results.
 *
 *   npm run bench:batch-faults     (BENCH_TRIALS, default 8; BENCH_AGENTS_PER_AREA, default 6)
 */
import { readFileSync } from 'node:fs';
import { pino } from 'pino';
import {
  pidAlive,
  startEtcd,
  startFleet,
  waitFor,
  type FleetAgent,
  type FleetController,
} from '@opsplane/test-support';
import type { AgentListResponse, BatchJob } from '@opsplane/api';
import { startTestServer } from '../test/helpers.js';

const TRIALS = Number(process.env.BENCH_TRIALS ?? 8);
const PER_AREA = Number(process.env.BENCH_AGENTS_PER_AREA ?? 6);
const TOKEN = 'bench-controller-token-0123456789';
const err = (s: string) => process.stderr.write(`${s}\n`);

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

const quantile = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(p * s.length) - 1))] ?? NaN;
};

async function main(): Promise<void> {
  const etcd = await startEtcd();
  const t = await startTestServer('pglite', {
    etcd: etcd.endpoints,
    areas: { 'area-1': { controller_token: TOKEN }, 'area-2': { controller_token: TOKEN } },
    server: { agents_refresh_interval: '1s', batch_wait: '0s', batch_failover_wait: '20s' },
    env: { OPSPLANE_CONTROLLER_API_TIMEOUT: '3s' },
    logger: pino({ level: 'silent' }),
  });
  const fleet = await startFleet({
    etcd,
    apiToken: TOKEN,
    areas: [
      { name: 'area-1', controllers: 2, agents: PER_AREA },
      { name: 'area-2', controllers: 2, agents: PER_AREA },
    ],
    packages: [{ kind: 'web', config: { stop_delay: 1000 } }],
  });
  const op = t.users.operator.token;
  const allOnline = () =>
    waitFor(
      async () => {
        const r = await t.call<AgentListResponse>('GET', '/api/v1/agents?status=online&refresh=true', {
          auth: op,
        });
        return r.json.total === fleet.agents.length;
      },
      { timeoutMs: 60_000, intervalMs: 300, what: 'every agent online' },
    );
  const trials: Record<string, unknown>[] = [];
  let mismatches = 0;
  let duplicates = 0;
  const finalMs: number[] = [];
  try {
    await allOnline();
    for (let i = 0; i < TRIALS; i++) {
      const area = i % 2 === 0 ? 'area-1' : 'area-2';
      const holders = new Map<FleetController, number>();
      for (const a of fleet.agentsOf(area)) {
        const c = await fleet.holderOf(a.code);
        if (c) holders.set(c, (holders.get(c) ?? 0) + 1);
      }
      const victim = [...holders].sort((x, y) => y[1] - x[1])[0]?.[0] ?? fleet.controllersOf(area)[0]!;
      const killAfterMs = Math.round(Math.random() * 1500);
      const before = new Map(fleet.agents.map((a) => [a.code, starts(a).length]));
      const t0 = Date.now();
      const res = await t.call<BatchJob>('POST', '/api/v1/batches?wait=0s', {
        auth: op,
        body: {
          action: 'restart',
          agents: fleet.agents.map((a) => a.code),
          packages: ['web'],
          timeout: '40s',
        },
      });
      if (res.status !== 202) throw new Error(`batch not started: ${res.status} ${res.text}`);
      await new Promise((r) => setTimeout(r, killAfterMs));
      await victim.kill();
      const job = await waitFor(
        async () => {
          const r = await t.call<BatchJob>('GET', `/api/v1/batches/${res.json.id}`, { auth: op });
          return r.json.status !== 'running' ? r.json : undefined;
        },
        { timeoutMs: 60_000, intervalMs: 100, what: 'the batch finished' },
      );
      const took = Date.now() - t0;
      finalMs.push(took);
      let trialMismatches = 0;
      let trialDuplicates = 0;
      const reasons: Record<string, number> = {};
      for (const agent of fleet.agents) {
        const r = (job.results ?? []).find((x) => x.agent_code === agent.code);
        const did = starts(agent).length - (before.get(agent.code) ?? 0);
        reasons[r?.reason ?? 'missing'] = (reasons[r?.reason ?? 'missing'] ?? 0) + 1;
        // The truth: success with `done` exactly when the package was started once.
        if (!r || (did === 1) !== (r.success && r.reason === 'done') || did > 1) trialMismatches++;
        if (starts(agent).filter((pid) => pidAlive(pid)).length !== 1) trialDuplicates++;
      }
      mismatches += trialMismatches;
      duplicates += trialDuplicates;
      trials.push({
        area,
        killed: victim.id,
        kill_after_ms: killAfterMs,
        status: job.status,
        time_to_final_ms: took,
        mismatches: trialMismatches,
        duplicate_processes: trialDuplicates,
        reasons,
      });
      err(`trial ${i + 1}/${TRIALS}: ${JSON.stringify(trials.at(-1))}`);
      await victim.start();
      for (const a of fleet.agents) await fleet.waitOnline(a, 30_000);
      await allOnline();
    }
    process.stdout.write(
      JSON.stringify(
        {
          bench: 'batch-faults',
          agents: fleet.agents.length,
          areas: 2,
          controllers_per_area: 2,
          trials: TRIALS,
          mismatches_results_vs_reality: mismatches,
          duplicate_processes: duplicates,
          time_to_final_results_ms: {
            p50: quantile(finalMs, 0.5),
            max: Math.max(...finalMs),
            min: Math.min(...finalMs),
          },
          per_trial: trials,
        },
        null,
        2,
      ) + '\n',
    );
  } finally {
    await fleet.stop();
    await t.stop();
    await etcd.stop();
  }
}

main().catch((e: unknown) => {
  err(`bench failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
  process.exit(1);
});
