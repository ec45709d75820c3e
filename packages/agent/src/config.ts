/**
 * agent.yaml: loading, validation (errors name the field), defaults, and resolution to the
 * AgentConfig the daemon runs with. Relative paths are relative to the config file's directory.
 * The token may come from OPSPLANE_AGENT_TOKEN instead (it wins), so it need not sit in a file.
 */
import { readFile } from 'node:fs/promises';
import { hostname as osHostname, networkInterfaces } from 'node:os';
import { dirname, resolve } from 'node:path';
import { AgentCodeSchema, ArtifactPublicKeySchema, AreaNameSchema, formatIssues } from '@opsplane/models';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { AgentConfigError } from './errors.js';
import { durationSchema } from '@opsplane/kit';

export const TOKEN_ENV = 'OPSPLANE_AGENT_TOKEN';

const ControllerUrlSchema = z.string().refine(
  (s) => {
    try {
      const u = new URL(/^[a-z]+:\/\//i.test(s) ? s : `http://${s}`);
      return ['http:', 'https:', 'ws:', 'wss:'].includes(u.protocol) && u.hostname !== '';
    } catch {
      return false;
    }
  },
  { message: 'must be an http(s):// or ws(s):// URL such as http://controller-1:8080' },
);

const ListenSchema = z
  .string()
  .regex(/^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]*):\d{1,5}$/, {
    message: 'must be host:port, e.g. 127.0.0.1:9464 or :9464',
  })
  .transform((s) => {
    const i = s.lastIndexOf(':');
    const host = s.slice(0, i).replace(/^\[|\]$/g, '');
    return { host: host === '' ? '0.0.0.0' : host, port: Number(s.slice(i + 1)) };
  })
  .refine((l) => l.port <= 65535, { message: 'port must be at most 65535' });

const stringish = z.union([z.string(), z.number(), z.boolean()]).transform(String);

export const AgentConfigFileSchema = z
  .object({
    agent_code: AgentCodeSchema,
    area: AreaNameSchema,
    token: z.string().min(1, { message: 'token must not be empty' }).optional(),
    controllers: z.array(ControllerUrlSchema).min(1, { message: 'controllers must list at least one URL' }),
    packages_dir: z.string().min(1),
    data_dir: z.string().min(1),
    hostname: z.string().min(1).optional(),
    address: z.string().min(1).optional(),
    labels: z.record(z.string(), stringish).default({}),
    zone: z.string().optional(),
    mode: z.string().optional(),
    group: z.string().optional(),
    deployment: z.string().optional(),
    heartbeat_interval: durationSchema({ min: 100, max: 600_000 }).default(10_000),
    reconnect: z
      .object({
        initial: durationSchema({ min: 10 }).default(500),
        max: durationSchema({ min: 10 }).default(30_000),
      })
      .strict()
      .prefault({})
      .refine((r) => r.max >= r.initial, { message: 'reconnect.max must be at least reconnect.initial' }),
    metrics_listen: ListenSchema.optional(),
    /**
     * TLS to the controllers: `ca` — the CA bundle the controllers' certificates must chain to
     * (pinned at install time; the system's CAs are not used) — and, for mutual TLS, the agent's
     * own `cert` and `key`. Each is a path (relative to this file) or inline PEM. The agent
     * renews its certificate over the control channel in the last third of its life and keeps
     * the renewed one in data_dir/tls/.
     */
    tls: z
      .object({
        ca: z.string().min(1),
        cert: z.string().min(1).optional(),
        key: z.string().min(1).optional(),
        renew: z.boolean().default(true),
        /** How often the certificate's remaining life is checked. */
        renew_check_interval: durationSchema({ min: 100 }).default(3_600_000),
      })
      .strict()
      .refine((t) => (t.cert === undefined) === (t.key === undefined), {
        message: 'cert and key go together',
      })
      .optional(),
    /**
     * The server's artifact signing keys (`ed25519:<base64>`), pinned at install time. Every
     * artifact (package or agent bundle) must carry a valid signature by one of them; with none
     * listed, every artifact is refused (`artifact_untrusted_key`): secure by default.
     */
    artifact_keys: z.array(ArtifactPublicKeySchema).default([]),
    /** When false (default) stopping the agent leaves packages running, to be re-adopted. */
    stop_packages_on_exit: z.boolean().default(false),
    package_logs: z
      .object({
        max_bytes: z
          .number()
          .int()
          .min(1024)
          .default(10 * 1024 * 1024),
        keep: z.number().int().min(0).max(20).default(2),
      })
      .strict()
      .prefault({}),
  })
  .strict();
export type AgentConfigFile = z.input<typeof AgentConfigFileSchema>;

/** What the daemon runs with: validated, defaults applied, paths absolute. */
export interface AgentConfig {
  agentCode: string;
  area: string;
  /** HMAC agent token; '' when the agent authenticates by certificate only. */
  token: string;
  /** Controller base URLs in failover order. */
  controllers: string[];
  packagesDir: string;
  dataDir: string;
  hostname: string;
  address: string;
  labels: Record<string, string>;
  zone?: string;
  mode?: string;
  group?: string;
  deployment?: string;
  heartbeatIntervalMs: number;
  reconnect: { initialMs: number; maxMs: number };
  metricsListen?: { host: string; port: number };
  stopPackagesOnExit: boolean;
  packageLogs: { maxBytes: number; keep: number };
  /** Pinned artifact signing keys (`ed25519:<base64>`); empty = every artifact is refused. */
  artifactKeys: string[];
  /** Paths (absolute) or inline PEM; undefined = no TLS settings (ws:// or the system's CAs). */
  tls?: { ca: string; cert?: string; key?: string; renew: boolean; renewCheckIntervalMs: number };
}

/** First non-internal IPv4 address of the host, else 127.0.0.1. */
export function defaultAddress(): string {
  for (const addrs of Object.values(networkInterfaces())) {
    for (const a of addrs ?? []) {
      if (a.family === 'IPv4' && !a.internal) return a.address;
    }
  }
  return '127.0.0.1';
}

/**
 * Validates a parsed agent.yaml document. `source` names the file in errors; relative paths
 * resolve against `baseDir`.
 */
export function parseAgentConfig(
  doc: unknown,
  opts: { source?: string; baseDir?: string; env?: NodeJS.ProcessEnv } = {},
): AgentConfig {
  const source = opts.source ?? 'agent config';
  const env = opts.env ?? process.env;
  const parsed = AgentConfigFileSchema.safeParse(doc ?? {});
  if (!parsed.success) throw new AgentConfigError(source, formatIssues(parsed.error.issues));
  const c = parsed.data;
  const envToken = env[TOKEN_ENV];
  const token = envToken !== undefined && envToken !== '' ? envToken : c.token;
  if (token === undefined && !c.tls?.cert) {
    throw new AgentConfigError(
      source,
      `token: required (set token in the file or ${TOKEN_ENV} in the environment), unless tls.cert and tls.key are set`,
    );
  }
  const baseDir = opts.baseDir ?? process.cwd();
  const pemOrPath = (v: string) => (v.includes('-----BEGIN') ? v : resolve(baseDir, v));
  return {
    agentCode: c.agent_code,
    area: c.area,
    token: token ?? '',
    controllers: c.controllers,
    packagesDir: resolve(baseDir, c.packages_dir),
    dataDir: resolve(baseDir, c.data_dir),
    hostname: c.hostname ?? osHostname(),
    address: c.address ?? defaultAddress(),
    labels: c.labels,
    ...(c.zone !== undefined ? { zone: c.zone } : {}),
    ...(c.mode !== undefined ? { mode: c.mode } : {}),
    ...(c.group !== undefined ? { group: c.group } : {}),
    ...(c.deployment !== undefined ? { deployment: c.deployment } : {}),
    heartbeatIntervalMs: c.heartbeat_interval,
    reconnect: { initialMs: c.reconnect.initial, maxMs: c.reconnect.max },
    ...(c.metrics_listen !== undefined ? { metricsListen: c.metrics_listen } : {}),
    stopPackagesOnExit: c.stop_packages_on_exit,
    packageLogs: { maxBytes: c.package_logs.max_bytes, keep: c.package_logs.keep },
    artifactKeys: c.artifact_keys,
    ...(c.tls
      ? {
          tls: {
            ca: pemOrPath(c.tls.ca),
            ...(c.tls.cert ? { cert: pemOrPath(c.tls.cert) } : {}),
            ...(c.tls.key ? { key: pemOrPath(c.tls.key) } : {}),
            renew: c.tls.renew,
            renewCheckIntervalMs: c.tls.renew_check_interval,
          },
        }
      : {}),
  };
}

/** Reads and validates agent.yaml; throws AgentConfigError naming the file and field. */
export async function loadAgentConfig(
  path: string,
  env: NodeJS.ProcessEnv = process.env,
): Promise<AgentConfig> {
  const abs = resolve(path);
  let text: string;
  try {
    text = await readFile(abs, 'utf8');
  } catch (e) {
    throw new AgentConfigError(abs, `cannot read: ${(e as NodeJS.ErrnoException).code ?? String(e)}`, e);
  }
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (e) {
    throw new AgentConfigError(abs, `invalid YAML: ${e instanceof Error ? e.message : String(e)}`, e);
  }
  return parseAgentConfig(doc, { source: abs, baseDir: dirname(abs), env });
}
