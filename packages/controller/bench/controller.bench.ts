/**
 * Controller benchmark: as many simulated agents as one controller process can hold, against a
 * real controller process and a real etcd. Prints ONE JSON object on stdout; progress goes to
 * stderr.
 *
 *   npm run bench:controller
 *
 * Processes (all started and stopped here):
 *   - etcd, via startEtcd() from @opsplane/test-support;
 *   - the controller, as deployed: `node packages/cli/dist/src/main.js controller --config …`
 *     (its RSS, CPU and fds are read from /proc/<pid>, so nothing of the bench is counted);
 *   - K agent-simulator processes (agent-simulator.ts), each with its own range of agent codes,
 *     speaking the real protocol from source addresses spread over 127.0.0.x.
 *
 * Two phases, each with its own controller process and (up to) the same N agents:
 *   1. heartbeat_interval 10 s (production): connect N agents → connect rate, controller RSS
 *      before/after → RSS per agent; then POST /api/v1/agents/batch/restart for 1 000 and 10 000
 *      agents (one package each), repeated → round trip p50/p99/max and whether every result was
 *      a success; a few list/get latencies; a graceful stop with every agent connected.
 *   2. heartbeat_interval 1 s (10× production), so N agents send N heartbeats/s: a steady window
 *      → the controller's own heartbeat counter (GET /metrics) delta, its CPU %
 *      (/proc/<pid>/stat) and /healthz latency (event-loop responsiveness).
 *   They are separate because at the fd limit 1 s heartbeats alone take most of a core (see the
 *   CPU figure of phase 2): a batch measured on top of that measures the heartbeat backlog, not
 *   the batch, and connecting slows down as the loop saturates — so phase 2 runs last and uses
 *   the time left, and reports how many agents it reached.
 *
 * N defaults to what the controller's RLIMIT_NOFILE allows (one fd per agent socket, minus the
 * fds the controller already has, minus a margin for the bench's own HTTP connections): the
 * target is 50 000 but a process here cannot hold more than its fd limit.
 *
 * Both phases run twice in one run (BENCH_MODES, default `plain,tls`): plain HTTP/ws with
 * token-authenticated agents, then HTTPS/wss with mutual TLS — every simulated agent presents a
 * certificate of a CA made for the run (all sharing one key, issued before connecting) and the
 * controller runs `agents.auth: mtls` — so that connect rate, RSS per agent, heartbeats/s and
 * the 10 000-agent batch round trip can be compared side by side (`comparison`, with the goals:
 * TLS RSS per agent ≤ 2× plain and ≤ 40 KB, ≥ 10 000 heartbeats/s, 10 000-agent batch p99 ≤ 2 s).
 *
 * Time is bounded (BENCH_TIME_LIMIT_S per mode, default 290 s): a phase that runs late connects fewer
 * agents or runs fewer repetitions and says so (`truncated`); past the limit everything is
 * stopped and what was measured so far is printed with an `error`.
 *
 * Environment (all optional): BENCH_AGENTS (N), BENCH_SIM_PROCS, BENCH_WINDOW_S (15),
 * BENCH_REPS_1K (20), BENCH_REPS_10K (8), BENCH_TIME_LIMIT_S (290), BENCH_SIM_CONCURRENCY
 * (connects in flight per simulator, 128), BENCH_CONTROLLER_NODE_ARGS (node flags for the
 * controller processes, e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { availableParallelism, loadavg, totalmem } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import {
  freePort,
  sleep,
  spawnTracked,
  startEtcd,
  tempDir,
  waitFor,
  type EtcdHandle,
  type TrackedProcess,
} from '@opsplane/test-support';
import { Agent as UndiciAgent, fetch as undiciFetch } from 'undici';
import { CertificateAuthority, initCa, issueToFiles } from '@opsplane/pki';
import {
  agentCode,
  SIM_CERTS_FILE,
  type SimCerts,
  type SimEvent,
  type SimOptions,
} from './agent-simulator.js';

const TARGET = 50_000;
/**
 * Agents per phase unless BENCH_AGENTS says otherwise: the target (capped by the fd limit) for a
 * plain-only run; 12 000 when TLS runs beside plain — enough for the 10 000-agent batch and
 * 10 000 heartbeats/s, and both modes then measure the same fleet size in bounded time.
 */
const DEFAULT_AGENTS = (process.env.BENCH_MODES ?? 'plain,tls').includes('tls') ? 12_000 : TARGET;
const AREA = 'bench';
const SECRET = 'bench-secret-0123456789abcdef';
const PREFIX = 'sim-';
const PACKAGES = ['web', 'db', 'cache'];
const WINDOW_S = Number(process.env.BENCH_WINDOW_S ?? 15);
const REPS_1K = Number(process.env.BENCH_REPS_1K ?? 20);
const REPS_10K = Number(process.env.BENCH_REPS_10K ?? 8);
const MODES = (process.env.BENCH_MODES ?? 'plain,tls')
  .split(',')
  .map((m) => m.trim())
  .filter((m): m is Mode => m === 'plain' || m === 'tls');
type Mode = 'plain' | 'tls';
/** Per mode (TLS connects are slower: its own limit). */
const TIME_LIMIT_S = Number(process.env.BENCH_TIME_LIMIT_S ?? 290);
const TLS_TIME_LIMIT_S = Number(process.env.BENCH_TLS_TIME_LIMIT_S ?? 480);
const modeLimitS = (m: Mode) => (m === 'tls' ? TLS_TIME_LIMIT_S : TIME_LIMIT_S);
/** Plus issuing the simulated agents' certificates (a few ms each) before the TLS mode. */
const TOTAL_LIMIT_S = MODES.reduce((a, m) => a + modeLimitS(m), 0) + (MODES.includes('tls') ? 180 : 0) + 30;
const SIM_CONCURRENCY = Number(process.env.BENCH_SIM_CONCURRENCY ?? 128);
/** fds the controller keeps free for the bench's own HTTP connections and anything else it opens. */
const FD_MARGIN = 64;
/** Agents per simulator process at most (each has its own fd limit and one event loop). */
const MAX_PER_SIM = 12_000;
/** Source addresses 127.0.0.2 … 127.0.0.33: 32 × (60999 − 32768) ephemeral ports. */
const SOURCE_IPS = Array.from({ length: 32 }, (_, i) => `127.0.0.${i + 2}`);
/** SIGKILL after this: a healthy controller stops in a few seconds even with every agent connected. */
const STOP_GRACE_MS = 30_000;

const t0 = Date.now();
/** The current mode's deadline (each mode gets TIME_LIMIT_S). */
let deadline = t0 + TIME_LIMIT_S * 1000;
/** Seconds left before the time limit. */
const remainingS = () => (deadline - Date.now()) / 1000;
const elapsed = () => `${((Date.now() - t0) / 1000).toFixed(1)}s`;
const progress = (msg: string) => process.stderr.write(`[bench ${elapsed()}] ${msg}\n`);
const round = (x: number, digits = 1) => Math.round(x * 10 ** digits) / 10 ** digits;

// ---- /proc readers (Linux) --------------------------------------------------------------------

const CLK_TCK = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** CPU seconds (user + system) the process used so far. */
function cpuSeconds(pid: number | undefined): number {
  try {
    // Fields after "(comm) ": state is field 3, utime field 14, stime field 15.
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
    return (Number(f[11]) + Number(f[12])) / CLK_TCK;
  } catch {
    return NaN;
  }
}

/** CPU seconds split into user and system (kernel) time. */
function cpuSplit(pid: number): { user: number; system: number } {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
  return { user: Number(f[11]) / CLK_TCK, system: Number(f[12]) / CLK_TCK };
}

/**
 * Seconds the process spent runnable but waiting for a CPU (/proc/<pid>/schedstat, field 2): how
 * much other work on the machine held it back. NaN where schedstat is unavailable.
 */
function runqueueWaitSeconds(pid: number): number {
  try {
    return Number(readFileSync(`/proc/${pid}/schedstat`, 'utf8').split(' ')[1]) / 1e9;
  } catch {
    return NaN;
  }
}

/** A `kB` line of /proc/<pid>/status, in bytes. */
function statusBytes(pid: number, key: 'VmRSS' | 'VmHWM'): number {
  const m = new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m?.[1] ?? NaN) * 1024;
}

function fdLimits(pid: number): { soft: number; hard: number } {
  const m = /^Max open files\s+(\d+|unlimited)\s+(\d+|unlimited)/m.exec(
    readFileSync(`/proc/${pid}/limits`, 'utf8'),
  );
  const n = (s: string | undefined) => (s === undefined || s === 'unlimited' ? Infinity : Number(s));
  return { soft: n(m?.[1]), hard: n(m?.[2]) };
}

const openFds = (pid: number) => readdirSync(`/proc/${pid}/fd`).length;

// ---- statistics and HTTP -----------------------------------------------------------------------

function dist(samples: readonly number[]) {
  const s = [...samples].sort((a, b) => a - b);
  const q = (p: number) => s[Math.min(s.length - 1, Math.max(0, Math.ceil(p * s.length) - 1))] ?? NaN;
  return {
    samples: s.length,
    p50: round(q(0.5), 2),
    p99: round(q(0.99), 2),
    max: round(s[s.length - 1] ?? NaN, 2),
  };
}

/** The bench's own requests to the controller: plain, or over TLS verified against the run's CA. */
let benchFetch: typeof fetch = fetch;

async function timedFetch(url: string, init: RequestInit = {}, timeoutMs = 120_000) {
  const s = performance.now();
  const res = await benchFetch(url, { ...init, signal: AbortSignal.timeout(timeoutMs) });
  const text = await res.text();
  return { ms: performance.now() - s, status: res.status, text };
}

async function scrapeMetrics(url: string): Promise<Map<string, number>> {
  const { text } = await timedFetch(`${url}/metrics`, {}, 60_000);
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][\w:]*(?:\{[^}]*\})?) (\S+)$/.exec(line);
    if (m?.[1] && m[2]) out.set(m[1], Number(m[2]));
  }
  return out;
}
const HEARTBEATS_TOTAL = 'opsplane_controller_agent_heartbeats_total';

async function connectedAgents(url: string): Promise<number> {
  const { text } = await timedFetch(`${url}/healthz`, {}, 60_000);
  return (JSON.parse(text) as { connected_agents: number }).connected_agents;
}

/** Polls /healthz one request at a time, every `everyMs`, until stopped; latencies in ms. */
function healthzProbe(url: string, everyMs = 50) {
  let running = true;
  const samples: number[] = [];
  let errors = 0;
  const loop = (async () => {
    while (running) {
      const s = performance.now();
      try {
        const r = await timedFetch(`${url}/healthz`, {}, 30_000);
        if (r.status === 200) samples.push(r.ms);
        else errors++;
      } catch {
        errors++;
      }
      await sleep(Math.max(0, everyMs - (performance.now() - s)));
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return { ...dist(samples), errors };
    },
  };
}

// ---- simulators --------------------------------------------------------------------------------

interface Sim {
  proc: TrackedProcess;
  count: number;
  start?: Extract<SimEvent, { event: 'start' }>;
  progress?: Extract<SimEvent, { event: 'progress' }>;
  ready?: Extract<SimEvent, { event: 'ready' }>;
  stats?: Extract<SimEvent, { event: 'stats' }>;
}

function startSimulator(name: string, opts: SimOptions): Sim {
  const script = fileURLToPath(new URL('./agent-simulator.js', import.meta.url));
  const proc = spawnTracked(name, process.execPath, [script, JSON.stringify(opts)]);
  const sim: Sim = { proc, count: opts.count };
  if (proc.child.stdout) {
    createInterface({ input: proc.child.stdout }).on('line', (line) => {
      let e: SimEvent;
      try {
        e = JSON.parse(line) as SimEvent;
      } catch {
        return;
      }
      if (e.event === 'start') sim.start = e;
      else if (e.event === 'progress') sim.progress = e;
      else if (e.event === 'ready') sim.ready = e;
      else sim.stats = e;
    });
  }
  return sim;
}

/** Heartbeats/s the simulators sent between two snapshots of their stats. */
function sentRate(before: Sim['stats'][], after: Sim['stats'][]): number {
  let rate = 0;
  for (const [i, a] of after.entries()) {
    const b = before[i];
    if (a && b && a.t > b.t) rate += ((a.heartbeatsSent - b.heartbeatsSent) / (a.t - b.t)) * 1000;
  }
  return rate;
}

// ---- one controller + its fleet ----------------------------------------------------------------

let etcd: EtcdHandle | undefined;
let tmp: { path: string; cleanup: () => Promise<void> } | undefined;
/** Everything running now, for cleanup. */
const live = new Set<TrackedProcess>();

interface Fleet {
  controller: TrackedProcess;
  pid: number;
  url: string;
  sims: Sim[];
  fdLimit: { soft: number; hard: number };
  fdsBefore: number;
  rssBefore: number;
  /** Agents the fd limit allows on this controller. */
  fdCap: number;
}

/** The run's CA (tls mode). */
let caDir = '';

async function startControllerProcess(label: string, heartbeat: string, mode: Mode): Promise<Fleet> {
  const cliMain = fileURLToPath(new URL('../../../cli/dist/src/main.js', import.meta.url));
  if (!existsSync(cliMain)) throw new Error(`${cliMain} missing: run npm run build first`);
  if (!etcd || !tmp) throw new Error('etcd not started');
  const port = await freePort();
  const url = `${mode === 'tls' ? 'https' : 'http'}://127.0.0.1:${port}`;
  let tlsLines: string[] = [];
  if (mode === 'tls') {
    const files = await issueToFiles(caDir, join(tmp.path, `tls-${label}`), 'controller', {
      kind: 'controller',
      name: `bench-ctrl-${label}`,
      area: AREA,
    });
    tlsLines = [
      'tls:',
      `  cert: ${files.certPath}`,
      `  key: ${files.keyPath}`,
      `  ca: ${files.caPath}`,
      '  renew: false',
    ];
  }
  const configFile = join(tmp.path, `controller-${label}.yaml`);
  writeFileSync(
    configFile,
    [
      `area: ${AREA}`,
      `id: bench-ctrl-${label}`,
      `listen: 127.0.0.1:${port}`,
      'etcd:',
      `  endpoints: [${etcd.endpoints.join(', ')}]`,
      'agents:',
      `  heartbeat_interval: ${heartbeat}`,
      // The production tolerance for a silent agent (3 × 10 s) also when heartbeats are compressed.
      '  offline_after: 30s',
      '  hello_timeout: 60s',
      ...(mode === 'tls' ? ['  auth: mtls'] : []),
      'batch:',
      '  per_agent_timeout: 60s',
      '  max_agents: 20000',
      'http:',
      '  rate_limit:',
      '    max: 0',
      ...tlsLines,
      '',
    ].join('\n'),
  );
  const controller = spawnTracked(
    `controller-${label}`,
    process.execPath,
    [
      ...(process.env.BENCH_CONTROLLER_NODE_ARGS?.split(' ').filter(Boolean) ?? []),
      cliMain,
      'controller',
      '--config',
      configFile,
      // Per-agent info logs (connected/disconnected) are not what is measured here.
      '--log-level',
      'warn',
      // The benchmark calls the API without credentials.
      '--insecure-no-token',
    ],
    { env: { ...process.env, OPSPLANE_AGENT_SECRET: SECRET } },
  );
  live.add(controller);
  const pid = controller.child.pid;
  if (!pid) throw new Error('controller did not start');
  await waitFor(() => connectedAgents(url).then((n) => n === 0), {
    timeoutMs: 30_000,
    what: `controller ${label} /healthz`,
  });
  // Warm the routes the bench uses so their first-call cost is not in the measurements.
  await scrapeMetrics(url);
  await timedFetch(`${url}/api/v1/agents?page=1&pageSize=10`);
  await sleep(1000);
  const fdLimit = fdLimits(pid);
  const fdsBefore = openFds(pid);
  return {
    controller,
    pid,
    url,
    sims: [],
    fdLimit,
    fdsBefore,
    rssBefore: statusBytes(pid, 'VmRSS'),
    fdCap: fdLimit.soft - fdsBefore - FD_MARGIN,
  };
}

/** Starts the simulators for N agents and waits (until `connectBudgetS`) for them to be welcomed. */
async function connectFleet(f: Fleet, label: string, N: number, connectBudgetS: number, mode: Mode) {
  const simCount = Math.max(
    Number(process.env.BENCH_SIM_PROCS ?? 0) || Math.min(availableParallelism(), 2),
    Math.ceil(N / MAX_PER_SIM),
  );
  const per = Math.ceil(N / simCount);
  f.sims = Array.from({ length: simCount }, (_, k) => {
    const sim = startSimulator(`sim-${label}-${k}`, {
      url: f.url,
      area: AREA,
      secret: SECRET,
      prefix: PREFIX,
      from: k * per,
      count: Math.max(0, Math.min(per, N - k * per)),
      // Each simulator takes its own slice of the source addresses.
      sourceIps: SOURCE_IPS.filter((_, i) => i % simCount === k),
      concurrency: SIM_CONCURRENCY,
      packages: PACKAGES,
      ...(mode === 'tls' ? { tls: { caDir } } : {}),
    });
    live.add(sim.proc);
    return sim;
  });
  // Simulators with TLS first issue their agents' certificates: the budget starts once all connect.
  const prep0 = Date.now();
  while (f.sims.some((s) => !s.start && s.proc.child.exitCode === null) && Date.now() - prep0 < 180_000) {
    await sleep(200);
  }
  const prepareMs = Date.now() - prep0;
  if (prepareMs > 1000) progress(`[${label}] simulators ready to connect after ${prepareMs} ms`);
  const until = Date.now() + connectBudgetS * 1000;
  const cpuAtConnect = cpuSeconds(f.pid);
  let truncated = false;
  let last = '';
  while (f.sims.some((s) => !s.ready)) {
    for (const s of f.sims) {
      if (s.proc.child.exitCode !== null)
        throw new Error(`simulator exited early:\n${s.proc.output().slice(-2000)}`);
    }
    if (Date.now() > until) {
      truncated = true;
      progress(`connect budget of ${Math.round(connectBudgetS)} s used up; going on with what is connected`);
      break;
    }
    await sleep(1000);
    const c = f.sims.reduce((a, s) => a + (s.ready?.connected ?? s.progress?.connected ?? 0), 0);
    const line = `[${label}] connecting: ${c}/${N} welcomed`;
    if (line !== last) progress(line);
    last = line;
  }
  const firstStart = Math.min(...f.sims.map((s) => s.start?.t ?? Infinity));
  const lastReady = truncated ? Date.now() : Math.max(...f.sims.map((s) => s.ready?.t ?? 0));
  const welcomed = f.sims.reduce((a, s) => a + (s.ready?.connected ?? s.progress?.connected ?? 0), 0);
  const failures: Record<string, number> = {};
  for (const s of f.sims)
    for (const [k, v] of Object.entries(s.ready?.failures ?? {})) failures[k] = (failures[k] ?? 0) + v;
  const connected = await connectedAgents(f.url);
  const controllerCpuS = cpuSeconds(f.pid) - cpuAtConnect;
  const durationMs = lastReady - firstStart;
  progress(`[${label}] ${connected} agents connected in ${durationMs} ms`);
  return {
    simulator_processes: simCount,
    agents_connected: connected,
    duration_ms: durationMs,
    agents_per_s: Math.round((welcomed * 1000) / durationMs),
    failed: Object.values(failures).reduce((a, b) => a + b, 0),
    simulators_prepare_ms: prepareMs,
    // What one connect (TCP/TLS handshake, upgrade, hello) costs the controller itself: on a
    // shared 2-core machine the simulators' side of the handshakes, not the controller, sets the
    // connect rate (TLS clients pay as much as the server).
    controller_cpu_ms_per_connect: connected > 0 ? round((controllerCpuS * 1000) / connected, 3) : null,
    controller_bound_agents_per_s: controllerCpuS > 0 ? Math.round(connected / controllerCpuS) : null,
    ...(Object.keys(failures).length ? { failures } : {}),
    ...(truncated ? { truncated: true } : {}),
  };
}

async function stopFleet(f: Fleet) {
  const s0 = performance.now();
  await f.controller.stop(STOP_GRACE_MS);
  const ms = Math.round(performance.now() - s0);
  const exit = await f.controller.exited;
  live.delete(f.controller);
  await Promise.all(f.sims.map((s) => s.proc.stop(3000)));
  for (const s of f.sims) live.delete(s.proc);
  return { ms, exit_code: exit.code, ...(exit.signal ? { signal: exit.signal } : {}) };
}

async function cleanup(): Promise<void> {
  await Promise.all([...live].map((p) => p.stop(p.name.startsWith('controller') ? STOP_GRACE_MS : 3000)));
  await etcd?.stop().catch(() => undefined);
  await tmp?.cleanup().catch(() => undefined);
}

// ---- the bench -----------------------------------------------------------------------------------

const loadAtStart = loadavg()[0] ?? 0;
/** Filled in as phases complete, so a run stopped by the time limit still reports what it measured. */
const report: Record<string, unknown> = {
  bench: 'controller',
  machine: {
    cpus: availableParallelism(),
    mem_gib: round(totalmem() / 2 ** 30),
    node: process.version,
  },
  target: TARGET,
  modes: {},
};
/** The current mode's part of the report. */
let result: Record<string, unknown> = {};

async function phaseBatch(requested: number | undefined, mode: Mode): Promise<number> {
  progress(
    `[1 ${mode}] starting a controller with heartbeat_interval 10s (production; separate process, via the CLI)`,
  );
  const f = await startControllerProcess(`1-${mode}`, '10s', mode);
  const n = Math.min(requested ?? DEFAULT_AGENTS, f.fdCap);
  Object.assign(result, {
    fd_limit: f.fdLimit.soft,
    fd_limit_hard: f.fdLimit.hard,
    ...(n < TARGET
      ? { limited_by: n === f.fdCap ? `RLIMIT_NOFILE hard limit ${f.fdLimit.hard}` : 'BENCH_AGENTS' }
      : {}),
    agents_requested: n,
  });
  progress(
    `[1] controller pid ${f.pid}: fd limit ${f.fdLimit.soft}/${f.fdLimit.hard}, ${f.fdsBefore} fds open, ` +
      `RSS ${round(f.rssBefore / 2 ** 20)} MiB → connecting ${n} agents (target ${TARGET})`,
  );
  const connect = await connectFleet(f, '1', n, Math.max(20, Math.min(120, remainingS() - 150)), mode);
  const connected = connect.agents_connected;
  await sleep(2000);
  const rssAfterConnect = statusBytes(f.pid, 'VmRSS');
  const fdsAfter = openFds(f.pid);
  Object.assign(result, {
    agents_connected: connected,
    connect_rate_agents_per_s: connect.agents_per_s,
    controller_rss_before_bytes: f.rssBefore,
    controller_rss_after_bytes: rssAfterConnect,
    rss_per_agent_bytes: connected > 0 ? Math.round((rssAfterConnect - f.rssBefore) / connected) : null,
  });
  progress(`[1] controller RSS ${round(rssAfterConnect / 2 ** 20)} MiB, ${fdsAfter} fds`);
  const phase: Record<string, unknown> = {
    heartbeat_interval_ms: 10_000,
    connect,
    controller_fds: { before: f.fdsBefore, after_connect: fdsAfter },
  };
  result.phase_1_production_heartbeat = phase;
  const allCodes = Array.from({ length: n }, (_, i) => agentCode(PREFIX, i));
  const batchBody = (agents: string[]) => ({
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ agents, packages: ['web'] }),
  });
  // Two unmeasured batches first, so that JIT warm-up is not in the first measured round trips.
  for (let w = 0; w < 2; w++) {
    await timedFetch(`${f.url}/api/v1/agents/batch/restart`, batchBody(allCodes.slice(0, 1000)));
  }
  // batch.concurrency is left at its default (1000 agent requests in flight per batch).
  const batch: Record<string, unknown> = { concurrency: 1000, warmup_batches: 2 };
  phase.batch_restart = batch;
  for (const [size, reps] of [
    [1000, REPS_1K],
    [10_000, REPS_10K],
  ] as const) {
    const k = Math.min(size, connected);
    if (k < size) progress(`[1] only ${connected} agents: the batch of ${size} runs with ${k}`);
    const times: number[] = [];
    const serverMs: number[] = [];
    let allSuccess = true;
    let truncated = false;
    const problems: string[] = [];
    const probe = healthzProbe(f.url, 100);
    const cpu0 = cpuSeconds(f.pid);
    const wait0 = runqueueWaitSeconds(f.pid);
    const simCpu0 = f.sims.map((s) => cpuSeconds(s.proc.child.pid));
    const w0 = performance.now();
    for (let r = 0; r < reps; r++) {
      // Keep time for phase 2 (but measure each size at least once).
      if (r > 0 && remainingS() < (size === 1000 ? 150 : 120)) {
        truncated = true;
        break;
      }
      // A different slice of the fleet each time.
      const start = (r * 7919 * 13) % n;
      const agents = Array.from({ length: k }, (_, j) => allCodes[(start + j) % n] as string);
      const res = await timedFetch(`${f.url}/api/v1/agents/batch/restart`, batchBody(agents));
      times.push(res.ms);
      let ok = res.status === 200;
      if (ok) {
        const body = JSON.parse(res.text) as {
          total: number;
          success: number;
          duration_ms: number;
          results: { agent_code: string; package: string; success: boolean; error?: string }[];
        };
        serverMs.push(body.duration_ms);
        const seen = new Set(
          body.results.filter((x) => x.success && x.package === 'web').map((x) => x.agent_code),
        );
        ok =
          body.total === k &&
          body.success === k &&
          body.results.length === k &&
          agents.every((a) => seen.has(a));
        if (!ok) {
          const bad = body.results.find((x) => !x.success);
          problems.push(
            `total ${body.total}, success ${body.success}; e.g. ${bad?.agent_code}: ${bad?.error}`,
          );
        }
      } else {
        problems.push(`HTTP ${res.status}: ${res.text.slice(0, 200)}`);
      }
      allSuccess &&= ok;
    }
    const probeStats = await probe.stop();
    const windowS = (performance.now() - w0) / 1000;
    batch[String(size)] = {
      agents: k,
      packages_per_agent: 1,
      repetitions: times.length,
      round_trip_ms: dist(times),
      server_duration_ms: dist(serverMs),
      all_success: allSuccess && times.length > 0,
      ...(truncated ? { truncated: true } : {}),
      ...(problems.length ? { problems: problems.slice(0, 5) } : {}),
      controller_cpu_percent: round(((cpuSeconds(f.pid) - cpu0) / windowS) * 100),
      controller_waiting_for_cpu_percent: round(((runqueueWaitSeconds(f.pid) - wait0) / windowS) * 100),
      simulators_cpu_percent: round(
        (f.sims.reduce((a, s, i) => a + (cpuSeconds(s.proc.child.pid) - (simCpu0[i] ?? 0)), 0) / windowS) *
          100,
      ),
      healthz_latency_ms_during: probeStats,
    };
    progress(`[1] batch ${size}: ${JSON.stringify(batch[String(size)])}`);
  }

  phase.api_latency_ms = {
    list_page_1000: round((await timedFetch(`${f.url}/api/v1/agents?page=1&pageSize=1000`)).ms),
    list_filtered_zone_group: round(
      (await timedFetch(`${f.url}/api/v1/agents?zone=z3&group=g13&pageSize=100`)).ms,
    ),
    get_one: round((await timedFetch(`${f.url}/api/v1/agents/${agentCode(PREFIX, 42)}`)).ms),
    metrics_scrape: round((await timedFetch(`${f.url}/metrics`)).ms),
  };
  phase.agents_connected_at_end = await connectedAgents(f.url);
  phase.invalid_frames_seen_by_agents = f.sims.reduce((a, s) => a + (s.stats?.invalidFrames ?? 0), 0);
  phase.controller_rss_peak_bytes = statusBytes(f.pid, 'VmHWM');
  progress(`[1] stopping the controller with ${String(phase.agents_connected_at_end)} agents connected`);
  phase.controller_graceful_stop = await stopFleet(f);
  return connected;
}

async function phaseHeartbeats(n: number, mode: Mode): Promise<void> {
  progress(`[2 ${mode}] starting a controller with heartbeat_interval 1s`);
  const f = await startControllerProcess(`2-${mode}`, '1s', mode);
  const N = Math.min(n, f.fdCap);
  // Whatever time is left, minus the settle, the window and the stop.
  const connect = await connectFleet(
    f,
    '2',
    N,
    Math.max(20, Math.min(180, remainingS() - WINDOW_S - 45)),
    mode,
  );
  const connected = connect.agents_connected;
  const phase: Record<string, unknown> = { heartbeat_interval_ms: 1000, connect };
  result.phase_2_heartbeat_1s = phase;
  phase.controller_rss_after_connect_bytes = statusBytes(f.pid, 'VmRSS');
  // Steady heartbeats: every agent has been beating for at least one full interval.
  await sleep(3000);
  const windowS = Math.max(3, Math.min(WINDOW_S, remainingS() - 40));
  const m0 = await scrapeMetrics(f.url);
  const cpu0 = cpuSeconds(f.pid);
  const split0 = cpuSplit(f.pid);
  const wait0 = runqueueWaitSeconds(f.pid);
  const w0 = performance.now();
  const simStats0 = f.sims.map((s) => s.stats);
  const simCpu0 = f.sims.map((s) => cpuSeconds(s.proc.child.pid));
  progress(`[2] measuring heartbeats for ${windowS} s`);
  const probe = healthzProbe(f.url);
  await sleep(windowS * 1000);
  const healthz = await probe.stop();
  const m1 = await scrapeMetrics(f.url);
  const cpu1 = cpuSeconds(f.pid);
  const split1 = cpuSplit(f.pid);
  const wait1 = runqueueWaitSeconds(f.pid);
  const measuredS = (performance.now() - w0) / 1000;
  const simStats1 = f.sims.map((s) => s.stats);
  const simCpuPercent = f.sims.reduce(
    (a, s, i) => a + ((cpuSeconds(s.proc.child.pid) - (simCpu0[i] ?? 0)) / measuredS) * 100,
    0,
  );
  const handled = ((m1.get(HEARTBEATS_TOTAL) ?? 0) - (m0.get(HEARTBEATS_TOTAL) ?? 0)) / measuredS;
  const cpuPercent = ((cpu1 - cpu0) / measuredS) * 100;
  const heartbeats = {
    window_s: round(measuredS, 2),
    expected_per_s: connected,
    sent_per_s: Math.round(sentRate(simStats0, simStats1)),
    handled_per_s: Math.round(handled),
    controller_cpu_percent: round(cpuPercent),
    controller_cpu_percent_user: round(((split1.user - split0.user) / measuredS) * 100),
    controller_cpu_percent_system: round(((split1.system - split0.system) / measuredS) * 100),
    // Runnable but not running: CPU taken by other processes (simulators, other work on the machine).
    controller_waiting_for_cpu_percent: round(((wait1 - wait0) / measuredS) * 100),
    controller_cpu_us_per_heartbeat: round(((cpu1 - cpu0) / (handled * measuredS)) * 1e6, 1),
    healthz_latency_ms: healthz,
    // prom-client's event-loop delay histogram over the window (reset at each scrape; 10 ms resolution).
    controller_eventloop_lag_ms: {
      p50: round((m1.get('opsplane_controller_nodejs_eventloop_lag_p50_seconds') ?? NaN) * 1000, 1),
      p99: round((m1.get('opsplane_controller_nodejs_eventloop_lag_p99_seconds') ?? NaN) * 1000, 1),
      max: round((m1.get('opsplane_controller_nodejs_eventloop_lag_max_seconds') ?? NaN) * 1000, 1),
    },
    simulators_cpu_percent: round(simCpuPercent),
  };
  Object.assign(result, {
    heartbeat_agents: connected,
    heartbeats_per_s: heartbeats.handled_per_s,
    heartbeat_controller_cpu_percent: heartbeats.controller_cpu_percent,
    heartbeat_healthz_p99_ms: healthz.p99,
  });
  phase.heartbeats = heartbeats;
  progress(`[2] heartbeats: ${JSON.stringify(heartbeats)}`);

  phase.agents_connected_at_end = await connectedAgents(f.url);
  phase.invalid_frames_seen_by_agents = f.sims.reduce((a, s) => a + (s.stats?.invalidFrames ?? 0), 0);
  phase.controller_rss_peak_bytes = statusBytes(f.pid, 'VmHWM');
  progress(`[2] stopping the controller with ${String(phase.agents_connected_at_end)} agents connected`);
  phase.controller_graceful_stop = await stopFleet(f);
}

async function main(): Promise<void> {
  progress('starting etcd');
  etcd = await startEtcd();
  tmp = await tempDir('opsplane-controller-bench-');
  caDir = join(tmp.path, 'ca');
  await initCa(caDir);
  const ca = readFileSync(join(caDir, 'ca-bundle.crt'), 'utf8');
  const requested = process.env.BENCH_AGENTS ? Number(process.env.BENCH_AGENTS) : undefined;
  for (const mode of MODES) {
    if (mode === 'tls') await issueSimulatedCertificates(Math.min(requested ?? DEFAULT_AGENTS, 65_000));
    deadline = Date.now() + modeLimitS(mode) * 1000;
    result = { mode };
    (report.modes as Record<string, unknown>)[mode] = result;
    if (mode === 'tls') {
      const dispatcher = new UndiciAgent({ connect: { ca, servername: 'localhost' } });
      benchFetch = ((url: string, init?: RequestInit) =>
        undiciFetch(url, { ...((init ?? {}) as object), dispatcher })) as unknown as typeof fetch;
    } else {
      benchFetch = fetch;
    }
    const connected = await phaseBatch(requested, mode);
    await phaseHeartbeats(connected, mode);
  }
  report.comparison = comparison();
}

/**
 * Certificates for simulated agents 0…n−1 (one shared key), written once for every TLS phase.
 * n is capped by this process's own fd limit (what any one controller here can hold).
 */
async function issueSimulatedCertificates(requested: number): Promise<void> {
  const n = Math.min(requested, fdLimits(process.pid).soft);
  const s0 = Date.now();
  progress(`issuing ${n} simulated agent certificates (not measured)`);
  const ca = await CertificateAuthority.load(caDir);
  const ids = Array.from({ length: n }, (_, i) => ({
    kind: 'agent' as const,
    name: agentCode(PREFIX, i),
    area: AREA,
  }));
  const { keyPem, certs } = await ca.issueSharedKey(ids);
  const out: SimCerts = { keyPem, certs: certs.map((c) => c.certPem) };
  writeFileSync(join(caDir, SIM_CERTS_FILE), JSON.stringify(out), { mode: 0o600 });
  report.simulated_certificates = { count: n, issue_ms: Date.now() - s0 };
  progress(`issued ${n} certificates in ${Date.now() - s0} ms`);
}

/** The figures the goals are about, side by side. */
function comparison(): Record<string, unknown> {
  const modes = report.modes as Record<string, Record<string, unknown> | undefined>;
  const pick = (m: Record<string, unknown> | undefined) => {
    const b10k = (
      (m?.phase_1_production_heartbeat as Record<string, unknown> | undefined)?.batch_restart as
        Record<string, { round_trip_ms?: { p99?: number }; all_success?: boolean } | undefined> | undefined
    )?.['10000'];
    return {
      agents: m?.agents_connected ?? null,
      connect_rate_agents_per_s: m?.connect_rate_agents_per_s ?? null,
      controller_cpu_ms_per_connect:
        (
          (m?.phase_1_production_heartbeat as Record<string, unknown> | undefined)?.connect as
            Record<string, unknown> | undefined
        )?.controller_cpu_ms_per_connect ?? null,
      rss_per_agent_bytes: m?.rss_per_agent_bytes ?? null,
      heartbeats_per_s: m?.heartbeats_per_s ?? null,
      heartbeat_agents: m?.heartbeat_agents ?? null,
      heartbeat_controller_cpu_percent: m?.heartbeat_controller_cpu_percent ?? null,
      batch_10000_p99_ms: b10k?.round_trip_ms?.p99 ?? null,
      batch_10000_all_success: b10k?.all_success ?? null,
    };
  };
  const plain = pick(modes.plain);
  const tls = pick(modes.tls);
  const num = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);
  const ratio = (a: unknown, b: unknown) => {
    const x = num(a);
    const y = num(b);
    return x !== undefined && y ? round(x / y, 2) : null;
  };
  return {
    plain,
    tls,
    tls_vs_plain: {
      connect_rate: ratio(tls.connect_rate_agents_per_s, plain.connect_rate_agents_per_s),
      controller_cpu_per_connect: ratio(
        tls.controller_cpu_ms_per_connect,
        plain.controller_cpu_ms_per_connect,
      ),
      rss_per_agent: ratio(tls.rss_per_agent_bytes, plain.rss_per_agent_bytes),
      heartbeats_per_s: ratio(tls.heartbeats_per_s, plain.heartbeats_per_s),
      batch_10000_p99: ratio(tls.batch_10000_p99_ms, plain.batch_10000_p99_ms),
    },
    goals: {
      tls_rss_per_agent_at_most_2x_plain:
        num(tls.rss_per_agent_bytes) !== undefined && num(plain.rss_per_agent_bytes) !== undefined
          ? (tls.rss_per_agent_bytes as number) <= 2 * (plain.rss_per_agent_bytes as number)
          : null,
      tls_rss_per_agent_at_most_40kb:
        num(tls.rss_per_agent_bytes) !== undefined ? (tls.rss_per_agent_bytes as number) <= 40 * 1024 : null,
      tls_heartbeats_at_least_10000_per_s:
        num(tls.heartbeats_per_s) !== undefined ? (tls.heartbeats_per_s as number) >= 10_000 : null,
      tls_batch_10000_p99_at_most_2s:
        num(tls.batch_10000_p99_ms) !== undefined ? (tls.batch_10000_p99_ms as number) <= 2000 : null,
    },
  };
}

let finished = false;
let timedOut = false;

/** Prints the one JSON object (once, whichever of success, failure or the time limit comes first). */
function finish(error?: string): void {
  if (finished) return;
  finished = true;
  if (!report.comparison) report.comparison = comparison();
  (report.machine as Record<string, unknown>).loadavg_1m = {
    // Other work on the machine competes with the controller and simulators for the same cores.
    at_start: round(loadAtStart, 2),
    at_end: round(loadavg()[0] ?? 0, 2),
  };
  try {
    // PSI: share of the last 60 s in which some runnable task waited for a CPU, machine-wide.
    const some = /^some avg10=\S+ avg60=(\S+)/m.exec(readFileSync('/proc/pressure/cpu', 'utf8'));
    if (some?.[1])
      (report.machine as Record<string, unknown>).cpu_pressure_some_avg60_at_end = Number(some[1]);
  } catch {
    /* no PSI */
  }
  report.total_s = round((Date.now() - t0) / 1000);
  if (error) report.error = error;
  process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
}

const TIME_LIMIT_ERROR = `time limit of ${TOTAL_LIMIT_S} s exceeded`;
const watchdog = setTimeout(() => {
  timedOut = true;
  progress(`${TIME_LIMIT_ERROR}; stopping everything`);
  void cleanup().finally(() => {
    finish(TIME_LIMIT_ERROR);
    process.exit(1);
  });
}, TOTAL_LIMIT_S * 1000);
watchdog.unref();

try {
  await main();
  await cleanup();
  finish();
  process.exit(0);
} catch (err) {
  // After the time limit, processes stopped under the bench's feet are not the error to report.
  if (!timedOut) {
    progress(`failed: ${(err as Error).stack ?? String(err)}`);
    for (const p of live)
      if (p.name.startsWith('controller')) progress(`${p.name} output:\n${p.output().slice(-3000)}`);
  }
  await cleanup();
  finish(timedOut ? TIME_LIMIT_ERROR : (err as Error).message);
  process.exit(1);
}
