/**
 * The public shape of a fleet: its options and the handles of its controllers, agents and
 * packages (implemented in fleet.ts). Types only.
 */
import type { FleetTiming } from './configs.js';
import type { ReaperTargets } from './guard.js';
import type { ManagedProcess } from './processes.js';
import type { SamplePackageKind } from './sample-packages.js';

// ------------------------------------------------------------------------------------ options

/** What the fleet needs of an etcd: its endpoints (and stop(), if the fleet owns it). */
export interface FleetEtcd {
  readonly endpoints: readonly string[];
  stop?(): Promise<unknown>;
  /**
   * What controllers need to reach it when it requires TLS client certificates and etcd users
   * (paths of the CA bundle and a client certificate; the user's password goes through the
   * environment).
   */
  readonly controllerAccess?: {
    tls?: { ca: string; cert: string; key: string };
    username?: string;
    password?: string;
  };
}

/** TLS everywhere in the fleet: certificates for controllers and agents from the built-in CA. */
export interface FleetTlsOptions {
  /** A CA directory (`opsplane ca init`): its key issues the leaves, its bundle is trusted. */
  caDir: string;
  /** How agents authenticate: certificate only (default) or certificate or token. */
  agentAuth?: 'mtls' | 'mtls_or_token';
}

export interface SamplePackageSpec {
  /** Package name (also its directory name). Default: the kind. */
  name?: string;
  kind: SamplePackageKind;
  /** Content of its config file (an object is written as YAML). Default: the shipped file. */
  config?: string | Record<string, unknown>;
  /** Default: package.yaml's (true). */
  autostart?: boolean;
  /** Merged over package.yaml's `restart_policy`. */
  restartPolicy?: Record<string, unknown>;
  /** Merged over package.yaml's `health_check` (replaces it when `type` differs). */
  healthCheck?: Record<string, unknown>;
}

export interface FleetAreaSpec {
  name: string;
  /** The area's controllers: how many (ids from `controllerId`), or their ids. Default 1. */
  controllers?: number | readonly string[];
  /** Agents start() creates in the area. Default 1. */
  agents?: number;
}

export interface FleetOptions<E extends FleetEtcd = FleetEtcd> {
  /** The etcd the controllers register in. */
  etcd: E;
  /** stop() also stops the etcd (its stop()). Default false. */
  ownsEtcd?: boolean;
  /** Directory holding controllers/ and agents/. Default: a new temp dir, removed by stop(). */
  root?: string;
  /** Default: one area `area-1` with 1 controller and 1 agent. */
  areas?: readonly FleetAreaSpec[];
  /**
   * Packages of every agent: a list, or a function of the agent (area, code, index within the
   * area). Default: a `web` and a `collector`.
   */
  packages?:
    | readonly SamplePackageSpec[]
    | ((agent: { area: string; code: string; index: number }) => readonly SamplePackageSpec[]);
  /** Agent secret per area (at least 16 characters). Default: random per area. */
  secrets?: Readonly<Record<string, string>>;
  /**
   * Controller API token — one for every area, or one per area. When set, controllers require
   * `Authorization: Bearer <token>` on /api/v1 (and use it between peers). An area without one
   * gets controllers started with `insecure_no_token: true` (open API; they warn about it).
   */
  apiToken?: string | Readonly<Record<string, string>>;
  /** etcd key prefix of the registrations. Default `controllers/`. */
  prefix?: string;
  /** Agent code of the n-th (0-based) agent of an area. Default `<area>-agent-<n+1>`. */
  agentCode?: (area: string, index: number) => string;
  /** Controller id of the n-th (0-based) controller of an area. Default `<area>-ctrl-<a|b|c…>`. */
  controllerId?: (area: string, index: number) => string;
  /** Default FAST_TIMING (the tests'); the demo passes DEMO_TIMING. */
  timing?: FleetTiming;
  /**
   * The server's artifact signing keys (`ed25519:<base64>`): controllers get them as
   * `artifacts.keys` (their relay checks signatures) and agents as `artifact_keys` — written into
   * agent.yaml only when this is given. Default: none (controllers check hashes only, and say so).
   */
  artifactKeys?: readonly string[];
  /** Extra controller config (file-shaped, snake_case), merged over the generated one. */
  controllerConfig?: Record<string, unknown>;
  /** Extra agent config (file-shaped, snake_case), merged over the generated one. */
  agentConfig?: Record<string, unknown>;
  /** Comment lines on top of the config files written (e.g. how to run them by hand). */
  configHeader?: {
    controller?: (c: FleetController) => string;
    agent?: (a: FleetAgent) => string;
  };
  /** Agents serve /healthz and /metrics on a loopback port (and start-up waits for it). Default true. */
  agentMetrics?: boolean;
  /** Agents stop their packages when they stop. Default false (packages outlive their agent). */
  stopPackagesOnExit?: boolean;
  /**
   * Tie everything to this process (see guard.ts): watchdog, tagged packages, reaper — which
   * also kills `pids` and removes `dirs` when given. Default false.
   */
  guard?: boolean | ReaperTargets;
  /** OPSPLANE_LOG_LEVEL of the children. Default `info`. */
  logLevel?: string;
  /** Where each child's output lines go (by process name: controller id, agent name). */
  output?: (name: string) => ((line: string) => void) | undefined;
  /** Sent to the children if this process exits without stopping them. Default SIGKILL. */
  exitSignal?: 'SIGKILL' | 'SIGTERM';
  /** Path of the CLI's main.js. Default defaultCliMain(). */
  cliMain?: string;
  /** How long start() may take in total. Default 60 s. */
  startTimeoutMs?: number;
  /** Aborting ends every wait of the fleet at once (with the signal's reason). */
  signal?: AbortSignal;
  /**
   * HTTPS/wss and mutual TLS: every controller gets a certificate (its URL is https://), every
   * agent pins the CA and authenticates with its own certificate. Default: plain.
   */
  tls?: FleetTlsOptions;
  /**
   * The address controllers listen on and register in etcd. Default 127.0.0.1; tests whose
   * agents run on other hosts (network namespaces) pass an address those hosts can reach.
   */
  controllerAddress?: string;
}

export interface AddAgentOptions {
  area: string;
  /** Default: `agentCode` of the next index. */
  code?: string;
  /** Process and log name. Default: the code. */
  name?: string;
  /** Default: the right token. Pass a wrong one to test refusal. */
  token?: string;
  /** Default: the fleet's package specs. */
  packages?: readonly SamplePackageSpec[];
  /** Default: every controller of the area, rotated by the agent's index (so they spread). */
  controllerUrls?: readonly string[];
  /** Default `host-<code>`. */
  hostname?: string;
  /** Default `{ fleet: 'true' }`. */
  labels?: Readonly<Record<string, string>>;
  /** Default `<area>-z1` / `<area>-z2` alternating. */
  zone?: string;
  /** Default `fleet`. */
  group?: string;
  /** Extra agent config for this agent (file-shaped), merged over the fleet's. */
  agentConfig?: Record<string, unknown>;
  /** Wait until a controller lists it online. Default true. */
  waitOnline?: boolean;
}

// ------------------------------------------------------------------------------------ handles

export interface FleetPackage {
  readonly name: string;
  readonly kind: SamplePackageKind;
  /** The package directory (holds package.yaml and the program). */
  readonly dir: string;
  /** Its config dir (`configs` operations write here). */
  readonly configDir: string;
  /** The config file the program reads: `web.yaml` / `collector.yaml`. */
  readonly configFileName: string;
  /** Absolute path of that file. */
  readonly configPath: string;
  /** `web` only: its loopback port and health URL. */
  readonly port: number | undefined;
  readonly healthUrl: string | undefined;
  /** Current content of the config file. */
  readConfig(): Promise<string>;
  /** Replaces the config file directly on disk (as an operator editing it would); objects as YAML. */
  writeConfig(content: string | Record<string, unknown>): Promise<void>;
  /** What the package printed (the agent's `data_dir/logs/<name>.log`), '' if nothing yet. */
  log(): Promise<string>;
}

export interface FleetController {
  readonly id: string;
  readonly area: string;
  readonly port: number;
  /** http(s)://<controllerAddress>:<port> (127.0.0.1 by default) */
  readonly url: string;
  /** <controllerAddress>:<port>, as registered in etcd. */
  readonly address: string;
  /** `<prefix><area>/<id>` */
  readonly etcdKey: string;
  readonly configPath: string;
  /** The current process (replaced by start()). */
  readonly process: ManagedProcess;
  readonly running: boolean;
  /** SIGKILL (no deregistration: the etcd key stays until its lease expires). */
  kill(): Promise<void>;
  /** SIGTERM (graceful: agents are told to go, the key is deleted). Default grace 5 s. */
  stop(graceMs?: number): Promise<void>;
  /** Starts it again (same id, port, config); resolves once it serves and is registered. */
  start(): Promise<void>;
}

export interface FleetAgent {
  readonly code: string;
  readonly area: string;
  /** Process and log name (the code unless given). */
  readonly name: string;
  readonly token: string;
  /** Controller base URLs in its config, in its failover order. */
  readonly controllerUrls: readonly string[];
  readonly dir: string;
  readonly packagesDir: string;
  readonly dataDir: string;
  readonly configPath: string;
  /** Its local /healthz and /metrics endpoint (undefined without `agentMetrics`). */
  readonly metricsUrl: string | undefined;
  readonly packages: readonly FleetPackage[];
  package(name: string): FleetPackage;
  /** The current process (replaced by start()). */
  readonly process: ManagedProcess;
  readonly running: boolean;
  /** SIGKILL the agent (its packages keep running, as they would on a real host). */
  kill(): Promise<void>;
  /** SIGTERM (graceful; packages keep running unless stopPackagesOnExit). Default grace 10 s. */
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

export interface Fleet<E extends FleetEtcd = FleetEtcd> {
  readonly etcd: E;
  /** Directory holding everything. */
  readonly root: string;
  readonly prefix: string;
  readonly areas: readonly string[];
  readonly controllers: readonly FleetController[];
  readonly agents: readonly FleetAgent[];
  /** Tag in the environment of the packages of a guarded fleet (FLEET_TAG). */
  readonly tag: string;
  secret(area: string): string;
  /** The CA bundle (PEM) controllers are verified with, when the fleet runs TLS (as at its start). */
  readonly caBundle: string | undefined;
  /** fetch trusting the fleet's CA (the global fetch without TLS). */
  readonly fetch: typeof fetch;
  /** The controller API token of the area, if any. */
  apiToken(area: string): string | undefined;
  controllersOf(area: string): FleetController[];
  agentsOf(area: string): FleetAgent[];
  controller(id: string): FleetController;
  agent(code: string): FleetAgent;
  /** Headers for a controller's /api/v1 (Authorization when its area has an API token). */
  apiHeaders(area?: string): Record<string, string>;
  /** GET/POST against a controller (handle or base URL); JSON in and out, token added. */
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
  /**
   * Starts the controllers of every area; resolves once each serves and is registered in etcd.
   * Default timeout: `startTimeoutMs`.
   */
  startControllers(timeoutMs?: number): Promise<void>;
  /** startControllers(), then the agents of every area; resolves once each is listed online. */
  start(timeoutMs?: number): Promise<void>;
  /** Adds (and starts) one more agent. */
  addAgent(opts: AddAgentOptions): Promise<FleetAgent>;
  /** Pids of package processes still alive (guarded fleets: found through /proc by the tag). */
  packagePids(): number[];
  /**
   * Kills controllers and agents (`graceful`: SIGTERM first), the packages of a guarded fleet,
   * the etcd when owned, and removes a root it created. Idempotent.
   */
  stop(opts?: { graceful?: boolean }): Promise<void>;
}
