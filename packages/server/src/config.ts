/**
 * Server configuration: the guide's platform.yaml (etcd, controller, cache, concurrency — parsed
 * by @opsplane/platform) plus a `server:` section for this process. Precedence, lowest first:
 * defaults < file < environment < programmatic overrides (CLI flags, tests).
 */
import { isAbsolute, resolve } from 'node:path';
import { z } from 'zod';
import { formatIssues, ValidationError } from '@opsplane/models';
import { DurationSchema, loadPlatformConfig, type PlatformConfig } from '@opsplane/platform';

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

const ByteSizeSchema = z
  .number()
  .int()
  .min(1024)
  .max(1024 * 1024 * 1024);

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
  })
  .strict();

export type ServerSection = z.infer<typeof ServerSectionSchema>;
export type ServerSectionInput = z.input<typeof ServerSectionSchema>;

/**
 * The validated configuration. It never holds the master key itself (OPSPLANE_MASTER_KEY is read
 * when the store opens), so logging or printing a config cannot leak it.
 */
export type ServerConfig = PlatformConfig & { server: ServerSection };

/** What a CLI or test may force over file and environment. */
export interface ServerConfigOverrides {
  server?: Partial<ServerSectionInput>;
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
  return out;
}

function asRecord(v: unknown, what: string): Record<string, unknown> {
  if (v === undefined || v === null) return {};
  if (typeof v !== 'object' || Array.isArray(v)) throw new ValidationError(`${what}: expected a mapping`);
  return v as Record<string, unknown>;
}

/** Validates the `server:` section of an already-loaded platform config. */
export function parseServerConfig(
  platform: PlatformConfig,
  overrides: ServerConfigOverrides = {},
  env: NodeJS.ProcessEnv = process.env,
  source = 'server config',
): ServerConfig {
  const fileSection = asRecord((platform as Record<string, unknown>).server, `${source}: server`);
  const merged = { ...fileSection, ...serverEnv(env), ...(overrides.server ?? {}) };
  const parsed = ServerSectionSchema.safeParse(merged);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => ({ ...i, path: ['server', ...i.path] }));
    throw new ValidationError(`${source}: ${formatIssues(issues)}`, issues);
  }
  const server = parsed.data;
  const absolute = (p: string) => (isAbsolute(p) ? p : resolve(p));
  return {
    ...platform,
    server: {
      ...server,
      data_dir: absolute(server.data_dir),
      ...(server.master_key_file ? { master_key_file: absolute(server.master_key_file) } : {}),
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
  return parseServerConfig(platform, overrides, env, path ?? 'server config');
}
