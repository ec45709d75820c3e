/**
 * Server configuration: the guide's platform.yaml (etcd, controller, cache, concurrency — parsed
 * by @opsplane/platform) plus a `server:` section for this process. Precedence, lowest first:
 * defaults < file < environment < programmatic overrides (CLI flags, tests).
 */
import { readFile } from 'node:fs/promises';
import { isAbsolute, resolve } from 'node:path';
import { inspect } from 'node:util';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { AreaNameSchema, ArtifactPublicKeySchema, formatIssues, ValidationError } from '@opsplane/models';
import { AlertKindSchema } from '@opsplane/api';
import { DurationSchema } from '@opsplane/kit';
import { loadPlatformConfig, parsePlatformConfig, type PlatformConfig } from '@opsplane/platform';

const LISTEN_RE = /^(?:\[([0-9a-fA-F:.]+)\]|([^:\s]*)):(\d{1,5})$/;

/** `host:port`, `[v6]:port` or `:port` (all interfaces) → host and port. */
export function parseListen(listen: string): { host: string; port: number } {
  const m = LISTEN_RE.exec(listen.trim());
  const port = m ? Number(m[3]) : NaN;
  if (!m || !Number.isInteger(port) || port > 65535) {
    throw new ValidationError(`server.listen: expected host:port such as 127.0.0.1:8080, got '${listen}'`);
  }
  const host = m[1] ?? m[2] ?? '';
  return { host: host === '' ? '0.0.0.0' : host, port };
}

/**
 * `scheme://host[:port]` in the form browsers send in `Origin` (lower case, no default port, no
 * path), or undefined when `v` is not an http(s) origin.
 */
export function normalizeOrigin(v: string): string | undefined {
  let u: URL;
  try {
    u = new URL(v.trim());
  } catch {
    return undefined;
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') return undefined;
  if ((u.pathname !== '/' && u.pathname !== '') || u.search || u.hash || u.username || u.password)
    return undefined;
  return u.origin;
}

/** One webhook the alert notifier POSTs to (see README "Alerts"). */
export const AlertWebhookSchema = z
  .object({
    url: z.url({ protocol: /^https?$/, message: 'url must be an http(s) URL' }),
    /** HMAC-SHA256 key: the body is signed in `x-opsplane-signature: sha256=<hex>`. */
    secret: z
      .string()
      .min(16, { message: 'secret must be at least 16 characters' })
      .transform((v) => new SecretValue(v))
      .optional(),
    /** Only these kinds of alert (default: every kind). */
    kinds: z.array(AlertKindSchema).min(1).optional(),
  })
  .strict();

/** `server.alerts`: evaluation timing and webhook delivery. */
export const AlertsSectionSchema = z
  .object({
    /** Evaluation also runs on this timer (besides after agent-view refreshes and discovery/deployment changes). */
    interval: DurationSchema.default(15_000).pipe(
      z.number().min(100, { message: 'interval must be at least 100ms' }),
    ),
    /** A condition must hold this long before its alert fires, so that a blip pages nobody. */
    pending_for: DurationSchema.default(30_000),
    /** Deadline of one webhook request. */
    timeout: DurationSchema.default(10_000),
    /** Tries per notification and webhook (backoff 0.5 s doubling, at most 30 s). */
    max_attempts: z.number().int().min(1).max(20).default(5),
    webhooks: z.array(AlertWebhookSchema).max(32).default([]),
  })
  .strict();
export type AlertsSection = z.infer<typeof AlertsSectionSchema>;

const ByteSizeSchema = z
  .number()
  .int()
  .min(1024)
  .max(1024 * 1024 * 1024);

/**
 * server.artifacts.store: 'database' (chunks next to the rows, the default) or 's3' (one object
 * per artifact at `<prefix>artifacts/<sha256>` in an S3-compatible bucket). The keys may come
 * from OPSPLANE_S3_ACCESS_KEY_ID / OPSPLANE_S3_SECRET_ACCESS_KEY instead of the file.
 */
export const ArtifactStoreSchema = z
  .object({
    type: z.enum(['database', 's3']).default('database'),
    /** http(s)://host[:port][/path] of the S3 API (e.g. https://s3.eu-west-1.amazonaws.com). */
    endpoint: z.url({ protocol: /^https?$/, message: 'endpoint: an http:// or https:// URL' }).optional(),
    region: z
      .string()
      .regex(/^[a-z0-9-]{1,32}$/, { message: 'region: like us-east-1' })
      .default('us-east-1'),
    bucket: z
      .string()
      .regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, { message: 'bucket: 3-63 of a-z 0-9 . -' })
      .optional(),
    /** Prepended to every key ('' or e.g. 'opsplane/'). */
    prefix: z
      .string()
      .max(200)
      .regex(/^([A-Za-z0-9._-]+\/)*$/, { message: "prefix: path segments each ending in '/'" })
      .default(''),
    /** endpoint/bucket/key (MinIO and most S3-compatible stores) rather than bucket.endpoint/key. */
    path_style: z.boolean().default(true),
    access_key_id: z.string().min(1).max(256).optional(),
    secret_access_key: z
      .string()
      .min(1)
      .max(256)
      .transform((v) => new SecretValue(v))
      .optional(),
  })
  .strict()
  .superRefine((v, ctx) => {
    if (v.type !== 's3') return;
    for (const k of ['endpoint', 'bucket', 'access_key_id', 'secret_access_key'] as const)
      if (v[k] === undefined)
        ctx.addIssue({
          code: 'custom',
          path: [k],
          message:
            k === 'access_key_id' || k === 'secret_access_key'
              ? `${k} is required with type 's3' (or OPSPLANE_S3_${k.toUpperCase()})`
              : `${k} is required with type 's3'`,
        });
  })
  .prefault({});

export const ServerSectionSchema = z
  .object({
    /** Address the HTTP API listens on. */
    listen: z
      .string()
      .default('127.0.0.1:8080')
      .superRefine((v, ctx) => {
        try {
          parseListen(v);
        } catch (e) {
          ctx.addIssue({ code: 'custom', message: (e as Error).message });
        }
      }),
    /** Embedded database, generated master key and other state live here. */
    data_dir: z.string().min(1).default('./data'),
    /**
     * postgres://… uses a PostgreSQL server; unset means embedded PGlite in `<data_dir>/db`;
     * `memory://` is an in-memory PGlite (tests, demos: nothing survives a restart).
     */
    database_url: z.string().min(1).optional(),
    /** File holding the 32-byte master key (base64 or hex). Env OPSPLANE_MASTER_KEY wins. */
    master_key_file: z.string().min(1).optional(),
    /** How long a UI session lives after login. */
    session_ttl: DurationSchema.default(12 * 3600_000),
    /**
     * Bearer token Prometheus may use for GET /metrics without a user. Unset: /metrics needs a
     * normal session or API token, like every other route.
     */
    metrics_token: z.string().min(16).optional(),
    /** Honour X-Forwarded-For/-Proto (set when behind a TLS-terminating proxy). */
    trust_proxy: z.boolean().default(false),
    /**
     * Origins (scheme://host[:port]) besides the server's own — the origin a request was addressed
     * to — from which browsers may send state-changing requests with the session cookie (e.g. the
     * public URL when a proxy forwards requests under another host name without X-Forwarded-Host).
     */
    allowed_origins: z
      .array(
        z.string().transform((v, ctx) => {
          const o = normalizeOrigin(v);
          if (o === undefined) {
            ctx.addIssue({ code: 'custom', message: `'${v}' is not an origin (scheme://host[:port])` });
            return z.NEVER;
          }
          return o;
        }),
      )
      .max(64)
      .default([]),
    /** `auto`: Secure cookies when the request arrived over https (directly or via a trusted proxy). */
    cookie_secure: z.union([z.literal('auto'), z.boolean()]).default('auto'),
    /** Largest request body in general, and for device imports. */
    body_limit: ByteSizeSchema.default(1024 * 1024),
    import_body_limit: ByteSizeSchema.default(64 * 1024 * 1024),
    /** Login attempts allowed per client address per window (brute-force guard). */
    login_rate_limit: z
      .object({
        max: z.number().int().min(1).max(10_000).default(10),
        window: DurationSchema.default(60_000),
      })
      .strict()
      .default({ max: 10, window: 60_000 }),
    /**
     * How often the aggregated agent view is rebuilt from every controller in the background
     * (it is also rebuilt when controllers come, go or change, and on `refresh=true`). The view
     * is reported `stale` once older than `cache.agent_ttl`.
     */
    agents_refresh_interval: DurationSchema.default(30_000),
    /**
     * POST /batches answers with the finished job when it completes within this; otherwise 202
     * with the running job (poll GET /batches/{id}). The batch runs on either way.
     */
    batch_wait: DurationSchema.default(60_000),
    /**
     * One deadline for a whole batch — every area, controller and retry — when the request names
     * none (`timeout`). An agent without an answer by then is outcome_unknown (or not_delivered
     * when the operation cannot have reached it).
     */
    batch_timeout: DurationSchema.default(120_000),
    /**
     * How long a batch looks for the agents of a controller that died or hung mid-request where
     * they fail over to (agents notice a hung controller after three heartbeats), within the
     * batch's deadline.
     */
    batch_failover_wait: DurationSchema.default(45_000),
    /**
     * This replica's name among several servers on one database (logs, batch ownership, the
     * cluster leader election). Default: <hostname>-<pid>-<random>.
     */
    replica_id: z
      .string()
      .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/, { message: 'replica_id must be a plain name' })
      .optional(),
    /**
     * Lease of the cluster leader (etcd election): a leader that dies is replaced within about
     * this long. The leader evaluates alerts, delivers webhooks, syncs device statuses and
     * records controller history.
     */
    leader_ttl: DurationSchema.pipe(
      z.number().min(2000, { message: 'leader_ttl must be at least 2s' }),
    ).default(10_000),
    /** Lease of a running batch on the replica that runs it; lapsed, another replica takes it over. */
    batch_lease_ttl: DurationSchema.pipe(
      z.number().min(2000, { message: 'batch_lease_ttl must be at least 2s' }),
    ).default(15_000),
    /** How long a restarted server looks for the agents of a batch it left running. */
    batch_reconcile_wait: DurationSchema.default(60_000),
    /**
     * HTTPS: the server's certificate and key (paths or inline PEM), re-read when they change.
     * Unset: plain HTTP (behind a TLS-terminating proxy, or tests).
     */
    tls: z
      .object({
        cert: z.string().min(1),
        key: z.string().min(1),
        reload_interval: DurationSchema.default(60_000),
      })
      .strict()
      .optional(),
    /**
     * The built-in certificate authority (`opsplane ca init --dir …`): the server issues agent
     * certificates at deployment, signs the renewals controllers relay through etcd, publishes
     * revocations, and trusts this CA's bundle for controllers when `controller.tls` is unset.
     * The CA key never leaves this directory.
     */
    pki: z
      .object({
        ca_dir: z.string().min(1),
        agent_cert_days: z.number().int().min(1).max(825).default(30),
        controller_cert_days: z.number().int().min(1).max(825).default(90),
        /** Sign renewal requests relayed by controllers (pki/csr/ in etcd). */
        sign_renewals: z.boolean().default(true),
      })
      .strict()
      .optional(),
    /** The web UI's static files; default: the installed @opsplane/web build. */
    web_root: z.string().min(1).optional(),
    /** Alert evaluation and webhook notifications. */
    alerts: AlertsSectionSchema.prefault({}),
    /** Metrics over time: every online agent's system and package metrics, sampled and kept. */
    metrics_history: z
      .object({
        /** Sampling period (one point per agent and package per interval); 0s turns sampling off. */
        interval: DurationSchema.default(60_000),
        /** How long samples are kept (GET /agents/{code}/metrics/history answers at most this far back). */
        retention: DurationSchema.default(24 * 3600_000).pipe(
          z.number().min(60_000, { message: 'retention must be at least 1m' }),
        ),
      })
      .strict()
      .default({ interval: 60_000, retention: 24 * 3600_000 }),
    /** Artifacts (packages and agent bundles distributed to agents). */
    artifacts: z
      .object({
        /** The largest artifact accepted by POST /artifacts. */
        max_size: ByteSizeSchema.default(256 * 1024 * 1024),
        /**
         * Public keys ('ed25519:<base64>') whose signatures an upload may carry instead of being
         * signed by the server's own key. Agents must pin them too.
         */
        trusted_keys: z.array(ArtifactPublicKeySchema).max(16).default([]),
        /** Where artifacts' content lives (their metadata rows are always in the database). */
        store: ArtifactStoreSchema,
      })
      .strict()
      .prefault({}),
    /** Desired state: the convergence loop (leader) and policy rollouts (leased). */
    distribution: z
      .object({
        /** How often the leader compares what agents report with what their policy says. */
        interval: DurationSchema.pipe(z.number().min(200)).default(5_000),
        /** An agent that has not reported a pushed revision gets it again after this long. */
        repush_after: DurationSchema.pipe(z.number().min(500)).default(30_000),
        /** A running policy rollout's lease (renewed every third of it). */
        lease_ttl: DurationSchema.pipe(z.number().min(2000)).default(30_000),
        /** How often a rollout's progress is checked (and unowned rollouts are claimed). */
        poll_interval: DurationSchema.pipe(z.number().min(100)).default(2_000),
      })
      .strict()
      .prefault({}),
    /** Agent deployment (the worker count is concurrency.max_workers). */
    deploy: z
      .object({
        /** Where agent bundles (opsplane-agent-<version>.tar.gz) are kept; default <data_dir>/bundles. */
        bundles_dir: z.string().min(1).optional(),
        /** How long a started agent may take to show up online through its controllers. */
        online_timeout: DurationSchema.default(60_000),
        /** TCP connect + SSH handshake + authentication deadline. */
        connect_timeout: DurationSchema.default(15_000),
        /**
         * A running deployment's lease: if its server dies, another (or the restarted one) resumes
         * it this long after the last renewal. Renewed every third of it.
         */
        lease_ttl: DurationSchema.default(30_000),
        /** How often the queue looks for work it was not told about (other servers' rollouts). */
        poll_interval: DurationSchema.default(2_000),
      })
      .strict()
      .default({ online_timeout: 60_000, connect_timeout: 15_000, lease_ttl: 30_000, poll_interval: 2_000 }),
  })
  .strict();

export type ServerSection = z.infer<typeof ServerSectionSchema>;
export type ServerSectionInput = z.input<typeof ServerSectionSchema>;

/**
 * A credential read from configuration. Its value is reachable only through reveal(): JSON
 * (pino, API responses), util.inspect and string conversion all print '[redacted]', so a config
 * that ends up in a log cannot leak it.
 */
export class SecretValue {
  readonly #value: string;
  constructor(value: string) {
    this.#value = value;
  }
  reveal(): string {
    return this.#value;
  }
  toJSON(): string {
    return '[redacted]';
  }
  toString(): string {
    return '[redacted]';
  }
  [inspect.custom](): string {
    return '[redacted]';
  }
}

const AreaCredentialsInputSchema = z
  .object({
    /** HMAC secret the agents of the area derive their tokens from (the controllers' agent_secret). */
    agent_secret: z.string().min(16, { message: 'agent_secret must be at least 16 characters' }).optional(),
    /** Bearer token the area's controllers require on /api/v1 (their api_token). */
    controller_token: z.string().min(1).optional(),
  })
  .strict();
export type AreaCredentialsInput = z.input<typeof AreaCredentialsInputSchema>;

export const AreasSectionSchema = z.record(AreaNameSchema, AreaCredentialsInputSchema.nullish());

export interface AreaCredentialsConfig {
  agent_secret?: SecretValue;
  controller_token?: SecretValue;
}

/**
 * The validated configuration. It never holds the master key itself (OPSPLANE_MASTER_KEY is read
 * when the store opens), and area credentials are SecretValues, so logging or printing a config
 * cannot leak them.
 */
export type ServerConfig = PlatformConfig & {
  server: ServerSection;
  /** Per-area credentials from `areas:` and OPSPLANE_AREAS_FILE; imported into the secret store at start. */
  areas: Record<string, AreaCredentialsConfig>;
};

/** What a CLI or test may force over file and environment. */
export interface ServerConfigOverrides {
  server?: Partial<ServerSectionInput>;
  /** etcd endpoints (the CLI's --etcd). */
  etcd?: { endpoints?: string[] };
  /** Per-area credentials, merged field by field over file and OPSPLANE_AREAS_FILE. */
  areas?: Record<string, AreaCredentialsInput>;
}

/**
 * Environment: DATABASE_URL, OPSPLANE_DATA_DIR, OPSPLANE_LISTEN, OPSPLANE_MASTER_KEY_FILE,
 * OPSPLANE_METRICS_TOKEN, OPSPLANE_SESSION_TTL. (OPSPLANE_MASTER_KEY and OPSPLANE_ADMIN_PASSWORD
 * are read by startServer/openStore, not kept in the config.)
 */
function serverEnv(env: NodeJS.ProcessEnv): Partial<ServerSectionInput> {
  const out: Partial<ServerSectionInput> = {};
  if (env.DATABASE_URL) out.database_url = env.DATABASE_URL;
  if (env.OPSPLANE_DATA_DIR) out.data_dir = env.OPSPLANE_DATA_DIR;
  if (env.OPSPLANE_LISTEN) out.listen = env.OPSPLANE_LISTEN;
  if (env.OPSPLANE_MASTER_KEY_FILE) out.master_key_file = env.OPSPLANE_MASTER_KEY_FILE;
  if (env.OPSPLANE_METRICS_TOKEN) out.metrics_token = env.OPSPLANE_METRICS_TOKEN;
  if (env.OPSPLANE_SESSION_TTL) out.session_ttl = env.OPSPLANE_SESSION_TTL;
  if (env.OPSPLANE_CA_DIR) out.pki = { ca_dir: env.OPSPLANE_CA_DIR };
  return out;
}

/** The S3 keys from the environment (they win over the file) into server.artifacts.store. */
function withS3Secrets(merged: Record<string, unknown>, env: NodeJS.ProcessEnv): Record<string, unknown> {
  const id = env.OPSPLANE_S3_ACCESS_KEY_ID;
  const secret = env.OPSPLANE_S3_SECRET_ACCESS_KEY;
  if (!id && !secret) return merged;
  const artifacts = asRecord(merged.artifacts, 'server.artifacts');
  const store = asRecord(artifacts.store, 'server.artifacts.store');
  return {
    ...merged,
    artifacts: {
      ...artifacts,
      store: {
        ...store,
        ...(id ? { access_key_id: id } : {}),
        ...(secret ? { secret_access_key: secret } : {}),
      },
    },
  };
}

function asRecord(v: unknown, what: string): Record<string, unknown> {
  if (v === undefined || v === null) return {};
  if (typeof v !== 'object' || Array.isArray(v)) throw new ValidationError(`${what}: expected a mapping`);
  return v as Record<string, unknown>;
}

function parseAreas(raw: unknown, source: string): Record<string, AreaCredentialsInput> {
  const parsed = AreasSectionSchema.safeParse(raw ?? {});
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => ({ ...i, path: ['areas', ...i.path] }));
    throw new ValidationError(`${source}: ${formatIssues(issues)}`, issues);
  }
  const out: Record<string, AreaCredentialsInput> = {};
  for (const [area, c] of Object.entries(parsed.data)) out[area] = c ?? {};
  return out;
}

/** Field-by-field merge of area credential layers (later wins), wrapped as SecretValues. */
function mergeAreas(
  layers: readonly Record<string, AreaCredentialsInput>[],
): Record<string, AreaCredentialsConfig> {
  const out: Record<string, AreaCredentialsConfig> = {};
  for (const layer of layers) {
    for (const [area, c] of Object.entries(layer)) {
      const cur = (out[area] ??= {});
      if (c.agent_secret !== undefined) cur.agent_secret = new SecretValue(c.agent_secret);
      if (c.controller_token !== undefined) cur.controller_token = new SecretValue(c.controller_token);
    }
  }
  return out;
}

/**
 * Reads OPSPLANE_AREAS_FILE: YAML or JSON, either the `areas:` mapping itself or a document with
 * an `areas:` key (so a secrets-only copy of platform.yaml works too).
 */
export async function readAreasFile(path: string): Promise<Record<string, AreaCredentialsInput>> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw new ValidationError(`cannot read OPSPLANE_AREAS_FILE ${path}: ${(e as Error).message}`);
  }
  let raw: unknown;
  try {
    raw = parseYaml(text) ?? {};
  } catch (e) {
    throw new ValidationError(`${path}: invalid YAML: ${(e as Error).message}`);
  }
  const doc = raw as Record<string, unknown>;
  const mapping = doc && typeof doc === 'object' && 'areas' in doc ? doc.areas : raw;
  return parseAreas(mapping, path);
}

/** Validates the `server:` and `areas:` sections of an already-loaded platform config. */
export function parseServerConfig(
  platform: PlatformConfig,
  overrides: ServerConfigOverrides = {},
  env: NodeJS.ProcessEnv = process.env,
  source = 'server config',
  areasFromEnv: Record<string, AreaCredentialsInput> = {},
): ServerConfig {
  const fileSection = asRecord((platform as Record<string, unknown>).server, `${source}: server`);
  const merged = withS3Secrets({ ...fileSection, ...serverEnv(env), ...(overrides.server ?? {}) }, env);
  const parsed = ServerSectionSchema.safeParse(merged);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => ({ ...i, path: ['server', ...i.path] }));
    throw new ValidationError(`${source}: ${formatIssues(issues)}`, issues);
  }
  const server = parsed.data;
  const absolute = (p: string) => (isAbsolute(p) ? p : resolve(p));
  const areas = mergeAreas([
    parseAreas((platform as Record<string, unknown>).areas, source),
    areasFromEnv,
    parseAreas(overrides.areas, 'overrides'),
  ]);
  let etcd = platform.etcd;
  if (overrides.etcd?.endpoints) {
    const endpoints = overrides.etcd.endpoints.map((e) => e.trim()).filter(Boolean);
    if (endpoints.length === 0) throw new ValidationError('etcd.endpoints: at least one endpoint is needed');
    etcd = { ...etcd, endpoints };
  }
  return {
    ...platform,
    etcd,
    areas,
    server: {
      ...server,
      data_dir: absolute(server.data_dir),
      ...(server.master_key_file ? { master_key_file: absolute(server.master_key_file) } : {}),
      ...(server.pki ? { pki: { ...server.pki, ca_dir: absolute(server.pki.ca_dir) } } : {}),
    },
  };
}

/**
 * Reads platform.yaml (missing path = defaults), applies the environment and `overrides`, and
 * validates everything; a bad value raises a ValidationError naming the field.
 */
export async function loadServerConfig(
  path?: string,
  overrides: ServerConfigOverrides = {},
  env: NodeJS.ProcessEnv = process.env,
): Promise<ServerConfig> {
  const platform = await loadPlatformConfig(path, env);
  const areasFromEnv = env.OPSPLANE_AREAS_FILE ? await readAreasFile(env.OPSPLANE_AREAS_FILE) : {};
  return parseServerConfig(platform, overrides, env, path ?? 'server config', areasFromEnv);
}

/** A config from an object (tests, embedding), validated like a file. */
export function serverConfigFrom(
  raw: Record<string, unknown>,
  overrides: ServerConfigOverrides = {},
  env: NodeJS.ProcessEnv = {},
): ServerConfig {
  return parseServerConfig(parsePlatformConfig(raw, env), overrides, env);
}
