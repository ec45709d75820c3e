/**
 * The sample packages (`packages/fleet/sample-packages/<kind>/`: small dependency-free node
 * programs with their package.yaml and config, see the README there), installed into an
 * agent's packages dir — the same files for `opsplane demo` and the test fleets.
 *
 * `package.yaml` is a template ({{NODE}}, {{DIR}}, {{WEB_PORT}}) and is rewritten on every
 * install, with the caller's overrides (a timing profile, a test's restart policy, the guard's
 * environment) merged in; the programs are refreshed; config files are copied only when
 * missing, so a config pushed through the platform survives a re-run — unless the caller gives
 * the config explicitly.
 */
import { existsSync } from 'node:fs';
import { chmod, copyFile, mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseDocument } from 'yaml';
import { mergeConfig, type Plain } from './configs.js';
import { toYaml } from './yaml.js';

export const SAMPLE_PACKAGES = ['web', 'collector'] as const;
export type SamplePackageKind = (typeof SAMPLE_PACKAGES)[number];

/** Where the sample packages ship: <fleet package>/sample-packages (this file is dist/src/…). */
export function samplePackagesDir(): string {
  return fileURLToPath(new URL('../../sample-packages/', import.meta.url));
}

/** The config file a sample package reads, in its config dir. */
export function sampleConfigFileName(kind: SamplePackageKind): string {
  return `${kind}.yaml`;
}

/** A package config as file text: a string as it is, an object as YAML. */
export function packageConfigText(config: string | Readonly<Plain>): string {
  return typeof config === 'string' ? config : toYaml(config);
}

export interface TemplateValues {
  /** Absolute path of the node binary. */
  NODE: string;
  /** The web package's port (ignored by the others). */
  WEB_PORT: number;
}

export interface InstallOptions {
  /** Directory (and manifest) name. Default: the kind. */
  name?: string;
  /** Written as the package's config file, replacing what is there. Default: keep / ship. */
  config?: string | Readonly<Plain>;
  /** Merged over package.yaml (file-shaped); a `health_check` of another type replaces it. */
  manifest?: Readonly<Plain>;
  /** Where the sample packages are. Default samplePackagesDir(). */
  source?: string;
}

function fill(template: string, values: Record<string, string>): string {
  return template.replace(/\{\{([A-Z_]+)\}\}/g, (m, k: string) => values[k] ?? m);
}

async function copyTree(
  src: string,
  dst: string,
  overwrite: (rel: string) => boolean,
  rel = '',
): Promise<void> {
  await mkdir(dst, { recursive: true });
  for (const e of await readdir(src, { withFileTypes: true })) {
    const r = rel ? `${rel}/${e.name}` : e.name;
    const s = join(src, e.name);
    const d = join(dst, e.name);
    if (e.isDirectory()) await copyTree(s, d, overwrite, r);
    else if (e.isFile() && (overwrite(r) || !existsSync(d))) {
      await copyFile(s, d);
      const mode = (await stat(s)).mode & 0o777;
      await chmod(d, mode);
    }
  }
}

const isPlain = (v: unknown): v is Plain => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The filled template with `overrides` merged in; comments outside the replaced keys stay. */
function manifestText(filled: string, overrides: Readonly<Plain>): string {
  if (Object.keys(overrides).length === 0) return filled;
  const doc = parseDocument(filled);
  const current = doc.toJS() as Plain;
  for (const [key, value] of Object.entries(overrides)) {
    if (value === undefined) continue;
    const prev = current[key];
    const replaces =
      key === 'health_check' &&
      isPlain(value) &&
      isPlain(prev) &&
      value.type !== undefined &&
      value.type !== prev.type;
    doc.set(key, isPlain(value) && isPlain(prev) && !replaces ? mergeConfig(prev, value) : value);
  }
  return doc.toString();
}

/**
 * Installs the sample package `kind` into `packagesDir/<name>/`: programs and manifest
 * (re)written, config files kept when present (see the header). Returns the package dir.
 */
export async function installSamplePackage(
  kind: SamplePackageKind,
  packagesDir: string,
  values: TemplateValues,
  opts: InstallOptions = {},
): Promise<string> {
  const source = opts.source ?? samplePackagesDir();
  const src = join(source, kind);
  if (!existsSync(join(src, 'package.yaml'))) {
    throw new Error(
      `sample package '${kind}' not found in ${source} (is @opsplane/fleet installed completely?)`,
    );
  }
  const name = opts.name ?? kind;
  const dir = join(packagesDir, name);
  await copyTree(src, dir, (rel) => !rel.startsWith('config/') && rel !== 'package.yaml');
  if (opts.config !== undefined) {
    await writeFile(join(dir, 'config', sampleConfigFileName(kind)), packageConfigText(opts.config));
  }
  const template = await readFile(join(src, 'package.yaml'), 'utf8');
  const filled = fill(template, { NODE: values.NODE, DIR: dir, WEB_PORT: String(values.WEB_PORT) });
  const overrides: Plain = { ...(name !== kind ? { name } : {}), ...opts.manifest };
  await writeFile(join(dir, 'package.yaml'), manifestText(filled, overrides));
  return dir;
}
