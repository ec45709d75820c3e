/**
 * The agent bundles this server can deploy: `opsplane-agent-<version>.tar.gz` files in one
 * directory (server.deploy.bundles_dir). Each is validated (manifest, checksums, layout) before
 * it is offered; uploads are written to a temp file and renamed, so a half-written bundle is
 * never visible. The newest version is the default of deployments that name none.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ConflictError, OpsplaneError } from '@opsplane/models';
import { readAgentBundle } from '@opsplane/kit';
import type { AgentBundleInfo } from '@opsplane/deploy';

export interface StoredBundle extends AgentBundleInfo {
  addedAt: Date;
}

const FILE_RE = /^opsplane-agent-(\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?)\.tar\.gz$/;

/** Semver precedence (numeric parts, then a pre-release sorts before its release). */
export function compareVersions(a: string, b: string): number {
  const [ca = '', pa] = a.split(/-(.*)/s);
  const [cb = '', pb] = b.split(/-(.*)/s);
  const na = ca.split('.').map(Number);
  const nb = cb.split('.').map(Number);
  for (let i = 0; i < 3; i++) {
    const d = (na[i] ?? 0) - (nb[i] ?? 0);
    if (d !== 0) return d;
  }
  if (pa === undefined || pb === undefined) return pa === pb ? 0 : pa === undefined ? 1 : -1;
  return pa.localeCompare(pb, 'en', { numeric: true });
}

export class BundleNotFoundError extends OpsplaneError {
  constructor(version: string | undefined) {
    super(
      'bundle_not_found',
      version
        ? `no agent bundle of version ${version} on this server (GET /api/v1/agent-bundles lists them)`
        : 'this server has no agent bundle to deploy (upload one with POST /api/v1/agent-bundles)',
      { status: 404 },
    );
  }
}

export class AgentBundleStore {
  readonly #cache = new Map<string, { mtimeMs: number; size: number; info: StoredBundle }>();

  constructor(readonly dir: string) {}

  async list(): Promise<StoredBundle[]> {
    await mkdir(this.dir, { recursive: true });
    const out: StoredBundle[] = [];
    for (const name of await readdir(this.dir)) {
      if (!FILE_RE.test(name)) continue;
      const info = await this.#load(name).catch(() => undefined); // a broken file is not offered
      if (info) out.push(info);
    }
    return out.sort((a, b) => compareVersions(b.version, a.version));
  }

  /** The bundle of `version`, or the newest when undefined. */
  async get(version?: string): Promise<StoredBundle> {
    const all = await this.list();
    const found = version === undefined ? all[0] : all.find((b) => b.version === version);
    if (!found) throw new BundleNotFoundError(version);
    return found;
  }

  /**
   * Validates and stores a bundle. The same bytes again are accepted (idempotent); a different
   * bundle under an existing version is refused — versions are immutable once deployed.
   */
  async add(bytes: Buffer): Promise<{ bundle: StoredBundle; created: boolean }> {
    const read = await readAgentBundle(bytes);
    const version = read.manifest.version;
    const fileName = `opsplane-agent-${version}.tar.gz`;
    await mkdir(this.dir, { recursive: true });
    const existing = await this.#load(fileName).catch(() => undefined);
    if (existing) {
      if (existing.sha256 === read.sha256) return { bundle: existing, created: false };
      throw new ConflictError(
        `agent bundle ${version} exists with different contents (sha256 ${existing.sha256}); give the new build a new version`,
      );
    }
    const tmp = join(this.dir, `.${fileName}.${randomBytes(4).toString('hex')}.tmp`);
    try {
      await writeFile(tmp, bytes, { mode: 0o644 });
      await rename(tmp, join(this.dir, fileName));
    } finally {
      await rm(tmp, { force: true });
    }
    return { bundle: await this.#load(fileName), created: true };
  }

  async #load(fileName: string): Promise<StoredBundle> {
    const path = join(this.dir, fileName);
    const st = await stat(path);
    const hit = this.#cache.get(fileName);
    if (hit && hit.mtimeMs === st.mtimeMs && hit.size === st.size) return hit.info;
    const bytes = await readFile(path);
    const read = await readAgentBundle(bytes);
    const expected = FILE_RE.exec(fileName)?.[1];
    if (read.manifest.version !== expected) {
      throw new Error(`${fileName} holds version ${read.manifest.version}`);
    }
    const info: StoredBundle = {
      version: read.manifest.version,
      path,
      fileName,
      sha256: createHash('sha256').update(bytes).digest('hex'),
      bytes: bytes.length,
      topDir: read.topDir,
      entry: read.manifest.entry,
      node: read.manifest.node,
      addedAt: st.mtime,
    };
    this.#cache.set(fileName, { mtimeMs: st.mtimeMs, size: st.size, info });
    return info;
  }
}
