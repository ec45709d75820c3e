/**
 * The on-disk side of installing packages side by side: unpack a verified artifact into
 * data_dir/packages/<name>/versions/<version>/ (checked tar paths only; the package.yaml inside
 * must name the same package and version), write the policy's config files into its config_dir,
 * and switch `packages_dir/<name>` atomically — it is a symlink to the version dir, replaced by
 * renaming a temp symlink over it. A `packages_dir/<name>` that is not such a link belongs to
 * the operator and is never touched.
 */
import { randomBytes } from 'node:crypto';
import { lstat, mkdir, readdir, readFile, readlink, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { checkTarPath, readTarGz, TarError } from '@opsplane/kit';
import {
  ConfigFileNameSchema,
  configHash,
  formatIssues,
  type ArtifactRef,
  type ConfigItem,
} from '@opsplane/models';
import { parse as parseYaml } from 'yaml';
import { ManifestFileSchema, MANIFEST_FILE } from '../packages/manifest.js';
import { syncDir, writeFileAtomic } from '../util/atomic-file.js';
import { isInside } from '../util/paths.js';
import { DistributionError } from './errors.js';

export type LinkState = { kind: 'none' } | { kind: 'managed'; version: string } | { kind: 'unmanaged' };

export class PackageInstaller {
  readonly root: string;

  constructor(
    readonly packagesDir: string,
    dataDir: string,
  ) {
    this.root = join(dataDir, 'packages');
  }

  versionDir(name: string, version: string): string {
    return join(this.root, name, 'versions', version);
  }

  linkPath(name: string): string {
    return join(this.packagesDir, name);
  }

  /** What `packages_dir/<name>` is: absent, a link into our versions/, or the operator's. */
  async linkState(name: string): Promise<LinkState> {
    const link = this.linkPath(name);
    const st = await lstat(link).catch(() => undefined);
    if (!st) return { kind: 'none' };
    if (!st.isSymbolicLink()) return { kind: 'unmanaged' };
    const target = resolve(dirname(link), await readlink(link));
    const versions = join(this.root, name, 'versions');
    if (!isInside(versions, target) || dirname(target) !== versions) return { kind: 'unmanaged' };
    return { kind: 'managed', version: target.slice(versions.length + 1) };
  }

  /**
   * Unpacks the verified artifact into versions/<version>/ (via a temp dir renamed into place,
   * so a half-unpacked version never exists under its name). An already unpacked version is kept.
   */
  async unpack(ref: ArtifactRef, file: string): Promise<string> {
    const dir = this.versionDir(ref.name, ref.version);
    if (await lstat(join(dir, MANIFEST_FILE)).catch(() => undefined)) return dir;
    let entries;
    try {
      entries = readTarGz(await readFile(file), { maxTotalBytes: 2 * 1024 * 1024 * 1024 });
    } catch (e) {
      if (e instanceof TarError)
        throw new DistributionError('artifact_invalid', `the package archive is unusable: ${e.message}`);
      throw e;
    }
    const manifestEntry = entries.find((e) => e.type === 'file' && e.path === MANIFEST_FILE);
    if (!manifestEntry?.data)
      throw new DistributionError(
        'artifact_invalid',
        `the package archive has no ${MANIFEST_FILE} at its top`,
      );
    let doc: unknown;
    try {
      doc = parseYaml(manifestEntry.data.toString('utf8'));
    } catch (e) {
      throw new DistributionError(
        'artifact_invalid',
        `${MANIFEST_FILE}: invalid YAML: ${(e as Error).message}`,
      );
    }
    const m = ManifestFileSchema.safeParse(doc ?? {});
    if (!m.success)
      throw new DistributionError('artifact_invalid', `${MANIFEST_FILE}: ${formatIssues(m.error.issues)}`);
    if (m.data.name !== ref.name || m.data.version !== ref.version)
      throw new DistributionError(
        'artifact_mismatch',
        `the archive's ${MANIFEST_FILE} says ${m.data.name} ${m.data.version}, the artifact is ${ref.name} ${ref.version}`,
      );
    const parent = dirname(dir);
    await mkdir(parent, { recursive: true });
    const tmp = join(parent, `.${ref.version}.${randomBytes(4).toString('hex')}.tmp`);
    try {
      await mkdir(tmp, { mode: 0o755 });
      for (const e of entries.filter((x) => x.type === 'dir')) {
        await mkdir(join(tmp, checkTarPath(e.path)), { recursive: true, mode: 0o755 });
      }
      for (const e of entries.filter((x) => x.type === 'file')) {
        const p = join(tmp, checkTarPath(e.path));
        await mkdir(dirname(p), { recursive: true });
        await writeFile(p, e.data ?? Buffer.alloc(0), { mode: (e.mode ?? 0o644) & 0o777 });
      }
      await rm(dir, { recursive: true, force: true }); // a stale remnant without a manifest
      await rename(tmp, dir);
      await syncDir(parent);
    } catch (e) {
      await rm(tmp, { recursive: true, force: true });
      throw e;
    }
    return dir;
  }

  /** The package's config_dir inside a version dir, per its manifest (must stay inside). */
  async configDir(versionDir: string): Promise<string> {
    const doc: unknown = parseYaml(await readFile(join(versionDir, MANIFEST_FILE), 'utf8'));
    const m = ManifestFileSchema.parse(doc ?? {});
    const dir = resolve(versionDir, m.config_dir);
    if (!isInside(versionDir, dir))
      throw new DistributionError('artifact_invalid', `config_dir '${m.config_dir}' leaves the package dir`);
    return dir;
  }

  /** Writes the policy's files (names re-validated) into config_dir, each atomically. */
  async writeConfigs(configDir: string, configs: readonly ConfigItem[]): Promise<void> {
    if (configs.length === 0) return;
    await mkdir(configDir, { recursive: true });
    for (const c of configs) {
      if (!ConfigFileNameSchema.safeParse(c.file_name).success)
        throw new DistributionError('invalid_file_name', `config file name '${c.file_name}' is not allowed`);
      const st = await lstat(join(configDir, c.file_name)).catch(() => undefined);
      if (st?.isSymbolicLink()) await rm(join(configDir, c.file_name));
      await writeFileAtomic(join(configDir, c.file_name), c.content);
    }
  }

  /**
   * configHash of what is in config_dir now: over the policy's files when it names some (a file
   * missing counts as different content), else over every plain file there (reported only).
   */
  async currentConfigHash(configDir: string, desired: readonly ConfigItem[]): Promise<string> {
    const read = async (n: string) => {
      try {
        return await readFile(join(configDir, n), 'utf8');
      } catch {
        return undefined;
      }
    };
    if (desired.length > 0) {
      const files = await Promise.all(
        desired.map(async (c) => ({
          file_name: c.file_name,
          content: (await read(c.file_name)) ?? '\0missing',
        })),
      );
      return configHash(files);
    }
    const names = await readdir(configDir, { withFileTypes: true }).catch(() => []);
    const files: { file_name: string; content: string }[] = [];
    for (const d of names) {
      if (!d.isFile() || d.name.startsWith('.')) continue;
      const content = await read(d.name);
      if (content !== undefined) files.push({ file_name: d.name, content });
    }
    return files.length === 0 ? '' : configHash(files);
  }

  /** Points `packages_dir/<name>` at versions/<version> (undefined: removes the link), atomically. */
  async switchTo(name: string, version: string | undefined): Promise<void> {
    const link = this.linkPath(name);
    if (version === undefined) {
      await rm(link, { force: true });
      await syncDir(this.packagesDir);
      return;
    }
    await mkdir(this.packagesDir, { recursive: true });
    const tmp = join(this.packagesDir, `.${name}.${randomBytes(4).toString('hex')}.link`);
    await symlink(this.versionDir(name, version), tmp);
    try {
      await rename(tmp, link);
    } catch (e) {
      await rm(tmp, { force: true });
      throw e;
    }
    await syncDir(this.packagesDir);
  }
}
