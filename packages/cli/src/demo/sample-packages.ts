/**
 * The sample packages shipped with the CLI (`packages/cli/demo/packages/<name>/`), copied into an
 * agent's packages dir. `package.yaml` is a template ({{NODE}}, {{DIR}}, {{WEB_PORT}}) and is
 * rewritten on every demo start; the programs are refreshed; config files
 * are copied only when missing, so a config pushed through the platform survives a re-run.
 */
import { existsSync } from 'node:fs';
import { chmod, copyFile, mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Where the sample packages ship: <cli package>/demo/packages (this file is dist/src/demo/…). */
export function samplePackagesDir(): string {
  return fileURLToPath(new URL('../../../demo/packages/', import.meta.url));
}

export const SAMPLE_PACKAGES = ['web', 'collector'] as const;
export type SamplePackage = (typeof SAMPLE_PACKAGES)[number];

export interface TemplateValues {
  NODE: string;
  WEB_PORT: number;
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

/**
 * Installs `name` into `packagesDir/<name>/`: programs and manifest (re)written, config files
 * kept when present. Returns the package dir.
 */
export async function installSamplePackage(
  name: SamplePackage,
  packagesDir: string,
  values: TemplateValues,
  source = samplePackagesDir(),
): Promise<string> {
  const src = join(source, name);
  if (!existsSync(join(src, 'package.yaml'))) {
    throw new Error(`sample package '${name}' not found in ${source} (is the CLI installed completely?)`);
  }
  const dir = join(packagesDir, name);
  await copyTree(src, dir, (rel) => !rel.startsWith('config/') && rel !== 'package.yaml');
  const template = await readFile(join(src, 'package.yaml'), 'utf8');
  const manifest = fill(template, {
    NODE: values.NODE,
    DIR: dir,
    WEB_PORT: String(values.WEB_PORT),
  });
  await writeFile(join(dir, 'package.yaml'), manifest);
  return dir;
}
