/**
 * A whole Opsplane fleet as real processes, for end-to-end tests and demos: a real etcd, the
 * controllers of each area as `opsplane controller` processes, and agents as `opsplane agent`
 * processes, each with its own temp packages dir holding small real programs as packages:
 *
 * - `web`: an HTTP service on its own loopback port. GET /health answers 200 while its config
 *   file (`config/web.json`, read once at start, so a new config takes effect on restart) does
 *   not say `"healthy": false`, else 503; GET / answers its pid and config. The agent checks it
 *   with an `http` health check.
 * - `collector`: reads (tails) `config/collector.json` every 100 ms and records what it saw in
 *   `<package dir>/collector-state.json`. A config with `"exit_code": N` makes it exit with N
 *   right after starting (a crasher). `process` health check.
 *
 * Both restart fast (`always`, backoff 100 ms → 400 ms, failed after 5 fast crashes).
 *
 * Cleanup: `stop()` kills every process (controllers, agents, packages, etcd unless passed in)
 * and removes the temp dir; it is idempotent. Packages are found by a per-fleet FLEET_TAG in
 * their environment (/proc), since they run in their own process groups and outlive a killed
 * agent by design. If the creating process dies without stop() (a test runner killed by a
 * signal runs no exit handlers), nothing lingers for more than about a second: controllers and
 * agents get a preloaded watchdog (`node --import watchdog.mjs main.js …`), packages watch the
 * owner pid themselves, and a small reaper process kills the fleet's etcd and removes the dirs.
 *
 * The CLI is run by path (`node packages/cli/dist/src/main.js`, found relative to this file;
 * override with `cliMain` or OPSPLANE_CLI_MAIN), so the fleet exercises exactly what operators
 * run. Build first (`npx tsc -b tsconfig.build.json`).
 *
 * This module sits below every other @opsplane package and imports none of them: agent tokens
 * are computed here with the documented formula (HMAC-SHA256(secret, "<area>:<code>") in hex,
 * see packages/models/src/protocol.ts), config files are written as JSON (valid YAML).
 */
import { execFile } from 'node:child_process';
import { createHmac, randomBytes, randomInt } from 'node:crypto';
import { createServer } from 'node:net';
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { startEtcd, type EtcdHandle } from './etcd.js';
import { freePort } from './ports.js';
import { spawnTracked, type TrackedProcess } from './processes.js';
import { sleep, tempDir, waitFor } from './wait.js';

// ------------------------------------------------------------------------------------ options

export type FleetPackageKind = 'web' | 'collector';

export interface FleetPackageSpec {
  /** Package name (also its directory name). Default: the kind. */
  name?: string;
  kind: FleetPackageKind;
  /** Initial content of the package's config file (an object is written as JSON). */
  config?: string | Record<string, unknown>;
  /** Default true. */
  autostart?: boolean;
  /** Overrides merged into package.yaml's `restart_policy`. */
  restartPolicy?: Record<string, unknown>;
  /** Overrides merged into package.yaml's `health_check`. */
  healthCheck?: Record<string, unknown>;
}

export interface FleetAreaSpec {
  name: string;
  /** Controllers of the area. Default 1. */
  controllers?: number;
  /** Agents of the area. Default 1. */
  agents?: number;
}

export interface FleetOptions {
  /** Areas with their controller and agent counts. Default: one area `area-1`, 1 controller, 1 agent. */
  areas?: readonly FleetAreaSpec[];
  /**
   * Packages of every agent: a list, or a function of the agent (area, code, index within the
   * area). Default: a `web` and a `collector`.
   */
  packages?:
    | readonly FleetPackageSpec[]
    | ((agent: { area: string; code: string; index: number }) => readonly FleetPackageSpec[]);
  /** Agent secret per area (at least 16 characters). Default: random per area. */
  secrets?: Readonly<Record<string, string>>;
  /** When set, controllers require `Authorization: Bearer <apiToken>` on /api/v1 (and use it between peers). */
  apiToken?: string;
  /** Use this etcd instead of starting one (it is then not stopped by stop()). */
  etcd?: EtcdHandle;
  /** etcd key prefix of the registrations. Default `controllers/` (pass a unique one on a shared etcd). */
  prefix?: string;
  /** Agent code of the n-th (0-based) agent of an area. Default `<area>-agent-<n+1>`. */
  agentCode?: (area: string, index: number) => string;
  /** Controller id of the n-th (0-based) controller of an area. Default `<area>-ctrl-<a|b|c…>`. */
  controllerId?: (area: string, index: number) => string;
  /** Timing of controllers and agents (duration strings). Defaults are short, for tests. */
  timing?: {
    heartbeatInterval?: string; // default 1s
    offlineAfter?: string; // default 3s
    leaseTtl?: string; // default 3s
    refreshInterval?: string; // default 1s
    requestTimeout?: string; // default 5s
    perAgentTimeout?: string; // default 15s
    reconnectInitial?: string; // agents; default 200ms
    reconnectMax?: string; // agents; default 2s
  };
  /** Extra controller config (file-shaped, snake_case), merged over the generated one. */
  controllerConfig?: Record<string, unknown>;
  /** Extra agent config (file-shaped, snake_case), merged over the generated one. */
  agentConfig?: Record<string, unknown>;
  /** OPSPLANE_LOG_LEVEL of the children. Default `debug` with OPSPLANE_TEST_VERBOSE, else `info`. */
  logLevel?: string;
  /** Path of the CLI's main.js. Default: $OPSPLANE_CLI_MAIN or <repo>/packages/cli/dist/src/main.js. */
  cliMain?: string;
  /** How long start-up may take in total. Default 60 s. */
  startTimeoutMs?: number;
  /**
   * The address controllers listen on and register in etcd. Default 127.0.0.1; tests whose
   * agents run on other hosts (network namespaces, see startSshHosts) pass an address those
   * hosts can reach.
   */
  controllerAddress?: string;
}

// ------------------------------------------------------------------------------------ handles

export interface FleetPackage {
  readonly name: string;
  readonly kind: FleetPackageKind;
  /** The package directory (holds package.yaml and the program). */
  readonly dir: string;
  /** Its config dir (`configs` operations write here). */
  readonly configDir: string;
  /** The config file the program reads: `web.json` / `collector.json`. */
  readonly configFileName: string;
  /** Absolute path of that file. */
  readonly configPath: string;
  /** `web` only: its loopback port and health URL. */
  readonly port: number | undefined;
  readonly healthUrl: string | undefined;
  /** Current content of the config file. */
  readConfig(): Promise<string>;
  /** Replaces the config file directly on disk (as an operator editing it would). */
  writeConfig(content: string | Record<string, unknown>): Promise<void>;
  /** What the package printed (the agent's `data_dir/logs/<name>.log`), '' if nothing yet. */
  log(): Promise<string>;
}

export interface FleetController {
  readonly id: string;
  readonly area: string;
  /** http://<controllerAddress>:<port> (127.0.0.1 by default) */
  readonly url: string;
  /** <controllerAddress>:<port>, as registered in etcd. */
  readonly address: string;
  /** `<prefix><area>/<id>` */
  readonly etcdKey: string;
  readonly configPath: string;
  /** The current process (replaced by start()). */
  readonly process: TrackedProcess;
  readonly running: boolean;
  /** SIGKILL (no deregistration: the etcd key stays until its lease expires). */
  kill(): Promise<void>;
  /** SIGTERM (graceful: agents are told to go, the key is deleted). */
  stop(graceMs?: number): Promise<void>;
  /** Starts it again (same id, port, config); resolves once it serves and is registered. */
  start(): Promise<void>;
}

export interface FleetAgent {
  readonly code: string;
  readonly area: string;
  readonly token: string;
  /** Controller base URLs in its config, in its failover order. */
  readonly controllerUrls: readonly string[];
  readonly dir: string;
  readonly packagesDir: string;
  readonly dataDir: string;
  readonly configPath: string;
  /** Its local /healthz and /metrics endpoint. */
  readonly metricsUrl: string;
  readonly packages: readonly FleetPackage[];
  package(name: string): FleetPackage;
  readonly process: TrackedProcess;
  readonly running: boolean;
  /** SIGKILL the agent (its packages keep running, as they would on a real host). */
  kill(): Promise<void>;
  /** SIGTERM (graceful; packages keep running unless stop_packages_on_exit). */
  stop(graceMs?: number): Promise<void>;
  /** Starts the agent again with the same config and data dir (it adopts running packages). */
  start(opts?: { waitOnline?: boolean }): Promise<void>;
  /** The agent's own view (GET <metrics>/healthz): connected, controller URL, overall health. */
  healthz(): Promise<{ connected: boolean; controller: string | null; overall_health: string }>;
  /** Base URL of the controller it is connected to now, undefined when not connected. */
  connectedController(): Promise<string | undefined>;
  /** Prometheus text of its /metrics. */
  metricsText(): Promise<string>;
}

export interface FleetApiResponse<T = unknown> {
  status: number;
  body: T;
  headers: Headers;
}

export interface AddAgentOptions {
  area: string;
  /** Default: the next `<area>-agent-<n>`. */
  code?: string;
  /** Default: the right token. Pass a wrong one to test refusal. */
  token?: string;
  /** Default: the fleet's package specs. */
  packages?: readonly FleetPackageSpec[];
  /** Default: every controller of the area, rotated by the agent's index. */
  controllerUrls?: readonly string[];
  /** Wait until a controller lists it online. Default true. */
  waitOnline?: boolean;
  /** Extra agent config for this agent (file-shaped), merged over the fleet's. */
  agentConfig?: Record<string, unknown>;
}

export interface Fleet {
  readonly etcd: EtcdHandle;
  /** Temp dir holding everything. */
  readonly root: string;
  readonly prefix: string;
  readonly apiToken: string | undefined;
  readonly areas: readonly string[];
  readonly controllers: readonly FleetController[];
  readonly agents: readonly FleetAgent[];
  secret(area: string): string;
  controllersOf(area: string): FleetController[];
  agentsOf(area: string): FleetAgent[];
  controller(id: string): FleetController;
  agent(code: string): FleetAgent;
  /** Headers for /api/v1 (Authorization when the fleet has an API token). */
  apiHeaders(): Record<string, string>;
  /** GET/POST against a controller (URL or handle); JSON in and out, token added. */
  api<T = unknown>(
    controller: FleetController | string,
    method: 'GET' | 'POST',
    path: string,
    body?: unknown,
  ): Promise<FleetApiResponse<T>>;
  /** The controller whose GET /agents lists the agent online (the one holding it), or undefined. */
  holderOf(code: string): Promise<FleetController | undefined>;
  /** Waits until the agent is listed online by a controller of its area; returns that controller. */
  waitOnline(agent: FleetAgent | string, timeoutMs?: number): Promise<FleetController>;
  /** Adds (and starts) one more agent. */
  addAgent(opts: AddAgentOptions): Promise<FleetAgent>;
  /** Pids of package processes still alive (found through /proc by the fleet's tag). */
  packagePids(): number[];
  /** Kills everything and removes the temp dir. `graceful`: SIGTERM first. Idempotent. */
  stop(opts?: { graceful?: boolean }): Promise<void>;
}

// ------------------------------------------------------------------------------------ internals

/** HMAC-SHA256(secret, "<area>:<code>") in hex — the agent token formula (models/protocol.ts). */
export function fleetAgentToken(secret: string, area: string, code: string): string {
  return createHmac('sha256', secret).update(`${area}:${code}`, 'utf8').digest('hex');
}

/** The kernel's ephemeral port range (ports it hands out for outgoing connections and port 0). */
function ephemeralRange(): [number, number] {
  try {
    const [lo, hi] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8')
      .trim()
      .split(/\s+/)
      .map(Number);
    if (lo !== undefined && hi !== undefined && lo > 1024 && hi > lo) return [lo, hi];
  } catch {
    /* not Linux */
  }
  return [32768, 60999];
}

function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.unref();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

const stablePorts = new Set<number>();

/**
 * A free loopback port below the ephemeral range. Fleet processes are killed and restarted on
 * the same port (a package on restart, a controller or agent by start()); a port from the
 * ephemeral range may meanwhile become the local end of some outgoing connection on a busy
 * machine, and the restarted process would fail with EADDRINUSE.
 */
async function stablePort(): Promise<number> {
  const min = 10_000;
  const max = ephemeralRange()[0] - 1;
  if (max - min >= 1000) {
    for (let i = 0; i < 200; i++) {
      const p = min + randomInt(max - min);
      if (stablePorts.has(p)) continue;
      if (await canListen(p)) {
        stablePorts.add(p);
        return p;
      }
    }
  }
  return freePort();
}

/** The repo root: the nearest ancestor of this file whose package.json declares workspaces. */
function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pj = join(dir, 'package.json');
    if (existsSync(pj)) {
      try {
        const parsed = JSON.parse(readFileSync(pj, 'utf8')) as { workspaces?: unknown };
        if (parsed.workspaces) return dir;
      } catch {
        /* keep looking */
      }
    }
    const up = dirname(dir);
    if (up === dir)
      throw new Error('fleet: cannot find the repository root above ' + fileURLToPath(import.meta.url));
    dir = up;
  }
}

export function defaultCliMain(): string {
  return process.env.OPSPLANE_CLI_MAIN ?? join(repoRoot(), 'packages', 'cli', 'dist', 'src', 'main.js');
}

type Plain = Record<string, unknown>;
const isPlain = (v: unknown): v is Plain => typeof v === 'object' && v !== null && !Array.isArray(v);
function merge(a: Plain, b: Plain | undefined): Plain {
  const out: Plain = { ...a };
  for (const [k, v] of Object.entries(b ?? {})) {
    if (v === undefined) continue;
    const prev = out[k];
    out[k] = isPlain(prev) && isPlain(v) ? merge(prev, v) : v;
  }
  return out;
}

/** Files are JSON, which is valid YAML; readable enough and needs no YAML dependency here. */
const toYaml = (o: unknown) => JSON.stringify(o, null, 2) + '\n';
const configText = (c: string | Record<string, unknown>) =>
  typeof c === 'string' ? c : JSON.stringify(c) + '\n';

/** Env names the children must not inherit from the test process (they would override the files). */
const SCRUBBED_ENV = [
  'OPSPLANE_AGENT_TOKEN',
  'OPSPLANE_AGENT_SECRET',
  'OPSPLANE_CONTROLLER_TOKEN',
  'OPSPLANE_ETCD_ENDPOINTS',
  'OPSPLANE_LOG_LEVEL',
];
function childEnv(extra: Record<string, string | undefined>, logLevel: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const k of SCRUBBED_ENV) delete env[k];
  env.OPSPLANE_LOG_LEVEL = logLevel;
  env.FLEET_OWNER_PID = String(process.pid);
  for (const [k, v] of Object.entries(extra)) if (v !== undefined) env[k] = v;
  return env;
}

const running = (p: TrackedProcess | undefined) =>
  p !== undefined && p.child.exitCode === null && p.child.signalCode === null;

const WATCHDOG_SCRIPT = `// Preloaded into fleet controllers and agents: die with the process that started the fleet.
const owner = Number(process.env.FLEET_OWNER_PID);
if (owner > 0) {
  setInterval(() => {
    try { process.kill(owner, 0); } catch (e) { if (e.code === 'ESRCH') process.kill(process.pid, 'SIGKILL'); }
  }, 1000).unref();
}
`;

const REAPER_SCRIPT = `// Cleans up a fleet whose creator died without stopping it. Args: owner pid, tag, targets.
import { readdirSync, readFileSync, rmSync } from 'node:fs';
const [owner, tag, ...targets] = process.argv.slice(2);
const alive = (pid) => { try { process.kill(pid, 0); return true; } catch (e) { return e.code === 'EPERM'; } };
const kill = (pid) => { for (const t of [-pid, pid]) { try { process.kill(t, 'SIGKILL'); } catch {} } };
process.on('SIGPIPE', () => {});
process.stdout.on('error', () => {});
process.stderr.on('error', () => {});
setInterval(() => {
  if (alive(Number(owner))) return;
  for (const t of targets) if (t.startsWith('pid:')) kill(Number(t.slice(4)));
  const needle = Buffer.from('\\0FLEET_TAG=' + tag + '\\0');
  let entries = [];
  try { entries = readdirSync('/proc'); } catch {}
  for (const e of entries) {
    if (!/^\\d+$/.test(e)) continue;
    try {
      const env = Buffer.concat([Buffer.from([0]), readFileSync('/proc/' + e + '/environ')]);
      if (env.includes(needle)) kill(Number(e));
    } catch {}
  }
  for (const t of targets) {
    if (t.startsWith('dir:')) {
      try { rmSync(t.slice(4), { recursive: true, force: true }); } catch {}
    }
  }
  process.exit(0);
}, 1000);
`;

const WEB_SCRIPT = `// Fleet test package "web": HTTP service whose health depends on its config file.
import { createServer } from 'node:http';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
const owner = Number(process.env.FLEET_OWNER_PID);
if (process.env.FLEET_PID_DIR) {
  try { writeFileSync(join(process.env.FLEET_PID_DIR, String(process.pid)), process.env.OPSPLANE_PACKAGE_DIR ?? ''); } catch {}
}
setInterval(() => { try { process.kill(owner, 0); } catch { process.exit(0); } }, 1000).unref();
const file = join(process.env.OPSPLANE_CONFIG_DIR, process.env.FLEET_CONFIG_FILE);
let config;
try { config = JSON.parse(readFileSync(file, 'utf8')); } catch (e) { config = { error: String(e) }; }
if (typeof config.exit_code === 'number') { console.error('config says exit ' + config.exit_code); process.exit(config.exit_code); }
const startedAt = new Date().toISOString();
const server = createServer((req, res) => {
  const healthy = config.healthy !== false && config.error === undefined;
  const body = { pid: process.pid, started_at: startedAt, config, healthy };
  if (req.url === '/health') res.writeHead(healthy ? 200 : 503, { 'content-type': 'application/json' });
  else res.writeHead(200, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
});
server.listen(Number(process.env.FLEET_PORT), '127.0.0.1', () => console.log('web listening on ' + process.env.FLEET_PORT + ' pid ' + process.pid));
process.on('SIGTERM', () => { server.close(); server.closeAllConnections(); process.exit(0); });
`;

const COLLECTOR_SCRIPT = `// Fleet test package "collector": tails its config file; "exit_code" makes it crash.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
const owner = Number(process.env.FLEET_OWNER_PID);
if (process.env.FLEET_PID_DIR) {
  try { writeFileSync(join(process.env.FLEET_PID_DIR, String(process.pid)), process.env.OPSPLANE_PACKAGE_DIR ?? ''); } catch {}
}
const file = join(process.env.OPSPLANE_CONFIG_DIR, process.env.FLEET_CONFIG_FILE);
const read = () => { try { return JSON.parse(readFileSync(file, 'utf8')); } catch (e) { return { error: String(e) }; } };
const first = read();
if (typeof first.exit_code === 'number') { console.error('config says exit ' + first.exit_code); process.exit(first.exit_code); }
let reads = 0;
const tick = () => {
  try { process.kill(owner, 0); } catch { process.exit(0); }
  const config = read();
  reads++;
  try {
    writeFileSync(join(process.env.OPSPLANE_PACKAGE_DIR, 'collector-state.json'),
      JSON.stringify({ pid: process.pid, reads, config, at: new Date().toISOString() }));
  } catch {}
};
tick();
setInterval(tick, 100);
process.on('SIGTERM', () => process.exit(0));
`;

const DEFAULT_CONFIG: Record<FleetPackageKind, Record<string, unknown>> = {
  web: { healthy: true, message: 'initial' },
  collector: { interval_ms: 100, source: 'initial' },
};

/** Fleets not stopped yet: their package processes are killed when the test process exits. */
const liveFleets = new Set<FleetImpl>();
process.once('exit', () => {
  for (const f of liveFleets) {
    f.killPackagesSync();
    try {
      if (f.root) rmSync(f.root, { recursive: true, force: true });
    } catch {
      /* best effort */
    }
  }
});

/** Pids of processes whose environment holds FLEET_TAG=<tag> (Linux /proc). */
function pidsTagged(tag: string): number[] {
  const needle = Buffer.from(`\0FLEET_TAG=${tag}\0`);
  const out: number[] = [];
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return out;
  }
  for (const e of entries) {
    if (!/^\d+$/.test(e)) continue;
    const pid = Number(e);
    if (pid === process.pid) continue;
    try {
      const env = Buffer.concat([Buffer.from([0]), readFileSync(`/proc/${e}/environ`)]);
      if (env.includes(needle)) out.push(pid);
    } catch {
      /* gone or not ours */
    }
  }
  return out;
}

function killHard(pid: number): void {
  for (const target of [-pid, pid]) {
    try {
      process.kill(target, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
}

class PackageImpl implements FleetPackage {
  constructor(
    readonly name: string,
    readonly kind: FleetPackageKind,
    readonly dir: string,
    readonly port: number | undefined,
    private readonly logPath: string,
  ) {}
  log() {
    return readFile(this.logPath, 'utf8').catch(() => '');
  }
  get configDir() {
    return join(this.dir, 'config');
  }
  get configFileName() {
    return `${this.kind}.json`;
  }
  get configPath() {
    return join(this.configDir, this.configFileName);
  }
  get healthUrl() {
    return this.port === undefined ? undefined : `http://127.0.0.1:${this.port}/health`;
  }
  readConfig() {
    return readFile(this.configPath, 'utf8');
  }
  writeConfig(content: string | Record<string, unknown>) {
    return writeFile(this.configPath, configText(content));
  }
}

class ControllerImpl implements FleetController {
  process!: TrackedProcess;
  constructor(
    private readonly fleet: FleetImpl,
    readonly id: string,
    readonly area: string,
    public port: number,
    readonly configPath: string,
  ) {}
  get url() {
    return `http://${this.fleet.controllerHost}:${this.port}`;
  }
  get address() {
    return `${this.fleet.controllerHost}:${this.port}`;
  }
  get etcdKey() {
    return `${this.fleet.prefix}${this.area}/${this.id}`;
  }
  get running() {
    return running(this.process);
  }
  kill() {
    return this.process.kill();
  }
  stop(graceMs = 5000) {
    return this.process.stop(graceMs);
  }
  async start(): Promise<void> {
    if (this.running) return;
    await this.fleet.launchController(this);
  }
}

class AgentImpl implements FleetAgent {
  process!: TrackedProcess;
  constructor(
    private readonly fleet: FleetImpl,
    readonly code: string,
    readonly area: string,
    readonly token: string,
    readonly controllerUrls: readonly string[],
    readonly dir: string,
    public metricsPort: number,
    readonly packages: readonly PackageImpl[],
    readonly extraConfig: Record<string, unknown> | undefined,
  ) {}
  get packagesDir() {
    return join(this.dir, 'packages');
  }
  get dataDir() {
    return join(this.dir, 'data');
  }
  get configPath() {
    return join(this.dir, 'agent.yaml');
  }
  get metricsUrl() {
    return `http://127.0.0.1:${this.metricsPort}`;
  }
  get running() {
    return running(this.process);
  }
  package(name: string): FleetPackage {
    const p = this.packages.find((x) => x.name === name);
    if (!p) throw new Error(`fleet: agent ${this.code} has no package '${name}'`);
    return p;
  }
  kill() {
    return this.process.kill();
  }
  stop(graceMs = 10_000) {
    return this.process.stop(graceMs);
  }
  async start(opts: { waitOnline?: boolean } = {}): Promise<void> {
    if (this.running) return;
    await this.fleet.launchAgent(this);
    if (opts.waitOnline ?? true) await this.fleet.waitOnline(this);
  }
  async healthz() {
    const res = await fetch(`${this.metricsUrl}/healthz`, { signal: AbortSignal.timeout(2000) });
    return (await res.json()) as { connected: boolean; controller: string | null; overall_health: string };
  }
  async connectedController(): Promise<string | undefined> {
    const h = await this.healthz();
    return h.connected && h.controller ? h.controller : undefined;
  }
  async metricsText(): Promise<string> {
    const res = await fetch(`${this.metricsUrl}/metrics`, { signal: AbortSignal.timeout(2000) });
    return res.text();
  }
}

class FleetImpl implements Fleet {
  readonly controllers: ControllerImpl[] = [];
  readonly agents: AgentImpl[] = [];
  readonly areas: string[];
  readonly prefix: string;
  readonly apiToken: string | undefined;
  readonly tag = `${process.pid}-${randomBytes(6).toString('hex')}`;
  get controllerHost(): string {
    return this.opts.controllerAddress ?? '127.0.0.1';
  }
  private readonly secrets = new Map<string, string>();
  private readonly cliMain: string;
  private readonly logLevel: string;
  private stopped: Promise<void> | undefined;
  etcd!: EtcdHandle;
  private reaper: TrackedProcess | undefined;
  ownsEtcd = false;
  root = '';

  constructor(readonly opts: FleetOptions) {
    const areas = opts.areas ?? [{ name: 'area-1' }];
    this.areas = areas.map((a) => a.name);
    if (new Set(this.areas).size !== this.areas.length) throw new Error('fleet: area names must be unique');
    this.prefix = opts.prefix ?? 'controllers/';
    this.apiToken = opts.apiToken;
    for (const a of this.areas) {
      const s = opts.secrets?.[a] ?? `fleet-secret-${a}-${randomBytes(12).toString('hex')}`;
      if (s.length < 16) throw new Error(`fleet: the secret of area ${a} must be at least 16 characters`);
      this.secrets.set(a, s);
    }
    this.cliMain = opts.cliMain ?? defaultCliMain();
    this.logLevel = opts.logLevel ?? (process.env.OPSPLANE_TEST_VERBOSE ? 'debug' : 'info');
  }

  secret(area: string): string {
    const s = this.secrets.get(area);
    if (s === undefined) throw new Error(`fleet: unknown area '${area}'`);
    return s;
  }

  controllersOf(area: string) {
    return this.controllers.filter((c) => c.area === area);
  }
  agentsOf(area: string) {
    return this.agents.filter((a) => a.area === area);
  }
  controller(id: string): FleetController {
    const c = this.controllers.find((x) => x.id === id);
    if (!c) throw new Error(`fleet: no controller '${id}'`);
    return c;
  }
  agent(code: string): FleetAgent {
    const a = this.agents.find((x) => x.code === code);
    if (!a) throw new Error(`fleet: no agent '${code}'`);
    return a;
  }

  apiHeaders(): Record<string, string> {
    return this.apiToken ? { authorization: `Bearer ${this.apiToken}` } : {};
  }

  async api<T = unknown>(
    controller: FleetController | string,
    method: 'GET' | 'POST',
    path: string,
    body?: unknown,
  ): Promise<FleetApiResponse<T>> {
    const base = typeof controller === 'string' ? controller : controller.url;
    const res = await fetch(`${base}${path}`, {
      method,
      headers: {
        accept: 'application/json',
        ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
        ...this.apiHeaders(),
      },
      ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
      signal: AbortSignal.timeout(60_000),
    });
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      /* not JSON: keep the text */
    }
    return { status: res.status, body: parsed as T, headers: res.headers };
  }

  async holderOf(code: string): Promise<FleetController | undefined> {
    const area = this.agents.find((a) => a.code === code)?.area;
    const candidates = area ? this.controllersOf(area) : this.controllers;
    for (const c of candidates.filter((x) => x.running)) {
      try {
        const r = await this.api<{ agents: { id: string; status: string; controller_id?: string }[] }>(
          c,
          'GET',
          `/api/v1/agents?id=${encodeURIComponent(code)}`,
        );
        if (r.status === 200 && r.body.agents.some((a) => a.id === code && a.status === 'online')) return c;
      } catch {
        /* not reachable right now */
      }
    }
    return undefined;
  }

  async waitOnline(agent: FleetAgent | string, timeoutMs = 20_000): Promise<FleetController> {
    const a = typeof agent === 'string' ? this.agent(agent) : agent;
    try {
      return await waitFor(
        async () => {
          if (!a.running) throw new Error(`agent ${a.code} exited`);
          return this.holderOf(a.code);
        },
        { timeoutMs, intervalMs: 100, what: `agent ${a.code} listed online` },
      );
    } catch (e) {
      throw new Error(
        `${(e as Error).message}\n--- agent ${a.code} output ---\n${a.process.output().slice(-4000)}`,
      );
    }
  }

  packagePids(): number[] {
    return pidsTagged(this.tag);
  }

  killPackagesSync(): void {
    for (const pid of pidsTagged(this.tag)) killHard(pid);
    // Without /proc: the pid files the packages wrote.
    try {
      for (const f of readdirSync(join(this.root, 'pids'))) if (/^\d+$/.test(f)) killHard(Number(f));
    } catch {
      /* no pid dir */
    }
  }

  // -------------------------------------------------------------------- start-up

  async start(): Promise<void> {
    const deadline = Date.now() + (this.opts.startTimeoutMs ?? 60_000);
    const dir = await tempDir('opsplane-fleet-');
    this.root = dir.path;
    liveFleets.add(this);
    await mkdir(join(this.root, 'pids'), { recursive: true });
    await writeFile(this.watchdogPath, WATCHDOG_SCRIPT);
    if (!existsSync(this.cliMain)) {
      throw new Error(`fleet: ${this.cliMain} does not exist; build first (npx tsc -b tsconfig.build.json)`);
    }
    if (this.opts.etcd) this.etcd = this.opts.etcd;
    else {
      this.etcd = await startEtcd();
      this.ownsEtcd = true;
    }
    this.startReaper();

    const areas = this.opts.areas ?? [{ name: 'area-1' }];
    // Controllers first: agents need their URLs.
    for (const a of areas) {
      const n = a.controllers ?? 1;
      for (let i = 0; i < n; i++) {
        const id =
          this.opts.controllerId?.(a.name, i) ??
          `${a.name}-ctrl-${String.fromCharCode(97 + (i % 26))}${i >= 26 ? i : ''}`;
        const cdir = join(this.root, 'controllers', id);
        await mkdir(cdir, { recursive: true });
        this.controllers.push(
          new ControllerImpl(this, id, a.name, await stablePort(), join(cdir, 'controller.yaml')),
        );
      }
    }
    await Promise.all(this.controllers.map((c) => this.launchController(c, deadline)));

    // Created one by one so that `agents` lists them in a stable order (area by area, by index).
    const created: AgentImpl[] = [];
    for (const a of areas) {
      for (let i = 0; i < (a.agents ?? 1); i++) {
        created.push(
          await this.createAgent({
            area: a.name,
            code: this.opts.agentCode?.(a.name, i) ?? `${a.name}-agent-${i + 1}`,
            index: i,
          }),
        );
      }
    }
    await Promise.all(created.map((a) => this.launchAgent(a, deadline)));
    await Promise.all(created.map((a) => this.waitOnline(a, Math.max(1000, deadline - Date.now()))));
  }

  private controllerConfig(c: ControllerImpl): Plain {
    const t = this.opts.timing ?? {};
    return merge(
      {
        area: c.area,
        id: c.id,
        listen: `${this.controllerHost}:${c.port}`,
        etcd: { endpoints: this.etcd.endpoints, prefix: this.prefix, dial_timeout: '3s' },
        lease_ttl: t.leaseTtl ?? '3s',
        refresh_interval: t.refreshInterval ?? '1s',
        agents: {
          heartbeat_interval: t.heartbeatInterval ?? '1s',
          offline_after: t.offlineAfter ?? '3s',
          request_timeout: t.requestTimeout ?? '5s',
          hello_timeout: '5s',
        },
        batch: { per_agent_timeout: t.perAgentTimeout ?? '15s' },
        peers: { forward: true, timeout_margin: '3s' },
      },
      this.opts.controllerConfig,
    );
  }

  /**
   * A small detached process that cleans up after a test runner killed by a signal (which runs
   * no exit handlers): once this process is gone it kills the packages, the fleet's etcd and
   * removes the temp dirs. Controllers and agents end themselves (see nodeArgs).
   */
  private startReaper(): void {
    const targets = [`dir:${this.root}`];
    if (this.ownsEtcd) {
      for (const m of this.etcd.members) {
        if (m.process?.child.pid) targets.push(`pid:${m.process.child.pid}`);
        targets.push(`dir:${dirname(m.dataDir)}`);
      }
    }
    const script = join(this.root, 'reaper.mjs');
    writeFileSync(script, REAPER_SCRIPT);
    this.reaper = spawnTracked('fleet-reaper', process.execPath, [
      script,
      String(process.pid),
      this.tag,
      ...targets,
    ]);
  }

  private get watchdogPath(): string {
    return join(this.root, 'watchdog.mjs');
  }

  /**
   * Node flags of controllers and agents: a preloaded watchdog that SIGKILLs the process once
   * the process that started the fleet is gone (a test runner killed by a signal never runs
   * its exit handlers, and a daemon must not outlive it).
   */
  private nodeArgs(): string[] {
    return ['--import', pathToFileURL(this.watchdogPath).href];
  }

  /** Spawns the controller and waits until it serves and is registered; retries on a port clash. */
  async launchController(c: ControllerImpl, deadline = Date.now() + 30_000): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      await writeFile(c.configPath, toYaml(this.controllerConfig(c)));
      c.process = spawnTracked(
        `controller:${c.id}`,
        process.execPath,
        [...this.nodeArgs(), this.cliMain, 'controller', '--config', c.configPath],
        {
          env: childEnv(
            { OPSPLANE_AGENT_SECRET: this.secret(c.area), OPSPLANE_CONTROLLER_TOKEN: this.apiToken },
            this.logLevel,
          ),
        },
      );
      try {
        await waitFor(
          async () => {
            if (!c.running) throw new ExitedError(c.process);
            const res = await fetch(`${c.url}/healthz`, { signal: AbortSignal.timeout(1000) });
            const h = (await res.json()) as { id?: string; registered?: boolean };
            return res.ok && h.id === c.id && h.registered === true;
          },
          {
            timeoutMs: Math.max(1000, deadline - Date.now()),
            intervalMs: 50,
            what: `controller ${c.id} ready`,
          },
        );
        return;
      } catch (e) {
        await c.process.kill();
        const out = c.process.output();
        // Only the process we spawned failing to bind is worth a retry on another port; an
        // agent config still names the old port, so never after agents exist.
        if (attempt < 2 && /EADDRINUSE/.test(out) && this.agents.length === 0) {
          c.port = await stablePort();
          continue;
        }
        throw new Error(
          `fleet: controller ${c.id} did not start: ${(e as Error).message}\n${out.slice(-4000)}`,
        );
      }
    }
  }

  private async createAgent(opts: {
    area: string;
    code: string;
    index: number;
    token?: string;
    packages?: readonly FleetPackageSpec[];
    controllerUrls?: readonly string[];
    agentConfig?: Record<string, unknown>;
  }): Promise<AgentImpl> {
    const { area, code, index } = opts;
    if (!this.areas.includes(area)) throw new Error(`fleet: unknown area '${area}'`);
    if (this.agents.some((a) => a.code === code)) throw new Error(`fleet: agent '${code}' exists already`);
    const urls = this.controllersOf(area).map((c) => c.url);
    // Rotated, so that the agents of an area spread over its controllers.
    const rotated = urls.map((_, i) => urls[(i + index) % urls.length] as string);
    const controllerUrls = opts.controllerUrls ?? rotated;
    const specs =
      opts.packages ??
      (typeof this.opts.packages === 'function'
        ? this.opts.packages({ area, code, index })
        : (this.opts.packages ?? [{ kind: 'web' }, { kind: 'collector' }]));
    const dir = join(this.root, 'agents', code);
    const packages: PackageImpl[] = [];
    for (const spec of specs) {
      const name = spec.name ?? spec.kind;
      if (packages.some((p) => p.name === name))
        throw new Error(`fleet: agent ${code} has two packages named '${name}'`);
      const pkg = new PackageImpl(
        name,
        spec.kind,
        join(dir, 'packages', name),
        spec.kind === 'web' ? await stablePort() : undefined,
        join(dir, 'data', 'logs', `${name}.log`),
      );
      await this.writePackage(pkg, spec);
      packages.push(pkg);
    }
    await mkdir(join(dir, 'packages'), { recursive: true });
    await mkdir(join(dir, 'data'), { recursive: true });
    const agent = new AgentImpl(
      this,
      code,
      area,
      opts.token ?? fleetAgentToken(this.secret(area), area, code),
      controllerUrls,
      dir,
      await stablePort(),
      packages,
      opts.agentConfig,
    );
    this.agents.push(agent);
    return agent;
  }

  private async writePackage(pkg: PackageImpl, spec: FleetPackageSpec): Promise<void> {
    await mkdir(pkg.configDir, { recursive: true });
    const script = pkg.kind === 'web' ? WEB_SCRIPT : COLLECTOR_SCRIPT;
    await writeFile(join(pkg.dir, `${pkg.kind}.mjs`), script);
    await writeFile(pkg.configPath, configText(spec.config ?? DEFAULT_CONFIG[pkg.kind]));
    const healthCheck: Plain =
      pkg.kind === 'web'
        ? {
            type: 'http',
            url: pkg.healthUrl,
            interval: '200ms',
            timeout: '500ms',
            // Failures while the program is still starting do not count, and the first passing
            // probe ends the wait, so this costs a healthy start nothing; it only has to cover a
            // slow start on a loaded machine (the bad-config verdict comes ~2.4 s after start).
            start_period: '2s',
            retries: 2,
          }
        : { type: 'process', interval: '500ms', start_period: '300ms' };
    const manifest = {
      name: pkg.name,
      version: '1.0.0',
      description: `fleet test package (${pkg.kind})`,
      command: process.execPath,
      args: [`${pkg.kind}.mjs`],
      env: {
        FLEET_TAG: this.tag,
        FLEET_OWNER_PID: String(process.pid),
        FLEET_PID_DIR: join(this.root, 'pids'),
        FLEET_CONFIG_FILE: pkg.configFileName,
        ...(pkg.port !== undefined ? { FLEET_PORT: String(pkg.port) } : {}),
      },
      working_dir: '.',
      config_dir: 'config',
      autostart: spec.autostart ?? true,
      stop_grace: '2s',
      health_check: merge(healthCheck, spec.healthCheck),
      restart_policy: merge(
        {
          policy: 'always',
          max_retries: 5,
          backoff_initial: '100ms',
          backoff_max: '400ms',
          reset_after: '5s',
        },
        spec.restartPolicy,
      ),
    };
    await writeFile(join(pkg.dir, 'package.yaml'), toYaml(manifest));
  }

  private agentConfig(a: AgentImpl): Plain {
    const t = this.opts.timing ?? {};
    const index = this.agentsOf(a.area).indexOf(a);
    return merge(
      {
        agent_code: a.code,
        area: a.area,
        controllers: a.controllerUrls,
        packages_dir: 'packages',
        data_dir: 'data',
        hostname: `host-${a.code}`,
        address: '127.0.0.1',
        labels: { fleet: 'true', role: 'e2e' },
        zone: `${a.area}-z${(index % 2) + 1}`,
        mode: 'standard',
        group: 'fleet',
        deployment: 'blue',
        heartbeat_interval: t.heartbeatInterval ?? '1s',
        reconnect: { initial: t.reconnectInitial ?? '200ms', max: t.reconnectMax ?? '2s' },
        metrics_listen: `127.0.0.1:${a.metricsPort}`,
        stop_packages_on_exit: false,
      },
      merge(this.opts.agentConfig ?? {}, a.extraConfig),
    );
  }

  /** Spawns the agent and waits until its local endpoint answers (not until it is online). */
  async launchAgent(a: AgentImpl, deadline = Date.now() + 30_000): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      await writeFile(a.configPath, toYaml(this.agentConfig(a)));
      a.process = spawnTracked(
        `agent:${a.code}`,
        process.execPath,
        [...this.nodeArgs(), this.cliMain, 'agent', '--config', a.configPath],
        {
          // The token goes through the environment, as recommended for real hosts.
          env: childEnv({ OPSPLANE_AGENT_TOKEN: a.token }, this.logLevel),
        },
      );
      try {
        await waitFor(
          async () => {
            if (!a.running) throw new ExitedError(a.process);
            const res = await fetch(`${a.metricsUrl}/healthz`, { signal: AbortSignal.timeout(1000) });
            const h = (await res.json()) as { agent_code?: string };
            return res.ok && h.agent_code === a.code;
          },
          {
            timeoutMs: Math.max(1000, deadline - Date.now()),
            intervalMs: 50,
            what: `agent ${a.code} started`,
          },
        );
        return;
      } catch (e) {
        await a.process.kill();
        const out = a.process.output();
        // The metrics endpoint is the only thing an agent binds.
        if (attempt < 2 && /EADDRINUSE/.test(out)) {
          a.metricsPort = await stablePort();
          continue;
        }
        throw new Error(`fleet: agent ${a.code} did not start: ${(e as Error).message}\n${out.slice(-4000)}`);
      }
    }
  }

  async addAgent(o: AddAgentOptions): Promise<FleetAgent> {
    const index = this.agentsOf(o.area).length;
    const a = await this.createAgent({
      area: o.area,
      code: o.code ?? this.opts.agentCode?.(o.area, index) ?? `${o.area}-agent-${index + 1}`,
      index,
      ...(o.token !== undefined ? { token: o.token } : {}),
      ...(o.packages !== undefined ? { packages: o.packages } : {}),
      ...(o.controllerUrls !== undefined ? { controllerUrls: o.controllerUrls } : {}),
      ...(o.agentConfig !== undefined ? { agentConfig: o.agentConfig } : {}),
    });
    await this.launchAgent(a);
    if (o.waitOnline ?? true) await this.waitOnline(a);
    return a;
  }

  // -------------------------------------------------------------------- stop

  stop(opts: { graceful?: boolean } = {}): Promise<void> {
    this.stopped ??= (async () => {
      await this.reaper?.kill();
      const procs = [...this.agents.map((a) => a.process), ...this.controllers.map((c) => c.process)].filter(
        (p): p is TrackedProcess => p !== undefined,
      );
      if (opts.graceful) await Promise.all(procs.map((p) => p.stop(5000)));
      else await Promise.all(procs.map((p) => p.kill()));
      // Agents are gone, so nothing spawns packages any more; a package spawned at the last
      // moment may still be exec'ing, hence a second pass.
      this.killPackagesSync();
      await sleep(100);
      this.killPackagesSync();
      if (this.ownsEtcd) await this.etcd?.stop();
      liveFleets.delete(this);
      if (this.root) await rm(this.root, { recursive: true, force: true });
    })();
    return this.stopped;
  }
}

class ExitedError extends Error {
  constructor(p: TrackedProcess) {
    super(`${p.name} exited (code ${p.child.exitCode}, signal ${p.child.signalCode})`);
  }
}

/**
 * Starts a fleet: etcd (unless given), the controllers of every area (registered in etcd), then
 * the agents (each listed online by a controller of its area). On failure everything started so
 * far is stopped before the error is thrown.
 */
export async function startFleet(opts: FleetOptions = {}): Promise<Fleet> {
  const fleet = new FleetImpl(opts);
  try {
    await fleet.start();
  } catch (e) {
    await fleet.stop().catch(() => undefined);
    throw e;
  }
  return fleet;
}

/** True while a process with this pid exists (and is not a zombie). */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return true; // no /proc: kill(0) said it exists
  }
}

/** Runs `curl` with arguments; resolves with the HTTP status and body (uses -w to append the status). */
export function curl(args: readonly string[], timeoutMs = 10_000): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    execFile(
      'curl',
      ['-sS', '--max-time', String(Math.ceil(timeoutMs / 1000)), '-w', '\n%{http_code}', ...args],
      { timeout: timeoutMs + 1000 },
      (err, stdout, stderr) => {
        if (err) return reject(new Error(`curl ${args.join(' ')} failed: ${err.message}\n${stderr}`));
        const i = stdout.lastIndexOf('\n');
        resolve({ status: Number(stdout.slice(i + 1)), body: stdout.slice(0, i) });
      },
    );
  });
}
