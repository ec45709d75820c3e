/**
 * Benchmark: many agents on one controller. The fleet runs in a child process; this process
 * runs the controller and measures what the controller costs: connect time, CPU share and
 * event-loop delay under steady heartbeats, memory, list and batch latencies.
 *
 * Usage (after the build): node packages/controller/dist/bench/agents.bench.js [agents=8000] [heartbeat=1s]
 * The default heartbeat is 1 s (10× the production 10 s), so N agents here load the controller
 * like 10·N agents in production. The process fd limit caps N (one fd per agent).
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { spawnTracked, startEtcd, waitFor } from '@opsplane/test-support';
import { parseControllerConfig, startController } from '../src/index.js';

const N = Number(process.argv[2] ?? 8000);
const HEARTBEAT = process.argv[3] ?? '1s';
const SECRET = 'bench-secret-0123456789';

const etcd = await startEtcd();
const config = parseControllerConfig({
  area: 'bench',
  id: 'bench-ctrl',
  listen: '127.0.0.1:0',
  agent_secret: SECRET,
  etcd: { endpoints: etcd.endpoints },
  agents: { heartbeat_interval: HEARTBEAT },
  batch: { max_agents: 100_000, per_agent_timeout: '30s' },
  http: { rate_limit: { max: 0 } },
});
const ctrl = await startController(config, { processMetrics: false });
const fleet = spawnTracked('fleet', process.execPath, [
  fileURLToPath(new URL('./fleet.js', import.meta.url)),
  ctrl.url,
  String(N),
  'bench',
  SECRET,
]);
const t0 = Date.now();
await fleet.waitForOutput('"connected"', 600_000);
await waitFor(() => ctrl.agentCount === N, { timeoutMs: 60_000, what: `${N} agents` });
const connectMs = Date.now() - t0;

const heartbeats = async () => {
  const text = await (await fetch(`${ctrl.url}/metrics`)).text();
  return Number(/opsplane_controller_agent_heartbeats_total (\d+)/.exec(text)?.[1] ?? 0);
};
const timed = async <T>(f: () => Promise<T>) => {
  const s = performance.now();
  const v = await f();
  return { ms: Math.round(performance.now() - s), v };
};

/** CPU seconds a process used so far (Linux /proc; 0 elsewhere). */
const procCpuS = (pid: number | undefined) => {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
    return (Number(f[11]) + Number(f[12])) / 100;
  } catch {
    return 0;
  }
};

// Steady state: 10 s of heartbeats.
const fleetCpu0 = procCpuS(fleet.child.pid);
const hist = monitorEventLoopDelay({ resolution: 10 });
hist.enable();
const hb0 = await heartbeats();
const cpu0 = process.cpuUsage();
const w0 = Date.now();
await new Promise((r) => setTimeout(r, 10_000));
const cpu = process.cpuUsage(cpu0);
const wall = Date.now() - w0;
const hbRate = ((await heartbeats()) - hb0) / (wall / 1000);
const fleetCpuPercent = Math.round(((procCpuS(fleet.child.pid) - fleetCpu0) / (wall / 1000)) * 1000) / 10;
hist.disable();

const list = await timed(() => fetch(`${ctrl.url}/api/v1/agents?page=1&pageSize=1000`).then((r) => r.json()));
const filtered = await timed(() =>
  fetch(`${ctrl.url}/api/v1/agents?zone=z3&group=g13&pageSize=1000`).then((r) => r.json()),
);
const one = await timed(() => fetch(`${ctrl.url}/api/v1/agents/bench-000042`).then((r) => r.json()));
const all = Array.from({ length: N }, (_, i) => `bench-${String(i).padStart(6, '0')}`);
const batch = await timed(async () => {
  const r = await fetch(`${ctrl.url}/api/v1/agents/batch/restart`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ agents: all, packages: [] }),
  });
  return (await r.json()) as { total: number; success: number };
});

const mem = process.memoryUsage();
console.log(
  JSON.stringify(
    {
      agents: N,
      heartbeat_interval: HEARTBEAT,
      connect_all_ms: connectMs,
      heartbeats_per_s: Math.round(hbRate),
      controller_cpu_percent_of_one_core: Math.round(((cpu.user + cpu.system) / 1000 / wall) * 1000) / 10,
      fleet_cpu_percent_of_one_core: fleetCpuPercent,
      event_loop_delay_ms: {
        p50: hist.percentile(50) / 1e6,
        p99: hist.percentile(99) / 1e6,
        max: hist.max / 1e6,
      },
      rss_mb: Math.round(mem.rss / 1e6),
      heap_used_mb: Math.round(mem.heapUsed / 1e6),
      list_1000_ms: list.ms,
      list_filtered_ms: filtered.ms,
      get_one_ms: one.ms,
      batch_restart_all: { ms: batch.ms, total: batch.v.total, success: batch.v.success },
    },
    null,
    2,
  ),
);
await fleet.stop();
await ctrl.stop();
await etcd.stop();
process.exit(0);
