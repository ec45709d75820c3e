/**
 * package.yaml: the local, operator-written definition of a package (command, environment,
 * config dir, health check, restart policy). The controller can only name packages; what runs
 * is decided here. A broken manifest yields a ManifestError for that package alone.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { isAbsolute, join, resolve } from 'node:path';
import { formatIssues, isSafeName, PackageNameSchema } from '@opsplane/models';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { ManifestError } from '../errors.js';
import { durationSchema } from '@opsplane/kit';
import { isInside, realpathOrUndefined } from '../util/paths.js';

export const MANIFEST_FILE = 'package.yaml';

const stringish = z.union([z.string(), z.number(), z.boolean()]).transform(String);
const relPath = (what: string) =>
  z
    .string()
    .min(1)
    .refine((s) => !isAbsolute(s) && !s.includes('\0'), {
      message: `${what} must be a path relative to the package dir`,
    });

const checkTiming = {
  interval: durationSchema({ min: 100 }).default(10_000),
  timeout: durationSchema({ min: 10 }).default(5_000),
  start_period: durationSchema({ min: 0 }).default(5_000),
  /** Consecutive failed probes (after start_period) before the package counts as unhealthy. */
  retries: z.number().int().min(1).max(100).default(3),
};

const HealthCheckFileSchema = z.discriminatedUnion(
  'type',
  [
    z.object({ type: z.literal('process'), ...checkTiming }).strict(),
    z
      .object({
        type: z.literal('http'),
        url: z
          .string()
          .refine((s) => /^https?:\/\/[^/]/.test(s), { message: 'url must be an http(s):// URL' }),
        ...checkTiming,
      })
      .strict(),
    z
      .object({
        type: z.literal('tcp'),
        host: z.string().min(1).default('127.0.0.1'),
        port: z.number().int().min(1).max(65535),
        ...checkTiming,
      })
      .strict(),
    z
      .object({
        type: z.literal('exec'),
        command: z.string().min(1),
        args: z.array(stringish).default([]),
        ...checkTiming,
      })
      .strict(),
  ],
  { error: () => ({ message: "type must be one of 'process', 'http', 'tcp', 'exec'" }) },
);

const RestartPolicyFileSchema = z
  .object({
    policy: z.enum(['always', 'on-failure', 'never']).default('always'),
    /** Consecutive fast crashes after which the package is marked failed and left alone. */
    max_retries: z.number().int().min(1).default(5),
    backoff_initial: durationSchema({ min: 10 }).default(1_000),
    backoff_max: durationSchema({ min: 10 }).default(30_000),
    /** A run at least this long is not a "fast" crash: the crash counter starts over. */
    reset_after: durationSchema({ min: 0 }).default(60_000),
  })
  .strict();

export const ManifestFileSchema = z
  .object({
    name: PackageNameSchema,
    version: stringish.default(''),
    description: z.string().optional(),
    command: z.string().min(1),
    args: z.array(stringish).default([]),
    env: z
      .record(
        z
          .string()
          .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, { message: 'env names must be shell-style identifiers' }),
        stringish,
      )
      .default({}),
    working_dir: relPath('working_dir').default('.'),
    config_dir: relPath('config_dir').default('config'),
    autostart: z.boolean().default(true),
    stop_grace: durationSchema({ min: 0, max: 600_000 }).default(10_000),
    health_check: HealthCheckFileSchema.prefault({ type: 'process' }),
    restart_policy: RestartPolicyFileSchema.prefault({}),
  })
  .strict()
  .refine((m) => m.restart_policy.backoff_max >= m.restart_policy.backoff_initial, {
    message: 'restart_policy.backoff_max must be at least backoff_initial',
    path: ['restart_policy', 'backoff_max'],
  });

interface CheckTiming {
  intervalMs: number;
  timeoutMs: number;
  startPeriodMs: number;
  retries: number;
}

export type HealthCheckSpec = CheckTiming &
  (
    | { type: 'process' }
    | { type: 'http'; url: string }
    | { type: 'tcp'; host: string; port: number }
    | { type: 'exec'; command: string; args: string[] }
  );

export interface RestartPolicy {
  policy: 'always' | 'on-failure' | 'never';
  maxRetries: number;
  backoffInitialMs: number;
  backoffMaxMs: number;
  resetAfterMs: number;
}

export interface PackageManifest {
  name: string;
  version: string;
  /** Real (symlink-resolved) package directory. */
  packageDir: string;
  /** Absolute, or a bare name looked up in PATH. */
  command: string;
  args: string[];
  env: Record<string, string>;
  workingDir: string;
  /** Absolute config dir inside packageDir (may not exist yet). */
  configDir: string;
  autostart: boolean;
  stopGraceMs: number;
  healthCheck: HealthCheckSpec;
  restartPolicy: RestartPolicy;
}

/** A command containing '/' but not absolute is relative to the package dir; bare names use PATH. */
export function resolveCommand(packageDir: string, command: string): string {
  return command.includes('/') && !isAbsolute(command) ? resolve(packageDir, command) : command;
}

/** A path from the manifest, resolved in the package dir; must stay inside it, symlinks included. */
async function containedPath(packageDir: string, rel: string, field: string): Promise<string> {
  const p = resolve(packageDir, rel);
  if (!isInside(packageDir, p)) throw new Error(`${field}: '${rel}' leaves the package dir`);
  const real = await realpathOrUndefined(p);
  if (real !== undefined && !isInside(packageDir, real)) {
    throw new Error(`${field}: '${rel}' resolves outside the package dir (symlink)`);
  }
  return real ?? p;
}

/** Loads and validates `<dir>/package.yaml`; the manifest name must equal the dir name. */
export async function loadManifest(dir: string): Promise<PackageManifest> {
  const dirName = dir.split('/').filter(Boolean).pop() ?? dir;
  const file = join(dir, MANIFEST_FILE);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw new ManifestError(
      dir,
      `cannot read ${MANIFEST_FILE}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`,
      e,
    );
  }
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (e) {
    throw new ManifestError(
      dir,
      `${MANIFEST_FILE}: invalid YAML: ${e instanceof Error ? e.message : String(e)}`,
      e,
    );
  }
  const parsed = ManifestFileSchema.safeParse(doc ?? {});
  if (!parsed.success) throw new ManifestError(dir, `${MANIFEST_FILE}: ${formatIssues(parsed.error.issues)}`);
  const m = parsed.data;
  if (m.name !== dirName) {
    throw new ManifestError(
      dir,
      `${MANIFEST_FILE}: name '${m.name}' must equal the directory name '${dirName}'`,
    );
  }
  const packageDir = (await realpathOrUndefined(dir)) ?? resolve(dir);
  try {
    const workingDir = await containedPath(packageDir, m.working_dir, 'working_dir');
    const configDir = await containedPath(packageDir, m.config_dir, 'config_dir');
    const hc = m.health_check;
    const timing = {
      intervalMs: hc.interval,
      timeoutMs: hc.timeout,
      startPeriodMs: hc.start_period,
      retries: hc.retries,
    };
    const healthCheck: HealthCheckSpec =
      hc.type === 'http'
        ? { type: 'http', url: hc.url, ...timing }
        : hc.type === 'tcp'
          ? { type: 'tcp', host: hc.host, port: hc.port, ...timing }
          : hc.type === 'exec'
            ? { type: 'exec', command: resolveCommand(packageDir, hc.command), args: hc.args, ...timing }
            : { type: 'process', ...timing };
    return {
      name: m.name,
      version: m.version,
      packageDir,
      command: resolveCommand(packageDir, m.command),
      args: m.args,
      env: m.env,
      workingDir,
      configDir,
      autostart: m.autostart,
      stopGraceMs: m.stop_grace,
      healthCheck,
      restartPolicy: {
        policy: m.restart_policy.policy,
        maxRetries: m.restart_policy.max_retries,
        backoffInitialMs: m.restart_policy.backoff_initial,
        backoffMaxMs: m.restart_policy.backoff_max,
        resetAfterMs: m.restart_policy.reset_after,
      },
    };
  } catch (e) {
    throw new ManifestError(dir, `${MANIFEST_FILE}: ${e instanceof Error ? e.message : String(e)}`, e);
  }
}

export interface PackageEntry {
  /** Directory name == package name. */
  name: string;
  dir: string;
  manifest?: PackageManifest;
  error?: ManifestError;
}

/**
 * Every subdirectory of packagesDir holding a package.yaml. Hidden dirs and dirs whose names are
 * not safe package names are skipped (they could not be addressed by the controller anyway).
 */
export async function scanPackages(
  packagesDir: string,
  onSkip: (dir: string, why: string) => void = () => undefined,
): Promise<PackageEntry[]> {
  let names: string[];
  try {
    names = await readdir(packagesDir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw e;
  }
  const entries: PackageEntry[] = [];
  for (const name of names.sort()) {
    if (name.startsWith('.')) continue;
    const dir = join(packagesDir, name);
    const st = await stat(dir).catch(() => undefined);
    if (!st?.isDirectory()) continue;
    if (!(await stat(join(dir, MANIFEST_FILE)).catch(() => undefined))) {
      onSkip(dir, `no ${MANIFEST_FILE}`);
      continue;
    }
    if (!isSafeName(name) || name.length > 64) {
      onSkip(dir, 'directory name is not a valid package name');
      continue;
    }
    try {
      entries.push({ name, dir, manifest: await loadManifest(dir) });
    } catch (e) {
      entries.push({
        name,
        dir,
        error: e instanceof ManifestError ? e : new ManifestError(dir, String(e), e),
      });
    }
  }
  return entries;
}
