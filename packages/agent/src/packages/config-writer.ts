/**
 * The `configs` operation: write config files into a package's config_dir and make the package
 * use them — safely. File names are re-validated here (the agent trusts no sender), every path
 * is resolved and must stay inside config_dir (symlinks included), each file is replaced
 * atomically, the previous version is kept in `config_dir/.history/`, and if the restarted
 * package does not come up healthy the previous files are restored and it is restarted again.
 */
import { lstat, mkdir, readdir, readFile, realpath, rm } from 'node:fs/promises';
import { join } from 'node:path';
import {
  ConfigFileNameSchema,
  formatIssues,
  MAX_CONFIG_CONTENT_BYTES,
  type PackageOpResult,
} from '@opsplane/models';
import type { Logger } from '../log.js';
import { writeFileAtomic } from '../util/atomic-file.js';
import { isInside } from '../util/paths.js';
import { errorMessage } from '../util/timers.js';
import type { RunnerControl } from './package-runner.js';
import { opFail, opOk } from './results.js';
import type { Supervisor } from './supervisor.js';

export interface ConfigUpdate {
  package: string;
  configs: readonly { file_name: string; content: string }[];
  config_file?: string;
}

export const HISTORY_DIR = '.history';
const HISTORY_KEEP = 5;

interface PlannedFile {
  name: string;
  /** Where the bytes go (the symlink target when the name is a link inside config_dir). */
  target: string;
  content: string;
  previous: { content: Buffer; mode: number } | undefined;
}

class RefusedError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** Checks names and sizes before anything touches the disk; returns a failure or undefined. */
export function validateConfigUpdate(u: ConfigUpdate): PackageOpResult | undefined {
  if (u.configs.length === 0)
    return opFail(u.package, 'validation_failed', 'configs must hold at least one file');
  const seen = new Set<string>();
  for (const c of u.configs) {
    const r = ConfigFileNameSchema.safeParse(c.file_name);
    if (!r.success)
      return opFail(
        u.package,
        'invalid_file_name',
        `${JSON.stringify(c.file_name)}: ${formatIssues(r.error.issues)}`,
      );
    if (seen.has(c.file_name))
      return opFail(u.package, 'invalid_file_name', `duplicate file_name '${c.file_name}'`);
    seen.add(c.file_name);
    if (Buffer.byteLength(c.content, 'utf8') > MAX_CONFIG_CONTENT_BYTES) {
      return opFail(
        u.package,
        'payload_too_large',
        `'${c.file_name}' is larger than ${MAX_CONFIG_CONTENT_BYTES} bytes`,
      );
    }
  }
  if (u.config_file !== undefined && u.config_file !== '' && !seen.has(u.config_file)) {
    return opFail(u.package, 'validation_failed', 'config_file must name one of the files in configs');
  }
  return undefined;
}

async function plan(configDir: string, u: ConfigUpdate): Promise<PlannedFile[]> {
  const out: PlannedFile[] = [];
  for (const c of u.configs) {
    const path = join(configDir, c.file_name);
    const st = await lstat(path).catch((e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT') return undefined;
      throw e;
    });
    let target = path;
    if (st?.isSymbolicLink()) {
      const real = await realpath(path).catch(() => undefined);
      if (real === undefined || !isInside(configDir, real)) {
        throw new RefusedError(
          'invalid_file_name',
          `'${c.file_name}' is a symlink leading outside the config dir`,
        );
      }
      target = real;
    }
    const tst = target === path ? st : await lstat(target);
    if (tst && !tst.isFile())
      throw new RefusedError('invalid_file_name', `'${c.file_name}' exists and is not a regular file`);
    out.push({
      name: c.file_name,
      target,
      content: c.content,
      previous: tst ? { content: await readFile(target), mode: tst.mode & 0o7777 } : undefined,
    });
  }
  return out;
}

async function keepHistory(configDir: string, files: readonly PlannedFile[]): Promise<void> {
  const dir = join(configDir, HISTORY_DIR);
  await mkdir(dir, { recursive: true });
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  for (const f of files) {
    if (!f.previous) continue;
    await writeFileAtomic(join(dir, `${f.name}.${stamp}`), f.previous.content, f.previous.mode);
    const old = (await readdir(dir))
      .filter((n) => n.startsWith(`${f.name}.`) && /\d{4}-\d\d-\d\dT/.test(n.slice(f.name.length + 1)))
      .sort();
    for (const n of old.slice(0, Math.max(0, old.length - HISTORY_KEEP)))
      await rm(join(dir, n), { force: true });
  }
}

async function restore(files: readonly PlannedFile[]): Promise<void> {
  for (const f of files) {
    if (f.previous) await writeFileAtomic(f.target, f.previous.content, f.previous.mode);
    else await rm(f.target, { force: true });
  }
}

async function restartAndVerdict(ctl: RunnerControl, budgetMs: number) {
  try {
    await ctl.restartNow();
  } catch (e) {
    return { healthy: false as const, reason: `failed to start: ${errorMessage(e)}` };
  }
  return ctl.waitHealthy(Math.min(ctl.healthBudgetMs(), budgetMs));
}

/**
 * Applies a config update to one package. `budgetMs` bounds each wait for a health verdict
 * (after the update, and again after a rollback).
 */
export async function applyConfigUpdate(
  sup: Supervisor,
  u: ConfigUpdate,
  opts: { logger: Logger; budgetMs?: number },
): Promise<PackageOpResult> {
  const runner = sup.get(u.package);
  if (!runner) return opFail(u.package, 'package_not_found', `no package '${u.package}' on this agent`);
  const invalid = validateConfigUpdate(u);
  if (invalid) return invalid;
  const log = opts.logger.child({ package: u.package, op: 'configs' });
  const budget = opts.budgetMs ?? 120_000;

  return runner.exclusive(async (ctl): Promise<PackageOpResult> => {
    const m = ctl.manifest;
    let configDir: string;
    let files: PlannedFile[];
    try {
      await mkdir(m.configDir, { recursive: true });
      configDir = await realpath(m.configDir);
      if (!isInside(await realpath(m.packageDir), configDir)) {
        return opFail(
          u.package,
          'invalid_config_dir',
          `config_dir ${m.configDir} resolves outside the package dir`,
        );
      }
      files = await plan(configDir, u);
    } catch (e) {
      if (e instanceof RefusedError) return opFail(u.package, e.code, e.message);
      return opFail(u.package, 'write_failed', errorMessage(e));
    }
    const changed = files.filter(
      (f) => !f.previous || !f.previous.content.equals(Buffer.from(f.content, 'utf8')),
    );
    const names = files.map((f) => f.name).join(', ');
    if (changed.length === 0) return opOk(u.package, `unchanged (${names}); not restarted`);

    const written: PlannedFile[] = [];
    try {
      await keepHistory(configDir, changed);
      for (const f of changed) {
        await writeFileAtomic(f.target, f.content, f.previous?.mode ?? 0o644);
        written.push(f);
      }
    } catch (e) {
      await restore(written).catch((re: unknown) =>
        log.error({ err: re }, 'restoring configs after a failed write failed'),
      );
      return opFail(u.package, 'write_failed', errorMessage(e));
    }
    log.info({ files: changed.map((f) => f.name) }, 'config files written');

    if (!ctl.isRunning()) return opOk(u.package, `wrote ${names}; package not running, not restarted`);

    const verdict = await restartAndVerdict(ctl, budget);
    if (verdict.healthy) return opOk(u.package, `wrote ${names}; restarted; healthy (${verdict.message})`);

    log.warn({ reason: verdict.reason }, 'package unhealthy after config update; rolling back');
    try {
      await restore(changed);
    } catch (e) {
      return opFail(
        u.package,
        'rollback_failed',
        `health check failed after config update: ${verdict.reason}; restoring files failed: ${errorMessage(e)}`,
      );
    }
    const again = await restartAndVerdict(ctl, budget);
    const after = again.healthy
      ? 'previous config restored; package healthy again'
      : `previous config restored; package still unhealthy: ${again.reason}`;
    if (!again.healthy) log.error({ reason: again.reason }, 'package still unhealthy after rollback');
    return opFail(
      u.package,
      'rolled_back',
      `health check failed after config update: ${verdict.reason}`,
      after,
    );
  });
}
