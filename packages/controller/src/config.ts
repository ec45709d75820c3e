/**
 * Controller configuration: a YAML file (snake_case keys, durations like `10s`, sizes like
 * `16MiB`), overridden by environment variables (secrets), overridden by explicit values (CLI
 * flags, tests). Everything is validated with zod and normalised into `ControllerConfig`
 * (camelCase, milliseconds, bytes) so the rest of the controller never re-parses anything.
 */
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { BlockList, isIP } from 'node:net';
import { hostname, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import {
  ArtifactPublicKeySchema,
  AreaNameSchema,
  ControllerIdSchema,
  DEFAULT_CONTROLLER_PREFIX,
  OpsplaneError,
  formatIssues,
} from '@opsplane/models';
import { parseDuration } from '@opsplane/kit';
import { loadTlsMaterial } from '@opsplane/pki';

/** A configuration problem the operator must fix; the CLI prints it and exits 2. */
export class ConfigError extends OpsplaneError {
  constructor(message: string, details?: unknown) {
    super('validation_failed', message, { details });
  }
}

const SIZE_UNITS: Record<string, number> = {
  b: 1,
  k: 1000,
  kb: 1000,
  kib: 1024,
  m: 1000 ** 2,
  mb: 1000 ** 2,
  mib: 1024 ** 2,
  g: 1000 ** 3,
  gb: 1000 ** 3,
  gib: 1024 ** 3,
};

/** Bytes in `16MiB`, `512kb`, `1048576`; throws a RangeError naming the input. */
export function parseSize(input: string | number): number {
  if (typeof input === 'number') {
    if (!Number.isInteger(input) || input <= 0) throw new RangeError(`invalid size ${input}`);
    return input;
  }
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(input);
  const unit = SIZE_UNITS[(m?.[2] ?? '').toLowerCase() || 'b'];
  if (!m || unit === undefined)
    throw new RangeError(`invalid size '${input}' (expected e.g. 1048576, 512KiB, 16MiB)`);
  return Math.round(Number(m[1]) * unit);
}

function zodFrom<T>(parse: (v: string | number) => T, what: string) {
  return z.union([z.string(), z.number()]).transform((v, ctx) => {
    try {
      return parse(v);
    } catch (e) {
      ctx.addIssue({ code: 'custom', message: `${what}: ${(e as Error).message}` });
      return z.NEVER;
    }
  });
}

const Duration = zodFrom(parseDuration, 'duration');
const Size = zodFrom(parseSize, 'size');
/** Bytes per second: a size, optionally written with `/s` (`20MiB`, `20MiB/s`). */
const Rate = zodFrom((v) => parseSize(typeof v === 'string' ? v.replace(/\s*\/\s*s\s*$/i, '') : v), 'rate');

/** `host:port`, `:port` (all interfaces) or `[v6]:port`. */
export interface ListenAddress {
  host: string;
  port: number;
}

export function parseListen(s: string): ListenAddress {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(s.trim());
  const port = Number(m?.[3]);
  if (!m || !Number.isInteger(port) || port > 65535) {
    throw new RangeError(`invalid listen address '${s}' (expected host:port, e.g. 127.0.0.1:8081)`);
  }
  const host = m[1] ?? m[2] ?? '';
  return { host: host === '' ? '0.0.0.0' : host, port };
}

const Listen = zodFrom((v) => parseListen(String(v)), 'listen');

/** TLS client material (paths or inline PEM): the CA bundle to trust, a certificate and key to present. */
const TlsClientSchema = z
  .object({ ca: z.string().min(1), cert: z.string().min(1).optional(), key: z.string().min(1).optional() })
  .strict();

function readTlsClient(t: z.infer<typeof TlsClientSchema>): { ca: string; cert?: string; key?: string } {
  const m = loadTlsMaterial(t);
  return { ca: m.ca ?? '', ...(m.cert ? { cert: m.cert } : {}), ...(m.key ? { key: m.key } : {}) };
}

/** The file format (and the shape of `overrides`). Unknown keys are errors: typos must not pass silently. */
export const ControllerFileConfigSchema = z
  .object({
    area: AreaNameSchema,
    id: ControllerIdSchema.optional(),
    listen: Listen.prefault('127.0.0.1:8081'),
    /** What goes into etcd for the platform and peers to call; default: the bound listen address. */
    advertise: z.string().min(1).optional(),
    etcd: z
      .object({
        endpoints: z.array(z.string().min(1)).min(1).default(['http://127.0.0.1:2379']),
        prefix: z
          .string()
          .regex(/^[^\s]*\/$/, { message: "prefix must end with '/'" })
          .default(DEFAULT_CONTROLLER_PREFIX),
        dial_timeout: Duration.prefault('5s'),
        /** etcd's own authentication (env OPSPLANE_ETCD_PASSWORD for the password). */
        username: z.string().min(1).optional(),
        password: z.string().min(1).optional(),
        /** TLS to etcd: CA bundle, client certificate and key (paths or PEM). */
        tls: TlsClientSchema.optional(),
      })
      .strict()
      .prefault({}),
    /**
     * HMAC secret of the area's agent tokens (env OPSPLANE_AGENT_SECRET). Required unless
     * agents authenticate by certificate only (`agents.auth: mtls`).
     */
    agent_secret: z.string().min(16, { message: 'agent_secret must be at least 16 characters' }).optional(),
    /** Secrets that also verify tokens while the area's secret is being rotated. */
    agent_secret_previous: z
      .array(z.string().min(16, { message: 'agent_secret_previous entries must be at least 16 characters' }))
      .default([]),
    /**
     * HTTPS and wss: this controller's certificate and key, and the CA bundle that agents'
     * client certificates (mutual TLS) must chain to. Files are re-read when they change.
     */
    tls: z
      .object({
        cert: z.string().min(1),
        key: z.string().min(1),
        ca: z.string().min(1),
        /** How often the files are checked for a renewed certificate or a new CA bundle. */
        reload_interval: Duration.prefault('10s'),
        /**
         * Renew this controller's certificate through the platform (etcd relay) in the last
         * third of its life, writing the new files over `cert` and `key`.
         */
        renew: z.boolean().default(true),
      })
      .strict()
      .optional(),
    /** Every /api/v1 route except the agent socket needs `Authorization: Bearer` (env OPSPLANE_CONTROLLER_TOKEN). */
    api_token: z.string().min(1).optional(),
    /**
     * Start without api_token: anyone who reaches the controller may list, restart and
     * reconfigure the area's agents. Required to run without a token; logged loudly
     * (`--insecure-no-token`).
     */
    insecure_no_token: z.boolean().default(false),
    lease_ttl: Duration.prefault('10s'),
    /** How often the etcd value (last_heartbeat, agent_count) is rewritten. */
    refresh_interval: Duration.prefault('5s'),
    agents: z
      .object({
        heartbeat_interval: Duration.prefault('10s'),
        /** Default: 3 × heartbeat_interval. */
        offline_after: Duration.optional(),
        offline_retention: Duration.prefault('24h'),
        /** Timeout of single-agent requests (packages, health, metrics). */
        request_timeout: Duration.prefault('15s'),
        /** A connection that sends no hello within this is closed. */
        hello_timeout: Duration.prefault('10s'),
        max_frame_size: Size.prefault('16MiB'),
        /**
         * How agents authenticate: `token` (HMAC agent token), `mtls` (client certificate of the
         * built-in CA naming the agent) or `mtls_or_token`. Default: `mtls_or_token` with `tls`
         * (and `mtls` when there is no agent_secret), `token` without.
         */
        auth: z.enum(['token', 'mtls', 'mtls_or_token']).optional(),
        /** Answer agents' certificate renewal requests (relayed to the platform through etcd). */
        renewal: z.boolean().default(true),
        /** How long a relayed renewal may wait for the platform. */
        renewal_timeout: Duration.prefault('30s'),
      })
      .strict()
      .prefault({}),
    batch: z
      .object({
        per_agent_timeout: Duration.prefault('30s'),
        max_agents: z.number().int().positive().default(10_000),
        /** Agent requests in flight per batch. */
        concurrency: z.number().int().positive().default(1000),
      })
      .strict()
      .prefault({}),
    http: z
      .object({
        body_limit: Size.prefault('16MiB'),
        rate_limit: z
          .object({
            /** Requests per client IP and window; 0 disables rate limiting. */
            max: z.number().int().nonnegative().default(6000),
            window: Duration.prefault('1m'),
          })
          .strict()
          .prefault({}),
        trust_proxy: z.boolean().default(false),
      })
      .strict()
      .prefault({}),
    peers: z
      .object({
        /** Reach agents held by other controllers of the area. */
        forward: z.boolean().default(true),
        /** Extra time a forwarded call may take beyond the agent timeout. */
        timeout_margin: Duration.prefault('5s'),
        /** How long a peer's agent list is reused for GET /agents (concurrent requests share one call). */
        list_ttl: Duration.prefault('2s'),
        /** Timeout of listing one peer's agents. */
        list_timeout: Duration.prefault('5s'),
      })
      .strict()
      .prefault({}),
    /** The per-area artifact relay: the cache agents download packages and agent bundles from. */
    artifacts: z
      .object({
        /** Where the cache lives (default: <tmpdir>/opsplane-controller/<id>/artifacts). */
        dir: z.string().min(1).optional(),
        /**
         * The server's artifact signing keys (`ed25519:<base64>`). With keys, an artifact whose
         * signature does not verify is refused; without, only its hash and size are checked.
         */
        keys: z.array(ArtifactPublicKeySchema).default([]),
        /** Bytes per second for all agent downloads together (e.g. `20MiB`); default unlimited. */
        bandwidth: Rate.optional(),
        /** Cache size; least recently used complete artifacts are evicted beyond it. Default unlimited. */
        max_bytes: Size.optional(),
      })
      .strict()
      .prefault({}),
    /**
     * Off unless set: a second listener, on one private interface, that serves the guide's routes
     * without api_token — for Go clients, which cannot send one. See the README.
     */
    legacy_listen: Listen.optional(),
    /** Source addresses (CIDRs or single addresses) the legacy listener accepts; empty = any. */
    legacy_allow: z.array(z.string().min(1)).default([]),
  })
  .strict();

export type ControllerFileConfig = z.input<typeof ControllerFileConfigSchema>;

export type AgentAuthMode = 'token' | 'mtls' | 'mtls_or_token';

/** Normalised configuration used by startController. */
export interface ControllerConfig {
  area: string;
  id: string;
  listen: ListenAddress;
  advertise: string | undefined;
  etcd: {
    endpoints: string[];
    prefix: string;
    dialTimeoutMs: number;
    auth?: { username: string; password: string };
    tls?: { ca: string; cert?: string; key?: string };
  };
  /** Secrets agent tokens verify against: the current one first, then previous ones (rotation). */
  agentSecrets: string[];
  /** The current secret, if any (kept for callers that know one). */
  agentSecret: string | undefined;
  /** Paths (or PEM) of this controller's TLS material; undefined = plain HTTP. */
  tls: { cert: string; key: string; ca: string; reloadIntervalMs: number; renew: boolean } | undefined;
  apiToken: string | undefined;
  /** No api_token, on purpose (insecure_no_token): the API is open to whoever reaches it. */
  insecureNoToken: boolean;
  leaseTtlSeconds: number;
  refreshIntervalMs: number;
  agents: {
    heartbeatIntervalMs: number;
    offlineAfterMs: number;
    offlineRetentionMs: number;
    requestTimeoutMs: number;
    helloTimeoutMs: number;
    maxFrameBytes: number;
    auth: AgentAuthMode;
    renewal: boolean;
    renewalTimeoutMs: number;
  };
  batch: { perAgentTimeoutMs: number; maxAgents: number; concurrency: number };
  http: { bodyLimitBytes: number; rateLimit: { max: number; windowMs: number }; trustProxy: boolean };
  peers: { forward: boolean; timeoutMarginMs: number; listTtlMs: number; listTimeoutMs: number };
  artifacts: {
    dir: string;
    /** Pinned signing keys; empty = hash and size checked, signatures not. */
    keys: string[];
    /** Agent download bandwidth, bytes per second; 0 = unlimited. */
    bandwidthBytesPerS: number;
    /** Cache size limit in bytes; 0 = unlimited. */
    maxBytes: number;
  };
  /** The token-less listener for Go clients; undefined = off (the default). */
  legacy: { listen: ListenAddress; allow: string[] } | undefined;
}

export interface LoadControllerConfigOptions {
  /** YAML file path. */
  file?: string | undefined;
  /** Values that win over the file and the environment (CLI flags, tests). Same shape as the file. */
  overrides?: DeepPartial<ControllerFileConfig>;
  /** Environment to read OPSPLANE_* from; default process.env. */
  env?: NodeJS.ProcessEnv;
}

export type DeepPartial<T> = T extends readonly unknown[]
  ? T
  : T extends object
    ? { [K in keyof T]?: DeepPartial<T[K]> | undefined }
    : T;

type Plain = Record<string, unknown>;
const isPlain = (v: unknown): v is Plain => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Merges `b` over `a`; objects recursively, everything else replaced; undefined never overrides. */
function deepMerge(a: Plain, b: Plain): Plain {
  const out: Plain = { ...a };
  for (const [k, v] of Object.entries(b)) {
    if (v === undefined) continue;
    const prev = out[k];
    out[k] = isPlain(prev) && isPlain(v) ? deepMerge(prev, v) : v;
  }
  return out;
}

/** `web-01.example.com` → `web-01.example.com-3f9a1c`; characters etcd keys must not carry are replaced. */
export function defaultControllerId(): string {
  const host = hostname()
    .replace(/[^A-Za-z0-9._-]/g, '-')
    .replace(/\.\.+/g, '.')
    .replace(/^[^A-Za-z0-9]+/, '');
  return `${host.slice(0, 100) || 'controller'}-${randomBytes(3).toString('hex')}`;
}

function envLayer(env: NodeJS.ProcessEnv): Plain {
  const layer: Plain = {};
  if (env.OPSPLANE_AGENT_SECRET) layer.agent_secret = env.OPSPLANE_AGENT_SECRET;
  if (env.OPSPLANE_CONTROLLER_TOKEN) layer.api_token = env.OPSPLANE_CONTROLLER_TOKEN;
  const etcd: Plain = {};
  if (env.OPSPLANE_ETCD_ENDPOINTS) {
    etcd.endpoints = env.OPSPLANE_ETCD_ENDPOINTS.split(',')
      .map((s) => s.trim())
      .filter(Boolean);
  }
  if (env.OPSPLANE_ETCD_PASSWORD) etcd.password = env.OPSPLANE_ETCD_PASSWORD;
  if (Object.keys(etcd).length) layer.etcd = etcd;
  return layer;
}

/** Validates a raw (file-shaped) object and normalises it. */
export function parseControllerConfig(raw: unknown): ControllerConfig {
  if (isPlain(raw) && raw.area === undefined) {
    throw new ConfigError('area is required (--area <area> or `area:` in the config file)');
  }
  const parsed = ControllerFileConfigSchema.safeParse(raw);
  if (!parsed.success) {
    throw new ConfigError(
      `invalid controller configuration: ${formatIssues(parsed.error.issues)}`,
      parsed.error.issues,
    );
  }
  const c = parsed.data;
  // Agent authentication first: without a secret and without tls no agent could ever connect.
  const auth: AgentAuthMode =
    c.agents.auth ?? (c.tls ? (c.agent_secret ? 'mtls_or_token' : 'mtls') : 'token');
  if (auth !== 'token' && !c.tls) {
    throw new ConfigError(
      `agents.auth: ${auth} needs tls (cert, key and the ca agents' certificates chain to)`,
    );
  }
  if (auth !== 'mtls' && !c.agent_secret) {
    throw new ConfigError(
      'agent_secret is required (set OPSPLANE_AGENT_SECRET or agent_secret in the config file), unless agents.auth is mtls',
    );
  }
  if (c.api_token === undefined && !c.insecure_no_token) {
    throw new ConfigError(
      'api_token is required (set OPSPLANE_CONTROLLER_TOKEN or api_token in the config file): without it ' +
        'anyone who can reach this controller can restart and reconfigure every agent of the area. To run ' +
        'it open anyway, set insecure_no_token: true or pass --insecure-no-token',
    );
  }
  const heartbeatIntervalMs = c.agents.heartbeat_interval;
  const offlineAfterMs = c.agents.offline_after ?? 3 * heartbeatIntervalMs;
  if (heartbeatIntervalMs < 100) throw new ConfigError('agents.heartbeat_interval must be at least 100ms');
  if (offlineAfterMs <= heartbeatIntervalMs) {
    throw new ConfigError('agents.offline_after must be longer than agents.heartbeat_interval');
  }
  // etcd refuses leases shorter than its minimum (about 2 s with default election timeouts).
  const leaseTtlSeconds = Math.ceil(c.lease_ttl / 1000);
  if (leaseTtlSeconds < 2) throw new ConfigError('lease_ttl must be at least 2s');
  if (c.refresh_interval < 100 || c.refresh_interval > 10_000) {
    throw new ConfigError(
      'refresh_interval must be between 100ms and 10s (the value is rewritten at least every 10 s)',
    );
  }
  for (const [name, ms] of [
    ['batch.per_agent_timeout', c.batch.per_agent_timeout],
    ['agents.request_timeout', c.agents.request_timeout],
    ['agents.hello_timeout', c.agents.hello_timeout],
    ['etcd.dial_timeout', c.etcd.dial_timeout],
  ] as const) {
    if (ms <= 0) throw new ConfigError(`${name} must be positive`);
  }
  if ((c.etcd.username === undefined) !== (c.etcd.password === undefined)) {
    throw new ConfigError(
      'etcd.username and etcd.password go together (the password may come from OPSPLANE_ETCD_PASSWORD)',
    );
  }
  let etcdTls: ControllerConfig['etcd']['tls'];
  try {
    etcdTls = c.etcd.tls ? readTlsClient(c.etcd.tls) : undefined;
  } catch (e) {
    throw new ConfigError(`etcd.tls: ${(e as Error).message}`);
  }
  const id = c.id ?? defaultControllerId();
  return {
    area: c.area,
    id,
    listen: c.listen,
    advertise: c.advertise,
    etcd: {
      endpoints: c.etcd.endpoints,
      prefix: c.etcd.prefix,
      dialTimeoutMs: c.etcd.dial_timeout,
      ...(c.etcd.username && c.etcd.password
        ? { auth: { username: c.etcd.username, password: c.etcd.password } }
        : {}),
      ...(etcdTls ? { tls: etcdTls } : {}),
    },
    agentSecrets: [...(c.agent_secret ? [c.agent_secret] : []), ...c.agent_secret_previous],
    agentSecret: c.agent_secret,
    tls: c.tls
      ? {
          cert: c.tls.cert,
          key: c.tls.key,
          ca: c.tls.ca,
          reloadIntervalMs: c.tls.reload_interval,
          renew: c.tls.renew,
        }
      : undefined,
    apiToken: c.api_token,
    insecureNoToken: c.api_token === undefined,
    leaseTtlSeconds,
    refreshIntervalMs: c.refresh_interval,
    agents: {
      heartbeatIntervalMs,
      offlineAfterMs,
      offlineRetentionMs: c.agents.offline_retention,
      requestTimeoutMs: c.agents.request_timeout,
      helloTimeoutMs: c.agents.hello_timeout,
      maxFrameBytes: c.agents.max_frame_size,
      auth,
      renewal: c.agents.renewal,
      renewalTimeoutMs: c.agents.renewal_timeout,
    },
    batch: {
      perAgentTimeoutMs: c.batch.per_agent_timeout,
      maxAgents: c.batch.max_agents,
      concurrency: c.batch.concurrency,
    },
    http: {
      bodyLimitBytes: c.http.body_limit,
      rateLimit: { max: c.http.rate_limit.max, windowMs: c.http.rate_limit.window },
      trustProxy: c.http.trust_proxy,
    },
    peers: {
      forward: c.peers.forward,
      timeoutMarginMs: c.peers.timeout_margin,
      listTtlMs: c.peers.list_ttl,
      listTimeoutMs: c.peers.list_timeout,
    },
    artifacts: {
      dir:
        c.artifacts.dir !== undefined
          ? resolve(c.artifacts.dir)
          : defaultArtifactDir(c.id, c.area, c.listen.port, id),
      keys: c.artifacts.keys,
      bandwidthBytesPerS: c.artifacts.bandwidth ?? 0,
      maxBytes: c.artifacts.max_bytes ?? 0,
    },
    legacy: c.legacy_listen ? legacyListener(c.legacy_listen, c.legacy_allow) : undefined,
  };
}

/**
 * The controller has no data directory of its own, so the cache defaults to one under the temp
 * dir that a restart of the same controller finds again: named by its configured id, else by
 * area and port (a generated id changes on every start), else (port 0) by the generated id.
 */
function defaultArtifactDir(
  configuredId: string | undefined,
  area: string,
  port: number,
  id: string,
): string {
  const name = configuredId ?? (port !== 0 ? `${area}-${port}` : id);
  return join(tmpdir(), 'opsplane-controller', name.replace(/[^A-Za-z0-9._-]/g, '_'), 'artifacts');
}

/**
 * Checks the legacy listener's settings: one private (or loopback) interface — never a
 * wildcard or a public address, since it serves without the API token — and valid CIDRs.
 */
function legacyListener(listen: ListenAddress, allow: string[]): { listen: ListenAddress; allow: string[] } {
  const host = listen.host;
  if (host === '0.0.0.0' || host === '::' || host === '') {
    throw new ConfigError(
      'legacy_listen must name one private interface (e.g. 10.0.0.5:8081), not all interfaces: it serves without the API token',
    );
  }
  if (!isIP(host)) throw new ConfigError(`legacy_listen must be an IP address, got '${host}'`);
  if (!isPrivateAddress(host)) {
    throw new ConfigError(
      `legacy_listen ${host} is not a private or loopback address; the token-less listener must not face a public network`,
    );
  }
  for (const entry of allow) {
    try {
      parseCidr(entry);
    } catch (e) {
      throw new ConfigError(`legacy_allow: ${(e as Error).message}`);
    }
  }
  return { listen, allow };
}

/** `10.0.0.0/8`, `fd00::/8` or a single address (a /32 or /128). */
export function parseCidr(s: string): { address: string; prefix: number; family: 'ipv4' | 'ipv6' } {
  const [addr = '', bits, ...rest] = s.trim().split('/');
  const v = isIP(addr);
  if (v === 0 || rest.length > 0) throw new RangeError(`'${s}' is not an IP address or CIDR`);
  const max = v === 4 ? 32 : 128;
  const prefix = bits === undefined ? max : Number(bits);
  if (!/^\d{1,3}$/.test(bits ?? String(max)) || prefix > max) {
    throw new RangeError(`'${s}' has an invalid prefix length`);
  }
  return { address: addr, prefix, family: v === 4 ? 'ipv4' : 'ipv6' };
}

/** Loopback, RFC 1918, link-local, CGNAT (100.64/10), IPv6 ULA (fc00::/7) and link-local (fe80::/10). */
export function isPrivateAddress(host: string): boolean {
  const list = new BlockList();
  for (const [net, bits] of [
    ['127.0.0.0', 8],
    ['10.0.0.0', 8],
    ['172.16.0.0', 12],
    ['192.168.0.0', 16],
    ['169.254.0.0', 16],
    ['100.64.0.0', 10],
  ] as const)
    list.addSubnet(net, bits, 'ipv4');
  list.addAddress('::1', 'ipv6');
  list.addSubnet('fc00::', 7, 'ipv6');
  list.addSubnet('fe80::', 10, 'ipv6');
  const v = isIP(host);
  return v !== 0 && list.check(host, v === 4 ? 'ipv4' : 'ipv6');
}

/** Reads the file (if any), layers environment and overrides on it, validates. */
export async function loadControllerConfig(
  opts: LoadControllerConfigOptions = {},
): Promise<ControllerConfig> {
  let fromFile: Plain = {};
  if (opts.file !== undefined) {
    let text: string;
    try {
      text = await readFile(opts.file, 'utf8');
    } catch (e) {
      throw new ConfigError(`cannot read config file '${opts.file}': ${(e as Error).message}`);
    }
    let doc: unknown;
    try {
      doc = parseYaml(text);
    } catch (e) {
      throw new ConfigError(`config file '${opts.file}' is not valid YAML: ${(e as Error).message}`);
    }
    if (doc !== null && doc !== undefined && !isPlain(doc)) {
      throw new ConfigError(`config file '${opts.file}' must hold a mapping at the top level`);
    }
    fromFile = doc ?? {};
  }
  const merged = deepMerge(
    deepMerge(fromFile, envLayer(opts.env ?? process.env)),
    (opts.overrides ?? {}) as Plain,
  );
  return parseControllerConfig(merged);
}
