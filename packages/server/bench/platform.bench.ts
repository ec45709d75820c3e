/**
 * Platform benchmark: the aggregated agent view with 100 000 simulated agents across 10
 * controllers. The controllers are real HTTP servers serving the controller API (GET
 * /api/v1/agents, 10 000 agents each) in a separate process, registered in a real etcd; the
 * server is the real one (startServer: discovery, client pool with per-area tokens, FleetView, HTTP with auth).
 *
 * Measures the cold refresh (discovery's first sync → every page of every controller listed,
 * validated, merged, joined with devices, indexed), a few warm refreshes, then the latency of
 * a filtered, sorted page served warm through HTTP with an API token (≥200 sequential requests,
 * plus other query shapes and a concurrent run). Then the same page through BENCH_REPLICAS (3)
 * server processes on PostgreSQL, round robin, and the leader takeover after a kill -9
 * (bench/replicas.ts). Prints ONE JSON object on stdout.
 *
 *   npm run bench:platform       (BENCH_CONTROLLERS, BENCH_AGENTS_PER_CONTROLLER, BENCH_REQUESTS,
 *                                 BENCH_REPLICAS, BENCH_LEADER_TTL_S)
 */
import { cp, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import {
  spawnTracked,
  startEtcd,
  tempDir,
  waitFor,
  type EtcdHandle,
  type TrackedProcess,
} from '@opsplane/test-support';
import { loadServerConfig, startServer, type RunningServer } from '../src/index.js';
import { pgliteTemplate, tokenFor } from '../test/helpers.js';
import { benchReplicas } from './replicas.js';

const CONTROLLERS = Number(process.env.BENCH_CONTROLLERS ?? 10);
const PER = Number(process.env.BENCH_AGENTS_PER_CONTROLLER ?? 10_000);
const REQUESTS = Math.max(200, Number(process.env.BENCH_REQUESTS ?? 500));
const TOTAL = CONTROLLERS * PER;
/** Server replicas of the second part (0: skip it). */
const REPLICAS = Number(process.env.BENCH_REPLICAS ?? 3);
const LEADER_TTL_S = Number(process.env.BENCH_LEADER_TTL_S ?? 10);

const err = (s: string) => process.stderr.write(`${s}\n`);

function stats(samples: number[]) {
  const s = [...samples].sort((a, b) => a - b);
  const q = (p: number) => s[Math.min(s.length - 1, Math.max(0, Math.ceil(p * s.length) - 1))] ?? NaN;
  const r = (x: number) => Math.round(x * 1000) / 1000;
  return {
    requests: s.length,
    p50_ms: r(q(0.5)),
    p95_ms: r(q(0.95)),
    p99_ms: r(q(0.99)),
    max_ms: r(s[s.length - 1] ?? NaN),
    mean_ms: r(s.reduce((a, b) => a + b, 0) / Math.max(1, s.length)),
  };
}

async function main(): Promise<void> {
  let etcd: EtcdHandle | undefined;
  let sim: TrackedProcess | undefined;
  let server: RunningServer | undefined;
  const dir = await tempDir('opsplane-bench-platform-');
  try {
    etcd = await startEtcd();
    const simMain = fileURLToPath(new URL('./sim-controllers.js', import.meta.url));
    err(`starting ${CONTROLLERS} simulated controllers with ${PER} agents each…`);
    sim = spawnTracked('sim-controllers', process.execPath, [
      simMain,
      etcd.endpoints.join(','),
      String(CONTROLLERS),
      String(PER),
    ]);
    await sim.waitForOutput(/^READY /m, 120_000);

    await mkdir(dir.path, { recursive: true });
    await cp(await pgliteTemplate(), join(dir.path, 'db'), { recursive: true });
    const config = await loadServerConfig(
      undefined,
      {
        server: {
          listen: '127.0.0.1:0',
          data_dir: dir.path,
          // Only the refreshes the benchmark asks for.
          agents_refresh_interval: '1h',
        },
        etcd: { endpoints: etcd.endpoints },
      },
      { OPSPLANE_MAX_WORKERS: '10' },
    );
    const logger = pino({ level: process.env.OPSPLANE_LOG_LEVEL ?? 'warn' }, pino.destination(2));
    err('starting the server…');
    const t0 = performance.now();
    server = await startServer(config, {
      logger,
      adminPassword: 'bench-admin-password',
      masterKey: Buffer.alloc(32, 7).toString('base64'),
      printSecret: () => undefined,
    });
    const s = server;
    const view = s.platform.view;
    // Cold: the first refresh, triggered by discovery's first sync with every controller there.
    await waitFor(() => view.refreshCount >= 1 && !view.snapshot().refreshing, {
      timeoutMs: 300_000,
      intervalMs: 20,
      what: 'the first refresh of the agent view',
    });
    const first = view.lastRefresh;
    let coldMs = first?.durationMs ?? NaN;
    let coldAgents = first?.agents ?? 0;
    const sinceStart = performance.now() - t0;
    if (coldAgents !== TOTAL) {
      // Discovery synced before every controller was visible: time a full one explicitly.
      const r = await view.refresh();
      coldMs = r.durationMs;
      coldAgents = r.agents;
    }
    if (coldAgents !== TOTAL)
      throw new Error(
        `the view has ${coldAgents} agents, expected ${TOTAL}: ${JSON.stringify(view.snapshot().errors)}`,
      );
    err(`cold refresh: ${Math.round(coldMs)} ms for ${coldAgents} agents`);

    const warmRefresh: number[] = [];
    for (let i = 0; i < 3; i++) warmRefresh.push((await view.refresh()).durationMs);

    const admin = await s.store.users.getByUsername('admin');
    const { token } = await tokenFor(s, admin!.id, 'viewer');
    const headers = { authorization: `Bearer ${token}` };
    const get = async (path: string) => {
      const t = performance.now();
      const res = await fetch(`${s.url}${path}`, { headers });
      const body = (await res.json()) as { total: number; agents: unknown[] };
      const ms = performance.now() - t;
      if (res.status !== 200) throw new Error(`${path}: ${res.status} ${JSON.stringify(body)}`);
      return { ms, body };
    };
    const run = async (path: string, n: number) => {
      for (let i = 0; i < 20; i++) await get(path); // warm-up (sort order, JIT, keep-alive)
      const samples: number[] = [];
      let total = 0;
      for (let i = 0; i < n; i++) {
        const r = await get(path);
        samples.push(r.ms);
        total = r.body.total;
      }
      return { path, matched: total, ...stats(samples) };
    };

    const page = await run(
      '/api/v1/agents?status=online&area=area-3&sort=-last_heartbeat&page=2&pageSize=50',
      REQUESTS,
    );
    const search = await run('/api/v1/agents?q=host-area-7-12&sort=hostname&pageSize=50', 200);
    const deep = await run(`/api/v1/agents?sort=id&page=${Math.floor(TOTAL / 100)}&pageSize=100`, 200);
    const big = await run(
      '/api/v1/agents?health_status=degraded,unhealthy&sort=-register_time&pageSize=500',
      200,
    );
    // 8 clients at once.
    const concurrent: number[] = [];
    const path = '/api/v1/agents?status=online&area=area-3&sort=-last_heartbeat&page=2&pageSize=50';
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        for (let i = 0; i < Math.ceil(REQUESTS / 8); i++) concurrent.push((await get(path)).ms);
      }),
    );
    const mem = process.memoryUsage();
    // The single server is done: its memory and CPU go to the replicas.
    await server.stop();
    server = undefined;
    const replicas =
      REPLICAS > 0
        ? await benchReplicas({
            etcdEndpoints: etcd.endpoints,
            replicas: REPLICAS,
            totalAgents: TOTAL,
            requests: REQUESTS,
            path,
            leaderTtlS: LEADER_TTL_S,
            stats,
            log: err,
          })
        : undefined;
    const result = {
      benchmark: 'platform aggregated agents',
      controllers: CONTROLLERS,
      agents: TOTAL,
      cold_refresh_ms: Math.round(coldMs),
      server_start_to_view_ready_ms: Math.round(sinceStart),
      warm_refresh_ms: warmRefresh.map((x) => Math.round(x)),
      page_warm: page,
      page_warm_8_clients: { path, ...stats(concurrent) },
      other_queries: [search, deep, big],
      rss_mb: Math.round(mem.rss / 1048576),
      heap_used_mb: Math.round(mem.heapUsed / 1048576),
      ...(replicas ? { replicas } : {}),
      node: process.version,
    };
    process.stdout.write(JSON.stringify(result) + '\n');
  } finally {
    await server?.stop().catch((e: unknown) => err(`server stop: ${String(e)}`));
    await sim?.stop(5000).catch(() => undefined);
    await etcd?.stop().catch(() => undefined);
    await dir.cleanup();
  }
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    err(`bench failed: ${(e as Error).stack ?? String(e)}`);
    process.exit(1);
  },
);
