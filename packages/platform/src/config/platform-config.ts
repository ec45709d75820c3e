/**
 * `platform.yaml` as in the guide's §6 (etcd, controller client, cache TTLs, concurrency), with
 * environment overrides, validated with zod so a bad file names the field that is wrong.
 */
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { formatIssues, ValidationError, DEFAULT_CONTROLLER_PREFIX } from '@opsplane/models';
import { DurationSchema } from '@opsplane/kit';
import { normalizeEtcdEndpoints, type EtcdClientOptions } from '../etcd/etcd-client.js';
import type { ControllerClientOptions } from '../client/controller-client.js';

/** Files (or inline PEM) of a TLS client: the CA bundle to trust, and an optional certificate and key. */
export const TlsFilesSchema = z
  .object({
    ca_file: z.string().min(1),
    cert_file: z.string().min(1).optional(),
    key_file: z.string().min(1).optional(),
  })
  .strict()
  .refine((t) => (t.cert_file === undefined) === (t.key_file === undefined), {
    message: 'cert_file and key_file go together',
  });
export type TlsFiles = z.infer<typeof TlsFilesSchema>;

/** A PEM value given inline or as a file path. */
function pemOf(v: string): string {
  return v.includes('-----BEGIN') ? v : readFileSync(v, 'utf8');
}

/** Reads TLS files into PEM text (ca, cert, key). */
export function readTlsFiles(t: TlsFiles): { ca: string; cert?: string; key?: string } {
  return {
    ca: pemOf(t.ca_file),
    ...(t.cert_file ? { cert: pemOf(t.cert_file) } : {}),
    ...(t.key_file ? { key: pemOf(t.key_file) } : {}),
  };
}

export const PlatformConfigSchema = z
  .object({
    etcd: z
      .object({
        endpoints: z.array(z.string().min(1)).min(1).default(['http://127.0.0.1:2379']),
        watch_prefix: z.string().min(1).default(DEFAULT_CONTROLLER_PREFIX),
        dial_timeout: DurationSchema.default(5000),
        username: z.string().optional(),
        password: z.string().optional(),
        /** TLS to etcd: CA bundle, and the client certificate etcd's --client-cert-auth asks for. */
        tls: TlsFilesSchema.optional(),
      })
      .strict()
      .default({
        endpoints: ['http://127.0.0.1:2379'],
        watch_prefix: DEFAULT_CONTROLLER_PREFIX,
        dial_timeout: 5000,
      }),
    controller: z
      .object({
        api_timeout: DurationSchema.default(30_000),
        retry_times: z.number().int().min(0).max(10).default(3),
        retry_interval: DurationSchema.default(1000),
        /** Controller API bearer token, when the controllers require one. */
        api_token: z.string().optional(),
        /** TLS to the controllers: the CA bundle their certificates are checked against (and a client certificate). */
        tls: TlsFilesSchema.optional(),
      })
      .strict()
      .default({ api_timeout: 30_000, retry_times: 3, retry_interval: 1000 }),
    cache: z
      .object({
        agent_ttl: DurationSchema.default(300_000),
        controller_ttl: DurationSchema.default(60_000),
      })
      .strict()
      .default({ agent_ttl: 300_000, controller_ttl: 60_000 }),
    concurrency: z
      .object({ max_workers: z.number().int().min(1).max(1000).default(10) })
      .strict()
      .default({ max_workers: 10 }),
  })
  .passthrough();

export type PlatformConfig = z.infer<typeof PlatformConfigSchema>;
export type PlatformConfigInput = z.input<typeof PlatformConfigSchema>;

/**
 * Environment overrides, applied over the file: OPSPLANE_ETCD_ENDPOINTS (comma separated),
 * OPSPLANE_ETCD_PREFIX, OPSPLANE_ETCD_PASSWORD, OPSPLANE_CONTROLLER_API_TIMEOUT, OPSPLANE_CONTROLLER_TOKEN,
 * OPSPLANE_MAX_WORKERS.
 */
function applyEnv(raw: Record<string, unknown>, env: NodeJS.ProcessEnv): Record<string, unknown> {
  const section = (k: string) => ({ ...((raw[k] as Record<string, unknown> | undefined) ?? {}) });
  const etcd = section('etcd');
  const controller = section('controller');
  const concurrency = section('concurrency');
  if (env.OPSPLANE_ETCD_ENDPOINTS) {
    etcd.endpoints = env.OPSPLANE_ETCD_ENDPOINTS.split(',')
      .map((s) => s.trim())
      .filter(Boolean);
  }
  if (env.OPSPLANE_ETCD_PREFIX) etcd.watch_prefix = env.OPSPLANE_ETCD_PREFIX;
  if (env.OPSPLANE_ETCD_PASSWORD) etcd.password = env.OPSPLANE_ETCD_PASSWORD;
  if (env.OPSPLANE_CONTROLLER_API_TIMEOUT) controller.api_timeout = env.OPSPLANE_CONTROLLER_API_TIMEOUT;
  if (env.OPSPLANE_CONTROLLER_TOKEN) controller.api_token = env.OPSPLANE_CONTROLLER_TOKEN;
  if (env.OPSPLANE_MAX_WORKERS) concurrency.max_workers = Number(env.OPSPLANE_MAX_WORKERS);
  return { ...raw, etcd, controller, concurrency };
}

/** Validates an already-parsed config object (plus env overrides). */
export function parsePlatformConfig(
  raw: unknown,
  env: NodeJS.ProcessEnv = process.env,
  source = 'platform config',
): PlatformConfig {
  if (raw !== undefined && raw !== null && (typeof raw !== 'object' || Array.isArray(raw))) {
    throw new ValidationError(`${source}: expected a mapping at the top level`);
  }
  const withEnv = applyEnv((raw ?? {}) as Record<string, unknown>, env);
  const parsed = PlatformConfigSchema.safeParse(withEnv);
  if (!parsed.success) {
    throw new ValidationError(`${source}: ${formatIssues(parsed.error.issues)}`, parsed.error.issues);
  }
  return parsed.data;
}

/** Reads `platform.yaml` (a missing file means defaults) and applies env overrides. */
export async function loadPlatformConfig(
  path?: string,
  env: NodeJS.ProcessEnv = process.env,
): Promise<PlatformConfig> {
  let raw: unknown = {};
  if (path) {
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (e) {
      throw new ValidationError(`cannot read config file ${path}: ${(e as Error).message}`);
    }
    try {
      raw = parseYaml(text) ?? {};
    } catch (e) {
      throw new ValidationError(`${path}: invalid YAML: ${(e as Error).message}`);
    }
  }
  return parsePlatformConfig(raw, env, path ?? 'platform config');
}

/** Options for `createEtcdClient()` from the config. */
export function etcdClientOptions(cfg: PlatformConfig): EtcdClientOptions {
  return {
    endpoints: normalizeEtcdEndpoints(cfg.etcd.endpoints, cfg.etcd.tls ? 'https' : 'http'),
    dialTimeoutMs: cfg.etcd.dial_timeout,
    ...(cfg.etcd.username && cfg.etcd.password
      ? { auth: { username: cfg.etcd.username, password: cfg.etcd.password } }
      : {}),
    ...(cfg.etcd.tls ? { tls: readTlsFiles(cfg.etcd.tls) } : {}),
  };
}

/** ControllerClient options from the config's `controller` section. */
export function controllerClientOptions(
  cfg: PlatformConfig,
): Pick<ControllerClientOptions, 'timeoutMs' | 'retryTimes' | 'retryIntervalMs' | 'apiToken' | 'tls'> {
  return {
    timeoutMs: cfg.controller.api_timeout,
    retryTimes: cfg.controller.retry_times,
    retryIntervalMs: cfg.controller.retry_interval,
    ...(cfg.controller.api_token ? { apiToken: cfg.controller.api_token } : {}),
    ...(cfg.controller.tls ? { tls: readTlsFiles(cfg.controller.tls) } : {}),
  };
}
