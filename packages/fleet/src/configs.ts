/**
 * The config files of the daemons a fleet starts — the one writer of controller.yaml and
 * agent.yaml for `opsplane demo` and the test fleets — and the two timing profiles:
 *
 * - DEMO_TIMING: what `opsplane demo` runs with — shorter than the production defaults so that
 *   the demo reacts within seconds (agents online, failover, views), the sample packages as
 *   shipped (package.yaml unchanged).
 * - FAST_TIMING: what the tests run with — about half again, and the sample packages checked
 *   and restarted within a fraction of a second.
 *
 * Pure functions returning file-shaped (snake_case) objects; fleet.ts writes them with toYaml.
 */
import type { SamplePackageKind } from './sample-packages.js';

export type Plain = Record<string, unknown>;

const isPlain = (v: unknown): v is Plain => typeof v === 'object' && v !== null && !Array.isArray(v);

/** `b` deep-merged over `a` (plain objects merge, everything else replaces; undefined is skipped). */
export function mergeConfig(a: Plain, b: Plain | undefined): Plain {
  const out: Plain = { ...a };
  for (const [k, v] of Object.entries(b ?? {})) {
    if (v === undefined) continue;
    const prev = out[k];
    out[k] = isPlain(prev) && isPlain(v) ? mergeConfig(prev, v) : v;
  }
  return out;
}

/** Duration strings ('500ms', '2s') of controllers, agents and the sample packages. */
export interface FleetTiming {
  /** Controllers tell agents this interval; agents have it in their config too. */
  heartbeatInterval: string;
  offlineAfter: string;
  leaseTtl: string;
  refreshInterval: string;
  requestTimeout: string;
  perAgentTimeout: string;
  dialTimeout: string;
  /** Controller's `agents.hello_timeout`; its default when unset. */
  helloTimeout?: string;
  /** Controller's `peers.timeout_margin`; its default when unset. */
  peerTimeoutMargin?: string;
  reconnectInitial: string;
  reconnectMax: string;
  /**
   * Overrides of the sample packages' package.yaml (file-shaped, merged over the shipped file;
   * a `health_check` of another type replaces the shipped one).
   */
  packages?: { readonly [kind in SamplePackageKind]?: Plain };
}

export const DEMO_TIMING: Readonly<FleetTiming> = {
  heartbeatInterval: '2s',
  offlineAfter: '6s',
  leaseTtl: '5s',
  refreshInterval: '2s',
  requestTimeout: '10s',
  perAgentTimeout: '30s',
  dialTimeout: '5s',
  reconnectInitial: '200ms',
  reconnectMax: '3s',
};

const FAST_RESTART = {
  policy: 'always',
  max_retries: 5,
  backoff_initial: '100ms',
  backoff_max: '400ms',
  reset_after: '5s',
};

export const FAST_TIMING: Readonly<FleetTiming> = {
  heartbeatInterval: '1s',
  offlineAfter: '3s',
  leaseTtl: '3s',
  refreshInterval: '1s',
  requestTimeout: '5s',
  perAgentTimeout: '15s',
  dialTimeout: '3s',
  helloTimeout: '5s',
  peerTimeoutMargin: '3s',
  reconnectInitial: '200ms',
  reconnectMax: '2s',
  packages: {
    web: {
      stop_grace: '2s',
      // Failures while the program is still starting do not count, and the first passing probe
      // ends the wait, so this costs a healthy start nothing; it only has to cover a slow start
      // on a loaded machine (the bad-config verdict comes ~2.4 s after start).
      health_check: { interval: '200ms', timeout: '500ms', start_period: '2s', retries: 2 },
      restart_policy: FAST_RESTART,
    },
    collector: {
      stop_grace: '2s',
      health_check: { type: 'process', interval: '500ms', start_period: '300ms' },
      restart_policy: FAST_RESTART,
    },
  },
};

export interface ControllerConfigInput {
  id: string;
  area: string;
  /** host:port */
  listen: string;
  etcdEndpoints: readonly string[];
  /** etcd key prefix of the registrations, e.g. `controllers/`. */
  prefix: string;
  timing: FleetTiming;
  /** The artifact cache (`artifacts.dir`), kept with the controller's files. */
  artifactDir?: string;
  /** The server's artifact signing keys (`ed25519:<base64>`) the controller pins. */
  artifactKeys?: readonly string[];
  /** Extra config (file-shaped), merged over the generated one. */
  extra?: Plain;
}

/** controller.yaml; the area's secrets are not in it (they go through the environment). */
export function controllerConfig(i: ControllerConfigInput): Plain {
  const t = i.timing;
  return mergeConfig(
    {
      area: i.area,
      id: i.id,
      listen: i.listen,
      etcd: { endpoints: [...i.etcdEndpoints], prefix: i.prefix, dial_timeout: t.dialTimeout },
      lease_ttl: t.leaseTtl,
      refresh_interval: t.refreshInterval,
      agents: {
        heartbeat_interval: t.heartbeatInterval,
        offline_after: t.offlineAfter,
        request_timeout: t.requestTimeout,
        hello_timeout: t.helloTimeout,
      },
      batch: { per_agent_timeout: t.perAgentTimeout },
      peers: t.peerTimeoutMargin ? { forward: true, timeout_margin: t.peerTimeoutMargin } : undefined,
      artifacts:
        i.artifactDir !== undefined || i.artifactKeys !== undefined
          ? { dir: i.artifactDir, keys: i.artifactKeys ? [...i.artifactKeys] : undefined }
          : undefined,
    },
    i.extra,
  );
}

export interface AgentConfigInput {
  code: string;
  area: string;
  /** Controller base URLs in failover order. */
  controllerUrls: readonly string[];
  hostname: string;
  labels?: Readonly<Record<string, string>>;
  zone?: string;
  group?: string;
  timing: FleetTiming;
  /** host:port of its /healthz and /metrics; none when unset. */
  metricsListen?: string;
  stopPackagesOnExit: boolean;
  /** `artifact_keys`: the artifact signing keys the agent pins; the key is absent unless given. */
  artifactKeys?: readonly string[];
  /** Extra config (file-shaped), merged over the generated one. */
  extra?: Plain;
}

/**
 * agent.yaml. Paths are relative to the file (packages/ and data/ next to it); the token is not
 * in it (it goes through the environment, as recommended for real hosts).
 */
export function agentConfig(i: AgentConfigInput): Plain {
  const t = i.timing;
  return mergeConfig(
    {
      agent_code: i.code,
      area: i.area,
      controllers: [...i.controllerUrls],
      packages_dir: 'packages',
      data_dir: 'data',
      hostname: i.hostname,
      address: '127.0.0.1',
      labels: i.labels,
      zone: i.zone,
      mode: 'standard',
      group: i.group,
      deployment: 'blue',
      heartbeat_interval: t.heartbeatInterval,
      reconnect: { initial: t.reconnectInitial, max: t.reconnectMax },
      metrics_listen: i.metricsListen,
      stop_packages_on_exit: i.stopPackagesOnExit,
      artifact_keys: i.artifactKeys ? [...i.artifactKeys] : undefined,
    },
    i.extra,
  );
}
