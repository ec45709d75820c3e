/**
 * What `opsplane demo` adds to its config files: platform.yaml for the server (written here),
 * the header comments of controller.yaml and agent.yaml and how an agent names its host (the
 * files themselves are written by @opsplane/fleet, with DEMO_TIMING). Pure functions, so a unit
 * test can run the files through the real loaders of server, controller and agent. Timings are
 * shorter than the production defaults so that the demo reacts within seconds (agents online,
 * failover, views).
 */
import { toYaml } from '@opsplane/fleet';

export interface PlatformConfigInput {
  etcdUrl: string;
  port: number;
  serverDataDir: string;
  areas: Record<string, { agent_secret: string; controller_token: string }>;
  /** TLS everywhere (the default): the server's HTTPS files, the CA dir, etcd's TLS client files and user. */
  tls?: {
    server: { cert: string; key: string };
    caDir: string;
    etcd: { ca: string; cert: string; key: string; username: string; password: string };
  };
}

export function platformYaml(i: PlatformConfigInput): string {
  return toYaml(
    {
      etcd: {
        endpoints: [i.etcdUrl],
        watch_prefix: 'controllers/',
        dial_timeout: '5s',
        ...(i.tls
          ? {
              username: i.tls.etcd.username,
              password: i.tls.etcd.password,
              tls: { ca_file: i.tls.etcd.ca, cert_file: i.tls.etcd.cert, key_file: i.tls.etcd.key },
            }
          : {}),
      },
      controller: { api_timeout: '30s', retry_times: 2, retry_interval: '500ms' },
      cache: { agent_ttl: '15s', controller_ttl: '15s' },
      concurrency: { max_workers: 10 },
      server: {
        listen: `127.0.0.1:${i.port}`,
        data_dir: i.serverDataDir,
        agents_refresh_interval: '3s',
        // Quicker than production's 30 s, so that what one tries in the demo shows soon.
        alerts: { pending_for: '10s', interval: '5s' },
        ...(i.tls
          ? {
              // HTTPS; the CA issues agent certificates at deployment and signs renewals.
              tls: { cert: i.tls.server.cert, key: i.tls.server.key },
              pki: { ca_dir: i.tls.caDir },
            }
          : {}),
      },
      areas: i.areas,
    },
    [
      'Written by `opsplane demo` on every start (edits are overwritten).',
      'The platform server: opsplane server --config platform.yaml',
      'areas: the agent secret and controller API token of each area (the controllers have the same).',
      ...(i.tls
        ? [
            'TLS: server.tls (HTTPS), server.pki (the built-in CA in pki/ca), etcd over TLS with a client certificate and its own user.',
          ]
        : []),
    ].join('\n'),
  );
}

/**
 * Header of a controller.yaml (the file itself is @opsplane/fleet's, with DEMO_TIMING). The
 * area's secrets are not in the file: the demo passes them in the environment.
 */
export function controllerHeader(i: { area: string; configPath: string }): string {
  return [
    'Written by `opsplane demo` on every start (edits are overwritten).',
    `Run by hand: OPSPLANE_AGENT_SECRET=… OPSPLANE_CONTROLLER_TOKEN=… opsplane controller --config ${i.configPath}`,
    `(the demo passes ${i.area}'s agent_secret and controller_token from secrets.json in the environment)`,
  ].join('\n');
}

/** Header of an agent.yaml (@opsplane/fleet's; paths relative to the file, token from the environment). */
export function agentHeader(i: { code: string; name: string; area: string; tls?: boolean }): string {
  return [
    `Agent ${i.code} (device ${i.name}, ${i.area}). Written by \`opsplane demo\` on every start.`,
    i.tls
      ? 'tls: the agent pins the demo CA and authenticates with its own certificate (mutual TLS, no token); renewals land in data/tls/.'
      : 'token: passed by the demo in OPSPLANE_AGENT_TOKEN (HMAC-SHA256 of the area secret and "<area>:<code>").',
    'stop_packages_on_exit: after Ctrl-C no package of the demo keeps running.',
  ].join('\n');
}

/** How a demo agent describes its host: named after its device. */
export function demoAgentIdentity(
  name: string,
  area: string,
): { hostname: string; labels: Record<string, string>; zone: string; group: string } {
  return { hostname: name, labels: { demo: 'true', device: name }, zone: `${area}-z1`, group: 'demo' };
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
