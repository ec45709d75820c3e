/**
 * Test fleets: @opsplane/fleet — the launcher `opsplane demo` uses, with the same sample
 * packages (`web`: HTTP service whose /health follows its config file `config/web.yaml`;
 * `collector`: tails a log and its config `config/collector.yaml`, crashes with `exit_code: N`;
 * see packages/fleet/sample-packages/README.md) — with the tests' defaults:
 *
 * - a temp root, removed by stop();
 * - a real etcd of its own (test-support's, see etcd.ts) unless one is passed in;
 * - FAST_TIMING: short heartbeats and leases, packages checked and restarted within a fraction
 *   of a second (`always`, backoff 100 ms → 400 ms, failed after 5 fast crashes);
 * - the guard: if the test process dies without stop() (a runner killed by a signal runs no
 *   exit hooks), nothing lingers for more than about a second — controllers and agents have a
 *   preloaded watchdog, packages watch the owner pid, and a reaper kills the fleet's etcd and
 *   removes the dirs;
 * - OPSPLANE_TEST_VERBOSE=1 mirrors every daemon's output on stderr (log level debug).
 *
 * The CLI is run by path (packages/cli/dist/src/main.js; override with `cliMain` or
 * OPSPLANE_CLI_MAIN): build first (`npm run build`).
 */
import { execFile } from 'node:child_process';
import { dirname } from 'node:path';
import {
  FAST_TIMING,
  launchFleet,
  type Fleet as FleetOf,
  type FleetAreaSpec,
  type FleetTiming,
  type FleetTlsOptions,
  type SamplePackageKind,
  type SamplePackageSpec,
} from '@opsplane/fleet';
import { startEtcd, type EtcdHandle } from './etcd.js';
import { verboseOutput } from './processes.js';

export {
  defaultCliMain,
  pidAlive,
  type AddAgentOptions,
  type FleetAgent,
  type FleetApiResponse,
  type FleetAreaSpec,
  type FleetController,
  type FleetPackage,
} from '@opsplane/fleet';

export type FleetPackageKind = SamplePackageKind;
export type FleetPackageSpec = SamplePackageSpec;

/** A test fleet: its etcd is test-support's (etcdctl, kill/restart …). */
export type Fleet = FleetOf<EtcdHandle>;

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
  /**
   * When set, controllers require `Authorization: Bearer <apiToken>` on /api/v1 (and use it between
   * peers); without, they run open (`insecure_no_token: true`).
   */
  apiToken?: string;
  /** Use this etcd instead of starting one (it is then not stopped by stop()). */
  etcd?: EtcdHandle;
  /** etcd key prefix of the registrations. Default `controllers/` (pass a unique one on a shared etcd). */
  prefix?: string;
  /** Agent code of the n-th (0-based) agent of an area. Default `<area>-agent-<n+1>`. */
  agentCode?: (area: string, index: number) => string;
  /** Controller id of the n-th (0-based) controller of an area. Default `<area>-ctrl-<a|b|c…>`. */
  controllerId?: (area: string, index: number) => string;
  /** Timing of controllers and agents (duration strings), over FAST_TIMING. */
  timing?: Partial<FleetTiming>;
  /**
   * Artifact signing keys (`ed25519:<base64>`, e.g. createArtifactSigner().publicKey): controllers
   * pin them (`artifacts.keys`) and agents get `artifact_keys` in agent.yaml (only when given).
   */
  artifactKeys?: readonly string[];
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
  /** TLS everywhere: controllers' certificates and agents' (mutual TLS) from this CA dir. */
  tls?: FleetTlsOptions;
}

/**
 * Starts a fleet: etcd (unless given), the controllers of every area (registered in etcd), then
 * the agents (each listed online by a controller of its area). On failure everything started so
 * far is stopped before the error is thrown.
 */
export async function startFleet(opts: FleetOptions = {}): Promise<Fleet> {
  const { etcd: given, timing, logLevel, ...rest } = opts;
  const etcd = given ?? (await startEtcd());
  try {
    return await launchFleet({
      ...rest,
      etcd,
      ownsEtcd: given === undefined,
      timing: { ...FAST_TIMING, ...timing },
      logLevel: logLevel ?? (process.env.OPSPLANE_TEST_VERBOSE ? 'debug' : 'info'),
      output: verboseOutput,
      // An etcd of our own goes with the fleet if the test process is killed.
      guard:
        given === undefined
          ? {
              pids: etcd.members.flatMap((m) => (m.process?.child.pid ? [m.process.child.pid] : [])),
              dirs: etcd.members.map((m) => dirname(m.dataDir)),
            }
          : true,
    });
  } catch (e) {
    if (given === undefined) await etcd.stop();
    throw e;
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
