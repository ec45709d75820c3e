/**
 * The config files `opsplane demo` writes (as YAML text): platform.yaml for the server,
 * controller.yaml per controller, agent.yaml per agent. Pure functions, so a unit test can run
 * them through the real loaders of server, controller and agent. Timings are shorter than the
 * production defaults so that the demo reacts within seconds (agents online, failover, views).
 */
import { toYaml } from './yaml.js';

export interface PlatformConfigInput {
  etcdUrl: string;
  port: number;
  serverDataDir: string;
  areas: Record<string, { agent_secret: string; controller_token: string }>;
}

export function platformYaml(i: PlatformConfigInput): string {
  return toYaml(
    {
      etcd: { endpoints: [i.etcdUrl], watch_prefix: 'controllers/', dial_timeout: '5s' },
      controller: { api_timeout: '30s', retry_times: 2, retry_interval: '500ms' },
      cache: { agent_ttl: '15s', controller_ttl: '15s' },
      concurrency: { max_workers: 10 },
      server: {
        listen: `127.0.0.1:${i.port}`,
        data_dir: i.serverDataDir,
        agents_refresh_interval: '3s',
        // Quicker than production's 30 s, so that what one tries in the demo shows soon.
        alerts: { pending_for: '10s', interval: '5s' },
      },
      areas: i.areas,
    },
    [
      'Written by `opsplane demo` on every start (edits are overwritten).',
      'The platform server: opsplane server --config platform.yaml',
      'areas: the agent secret and controller API token of each area (the controllers have the same).',
    ].join('\n'),
  );
}

export interface ControllerConfigInput {
  id: string;
  area: string;
  port: number;
  etcdUrl: string;
  /** Shown in the header: how to run it by hand. */
  configPath: string;
}

/** The area's secrets are not in the file: the demo passes them in the environment. */
export function controllerYaml(i: ControllerConfigInput): string {
  return toYaml(
    {
      area: i.area,
      id: i.id,
      listen: `127.0.0.1:${i.port}`,
      etcd: { endpoints: [i.etcdUrl], prefix: 'controllers/', dial_timeout: '5s' },
      lease_ttl: '5s',
      refresh_interval: '2s',
      agents: { heartbeat_interval: '2s', offline_after: '6s', request_timeout: '10s' },
      batch: { per_agent_timeout: '30s' },
    },
    [
      'Written by `opsplane demo` on every start (edits are overwritten).',
      `Run by hand: OPSPLANE_AGENT_SECRET=… OPSPLANE_CONTROLLER_TOKEN=… opsplane controller --config ${i.configPath}`,
      `(the demo passes ${i.area}'s agent_secret and controller_token from secrets.json in the environment)`,
    ].join('\n'),
  );
}

export interface AgentConfigInput {
  code: string;
  area: string;
  /** Device name; also the agent's host name. */
  name: string;
  controllerUrls: string[];
}

/** Paths are relative to the file (packages/, data/ next to it); the token comes from the environment. */
export function agentYaml(i: AgentConfigInput): string {
  return toYaml(
    {
      agent_code: i.code,
      area: i.area,
      controllers: i.controllerUrls,
      packages_dir: 'packages',
      data_dir: 'data',
      hostname: i.name,
      address: '127.0.0.1',
      labels: { demo: 'true', device: i.name },
      zone: `${i.area}-z1`,
      mode: 'standard',
      group: 'demo',
      deployment: 'blue',
      heartbeat_interval: '2s',
      reconnect: { initial: '200ms', max: '3s' },
      stop_packages_on_exit: true,
    },
    [
      `Agent ${i.code} (device ${i.name}, ${i.area}). Written by \`opsplane demo\` on every start.`,
      'token: passed by the demo in OPSPLANE_AGENT_TOKEN (HMAC-SHA256 of the area secret and "<area>:<code>").',
      'stop_packages_on_exit: after Ctrl-C no package of the demo keeps running.',
    ].join('\n'),
  );
}

/** Example config the banner's `opsplane batch config` command pushes. */
export const EXAMPLE_COLLECTOR_CONFIG = [
  '# A config for the sample package "collector", to push with',
  '#   opsplane batch config … --package collector --file <this file>',
  '# The agent writes it to packages/collector/config/collector.yaml, restarts the collector and',
  '# keeps the new file only if the collector comes up healthy (else it restores the old one).',
  'path: ../web/access.log',
  'interval: 500ms',
  'label: pushed-from-the-cli',
  '',
].join('\n');
