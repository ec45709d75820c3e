/**
 * Distribution benchmark: N simulated agents (default 1 000) converging on a new 5 MB package
 * through one controller. Prints ONE JSON object on stdout; progress goes to stderr.
 *
 *   npm run bench:distribution
 *
 * Processes (all started and stopped here): etcd (startEtcd), the controller as deployed
 * (`node packages/cli/dist/src/main.js controller --config …`, its CPU and peak RSS read from
 * /proc/<pid>), and the agents (distribution-simulator.ts, one process: the real protocol, the
 * real relay downloads, sha256 verified per agent).
 *
 * What the bench does is what the server does: sign the package, push one copy to the
 * controller with the platform's ensureArtifact (the bytes it sends are counted: goal ≈ one
 * copy per controller), then hand every agent its desired state in one POST
 * /api/v1/agents/desired-state. Converged = the controller lists every agent `applied` at the
 * revision (from their heartbeats), which each reports only after its download verified.
 *
 * Environment (all optional): BENCH_AGENTS (1000), BENCH_SIZE_MB (5), BENCH_DL_CONCURRENCY
 * (downloads in flight across the fleet, 250), BENCH_BANDWIDTH (the controller's
 * artifacts.bandwidth, e.g. 200MiB; default unlimited), BENCH_TIME_LIMIT_S (240).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { MAX_PAGE_SIZE, type AgentsResponse, type DesiredState } from '@opsplane/models';
import { ControllerClient, ensureArtifact } from '@opsplane/platform';
import {
  createArtifactSigner,
  freePort,
  packageArchive,
  signArtifact,
  sleep,
  spawnTracked,
  startEtcd,
  tempDir,
  type EtcdHandle,
  type TrackedProcess,
} from '@opsplane/test-support';
import { distAgentCode, type DistSimEvent, type DistSimOptions } from './distribution-simulator.js';

const AGENTS = Number(process.env.BENCH_AGENTS ?? 1000);
const SIZE = Math.round(Number(process.env.BENCH_SIZE_MB ?? 5) * 1024 * 1024);
const DL_CONCURRENCY = Number(process.env.BENCH_DL_CONCURRENCY ?? 250);
const BANDWIDTH = process.env.BENCH_BANDWIDTH;
const TIME_LIMIT_S = Number(process.env.BENCH_TIME_LIMIT_S ?? 240);
const AREA = 'bench';
const SECRET = 'bench-secret-0123456789abcdef';
const TOKEN = 'bench-controller-token';
const PREFIX = 'dist-';

const t0 = Date.now();
const progress = (msg: string) =>
  process.stderr.write(`[bench ${((Date.now() - t0) / 1000).toFixed(1)}s] ${msg}\n`);
const round = (x: number, digits = 1) => Math.round(x * 10 ** digits) / 10 ** digits;

const CLK_TCK = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** CPU seconds (user + system) the process used so far (/proc/<pid>/stat fields 14 and 15). */
function cpuSeconds(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
  return (Number(f[11]) + Number(f[12])) / CLK_TCK;
}

/** A `kB` line of /proc/<pid>/status, in bytes (VmHWM: peak RSS). */
function statusBytes(pid: number, key: 'VmRSS' | 'VmHWM'): number {
  const m = new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m?.[1] ?? NaN) * 1024;
}

async function scrape(url: string, name: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  let sum = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith(`${name} `) || line.startsWith(`${name}{`)) sum += Number(line.split(' ').pop());
  }
  return sum;
}

/** Agents the controller lists as applied at `revision`. */
async function appliedCount(url: string, policy: string, revision: number): Promise<number> {
  let n = 0;
  for (let page = 1; ; page++) {
    const res = await fetch(`${url}/api/v1/agents?page=${page}&pageSize=${MAX_PAGE_SIZE}`, {
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    const body = (await res.json()) as AgentsResponse;
    for (const a of body.agents) {
      const d = a.distribution;
      if (d?.policy === policy && d.revision === revision && d.state === 'applied') n++;
    }
    if (page * MAX_PAGE_SIZE >= body.total) return n;
  }
}

let etcd: EtcdHandle | undefined;
let tmp: { path: string; cleanup: () => Promise<void> } | undefined;
const procs: TrackedProcess[] = [];

async function cleanup(): Promise<void> {
  await Promise.all(procs.map((p) => p.stop(5000).catch(() => undefined)));
  await etcd?.stop().catch(() => undefined);
  await tmp?.cleanup().catch(() => undefined);
}

async function main(): Promise<Record<string, unknown>> {
  const cliMain = fileURLToPath(new URL('../../../cli/dist/src/main.js', import.meta.url));
  if (!existsSync(cliMain)) throw new Error(`${cliMain} missing: run npm run build first`);
  etcd = await startEtcd();
  tmp = await tempDir('opsplane-dist-bench-');
  const signer = createArtifactSigner();
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const configFile = join(tmp.path, 'controller.yaml');
  writeFileSync(
    configFile,
    [
      `area: ${AREA}`,
      'id: dist-bench',
      `listen: 127.0.0.1:${port}`,
      'etcd:',
      `  endpoints: [${etcd.endpoints.map((e) => JSON.stringify(e)).join(', ')}]`,
      'agents:',
      '  heartbeat_interval: 10s',
      'http:',
      '  rate_limit:',
      '    max: 0',
      'artifacts:',
      `  dir: ${join(tmp.path, 'cache')}`,
      `  keys: ["${signer.publicKey}"]`,
      ...(BANDWIDTH ? [`  bandwidth: ${BANDWIDTH}`] : []),
      '',
    ].join('\n'),
  );
  const controller = spawnTracked(
    'controller',
    process.execPath,
    [cliMain, 'controller', '--config', configFile],
    {
      env: {
        ...process.env,
        OPSPLANE_AGENT_SECRET: SECRET,
        OPSPLANE_CONTROLLER_TOKEN: TOKEN,
        OPSPLANE_LOG_LEVEL: 'warn',
      },
    },
  );
  procs.push(controller);
  const pid = controller.child.pid!;
  for (let i = 0; ; i++) {
    if ((await fetch(`${url}/healthz`).catch(() => undefined))?.ok) break;
    if (i > 300) throw new Error('controller did not come up');
    await sleep(100);
  }
  progress(`controller pid ${pid} up at ${url}`);

  const simOpts: DistSimOptions = {
    url,
    area: AREA,
    secret: SECRET,
    prefix: PREFIX,
    count: AGENTS,
    downloadConcurrency: DL_CONCURRENCY,
  };
  const script = fileURLToPath(new URL('./distribution-simulator.js', import.meta.url));
  const sim = spawnTracked('agents', process.execPath, [script, JSON.stringify(simOpts)]);
  procs.push(sim);
  let ready: Extract<DistSimEvent, { event: 'ready' }> | undefined;
  let stats: Extract<DistSimEvent, { event: 'stats' }> | undefined;
  createInterface({ input: sim.child.stdout! }).on('line', (line) => {
    try {
      const e = JSON.parse(line) as DistSimEvent;
      if (e.event === 'ready') ready = e;
      else stats = e;
    } catch {
      /* not ours */
    }
  });
  while (!ready) await sleep(100);
  progress(`${ready.connected} agents connected (${ready.failed} failed)`);

  const bytes = packageArchive({ manifest: 'name: web\nversion: 2.0.0\n', padTo: SIZE });
  const ref = signArtifact(signer, bytes, { name: 'web', version: '2.0.0' });
  const desired: DesiredState = {
    policy: 'web-prod',
    revision: 1,
    packages: [{ name: 'web', version: '2.0.0', artifact: ref, configs: [], config_hash: '' }],
    correct_drift: false,
    health_timeout_ms: 60_000,
  };
  const client = new ControllerClient(url, AREA, { apiToken: TOKEN, timeoutMs: 60_000 });
  const cpuBefore = cpuSeconds(pid);
  const rssBefore = statusBytes(pid, 'VmRSS');

  // ---- the server's part: one copy to the controller, then the desired state to every agent.
  const start = performance.now();
  let serverBytes = 0;
  const uploaded = await ensureArtifact(client, ref, (offset) => {
    serverBytes += bytes.length - offset;
    return bytes.subarray(offset);
  });
  const uploadMs = performance.now() - start;
  const codes = Array.from({ length: AGENTS }, (_, i) => distAgentCode(PREFIX, i));
  const pushed = await client.pushDesiredState({
    items: codes.map((agent_code) => ({ agent_code, desired })),
  });
  const pushMs = performance.now() - start - uploadMs;
  const accepted = pushed.results.filter((r) => r.success).length;
  progress(`artifact uploaded in ${round(uploadMs)} ms; desired state accepted by ${accepted}/${AGENTS}`);

  // ---- converged: the controller lists every agent applied.
  let converged = 0;
  const deadline = t0 + TIME_LIMIT_S * 1000;
  let lastLog = 0;
  while (Date.now() < deadline) {
    converged = await appliedCount(url, desired.policy, desired.revision);
    if (converged >= accepted) break;
    if (Date.now() - lastLog > 2000) {
      lastLog = Date.now();
      progress(`${converged}/${accepted} applied; simulator: ${JSON.stringify(stats ?? {})}`);
    }
    await sleep(200);
  }
  const convergeMs = performance.now() - start;
  const cpu = cpuSeconds(pid) - cpuBefore;
  const served = await scrape(url, 'opsplane_controller_artifact_bytes_served_total');
  const received = await scrape(url, 'opsplane_controller_artifact_bytes_received_total');
  const throttled = await scrape(url, 'opsplane_controller_artifact_throttled_seconds_total');
  await sleep(600); // one more stats line from the simulator
  await client.close();
  return {
    bench: 'distribution',
    agents: AGENTS,
    connected: ready.connected,
    package_bytes: bytes.length,
    download_concurrency: DL_CONCURRENCY,
    bandwidth_limit: BANDWIDTH ?? 'unlimited',
    converged,
    all_converged: converged === AGENTS,
    wall_time_to_converge_ms: Math.round(convergeMs),
    phases_ms: { upload_one_copy: Math.round(uploadMs), push_desired_state: Math.round(pushMs) },
    server_bytes_sent: serverBytes,
    server_copies: round(serverBytes / bytes.length, 2),
    controller: {
      bytes_received: received,
      bytes_served: served,
      served_copies: round(served / bytes.length, 2),
      cpu_seconds: round(cpu, 2),
      rss_before_mb: round(rssBefore / 2 ** 20),
      peak_rss_mb: round(statusBytes(pid, 'VmHWM') / 2 ** 20),
      throttled_seconds: round(throttled, 2),
      upload_complete: uploaded.complete,
    },
    agents_side: stats ?? null,
    machine: { cpus: availableParallelism(), node: process.version },
  };
}

const hardStop = setTimeout(
  () => {
    progress('time limit exceeded; stopping');
    void cleanup().then(() => process.exit(1));
  },
  (TIME_LIMIT_S + 60) * 1000,
);
main()
  .then(async (result) => {
    await cleanup();
    clearTimeout(hardStop);
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  })
  .catch(async (err: Error) => {
    progress(`failed: ${err.stack ?? err.message}`);
    await cleanup();
    clearTimeout(hardStop);
    process.stdout.write(`${JSON.stringify({ bench: 'distribution', error: err.message })}\n`);
    process.exitCode = 1;
  });
