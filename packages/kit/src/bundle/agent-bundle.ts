/**
 * The agent bundle: `opsplane-agent-<version>.tar.gz` with the single top directory
 * `opsplane-agent-<version>/` holding `manifest.json` (checksums of every other file) and the
 * files themselves (at least the entry, `agent.mjs`). The platform uploads it to a device and
 * unpacks it into `<root>/versions/<version>/`; readAgentBundle is the gate every bundle passes
 * before that, so a device never receives one whose content and manifest disagree.
 */
import { createHash } from 'node:crypto';
import { readFile, rename, rm, writeFile } from 'node:fs/promises';
import {
  AgentBundleManifestSchema,
  AgentBundlePathSchema,
  AgentBundleVersionSchema,
  formatIssues,
  type AgentBundleManifest,
} from '@opsplane/models';
import { InvalidAgentBundleError, TarError } from './errors.js';
import { readTarGz, writeTarGz, type ReadTarOptions, type TarEntry } from './tar.js';

export const AGENT_BUNDLE_NAME = 'opsplane-agent';
export const AGENT_BUNDLE_ENTRY = 'agent.mjs';
export const AGENT_BUNDLE_MANIFEST = 'manifest.json';

/** `opsplane-agent-<version>`: the top directory inside the archive. */
export const agentBundleTopDir = (version: string): string => `${AGENT_BUNDLE_NAME}-${version}`;
/** `opsplane-agent-<version>.tar.gz`: the archive's file name. */
export const agentBundleFileName = (version: string): string => `${agentBundleTopDir(version)}.tar.gz`;

export interface WriteAgentBundleOptions {
  version: string;
  /** Bundle files by relative path (`/`-separated); must hold `agent.mjs`, must not hold `manifest.json`. */
  files: Record<string, Buffer>;
  /** Node.js range the bundle needs, e.g. `>=20.18`. */
  node: string;
  /** Where to write the .tar.gz (conventionally named agentBundleFileName(version)). */
  outFile: string;
}

export interface WrittenAgentBundle {
  path: string;
  /** SHA-256 (hex) of the .tar.gz. */
  sha256: string;
  bytes: number;
  manifest: AgentBundleManifest;
}

export interface ReadAgentBundle {
  manifest: AgentBundleManifest;
  /** SHA-256 (hex) of the .tar.gz. */
  sha256: string;
  bytes: number;
  /** `opsplane-agent-<version>` */
  topDir: string;
}

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** Builds the bundle deterministically (same inputs → same bytes) and writes it atomically. */
export async function writeAgentBundle(opts: WriteAgentBundleOptions): Promise<WrittenAgentBundle> {
  const version = AgentBundleVersionSchema.safeParse(opts.version);
  if (!version.success) throw new InvalidAgentBundleError(formatIssues(version.error.issues));
  const top = agentBundleTopDir(version.data);
  const paths = Object.keys(opts.files).sort();
  if (!paths.includes(AGENT_BUNDLE_ENTRY))
    throw new InvalidAgentBundleError(`no ${AGENT_BUNDLE_ENTRY} given`);
  if (paths.includes(AGENT_BUNDLE_MANIFEST))
    throw new InvalidAgentBundleError(`${AGENT_BUNDLE_MANIFEST} is written by the bundler, not given`);

  const files: [string, { sha256: string; bytes: number }][] = [];
  const dirs = new Set<string>([top]);
  const entries: TarEntry[] = [];
  for (const p of paths) {
    const checked = AgentBundlePathSchema.safeParse(p);
    if (!checked.success)
      throw new InvalidAgentBundleError(`file '${p}': ${formatIssues(checked.error.issues)}`);
    const data = opts.files[p] as Buffer;
    files.push([p, { sha256: sha256(data), bytes: data.length }]);
    entries.push({ path: `${top}/${p}`, type: 'file', data });
    // Explicit directory entries, so every unpacker creates them with the same mode.
    for (let i = p.indexOf('/'); i !== -1; i = p.indexOf('/', i + 1)) dirs.add(`${top}/${p.slice(0, i)}`);
  }
  const parsed = AgentBundleManifestSchema.safeParse({
    format: 1,
    name: AGENT_BUNDLE_NAME,
    version: version.data,
    entry: AGENT_BUNDLE_ENTRY,
    node: opts.node,
    // fromEntries defines own properties, so even a file named `__proto__` is just a key.
    files: Object.fromEntries(files),
  });
  if (!parsed.success) throw new InvalidAgentBundleError(formatIssues(parsed.error.issues));
  const manifest = parsed.data;
  entries.push({
    path: `${top}/${AGENT_BUNDLE_MANIFEST}`,
    type: 'file',
    data: Buffer.from(JSON.stringify(manifest, null, 2) + '\n'),
  });
  for (const d of dirs) entries.push({ path: d, type: 'dir' });

  const gz = writeTarGz(entries);
  // Temp + rename: a bundle directory never shows a half-written archive under the final name.
  const tmp = `${opts.outFile}.${process.pid}.tmp`;
  try {
    await writeFile(tmp, gz);
    await rename(tmp, opts.outFile);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
  return { path: opts.outFile, sha256: sha256(gz), bytes: gz.length, manifest };
}

/**
 * Reads and checks a bundle (a path or its bytes): one top directory `opsplane-agent-<version>`,
 * a valid manifest.json of that version, every file listed with matching size and checksum and
 * nothing unlisted, the entry present. Throws InvalidAgentBundleError saying what is wrong.
 */
export async function readAgentBundle(
  source: string | Buffer,
  opts: ReadTarOptions = {},
): Promise<ReadAgentBundle> {
  const gz = typeof source === 'string' ? await readFile(source) : source;
  let entries: TarEntry[];
  try {
    entries = readTarGz(gz, opts);
  } catch (e) {
    if (e instanceof TarError) throw new InvalidAgentBundleError(e.message, { cause: e });
    throw e;
  }
  if (entries.length === 0) throw new InvalidAgentBundleError('the archive is empty');

  const tops = new Set(entries.map((e) => e.path.split('/')[0] as string));
  if (tops.size !== 1)
    throw new InvalidAgentBundleError(`expected one top directory, found ${[...tops].sort().join(', ')}`);
  const topDir = [...tops][0] as string;
  if (entries.some((e) => e.path === topDir && e.type !== 'dir'))
    throw new InvalidAgentBundleError(`'${topDir}' is not a directory`);
  if (!topDir.startsWith(`${AGENT_BUNDLE_NAME}-`))
    throw new InvalidAgentBundleError(
      `top directory '${topDir}' is not named ${AGENT_BUNDLE_NAME}-<version>`,
    );

  const filesIn = new Map<string, Buffer>();
  for (const e of entries)
    if (e.type === 'file') filesIn.set(e.path.slice(topDir.length + 1), e.data ?? Buffer.alloc(0));
  const manifestData = filesIn.get(AGENT_BUNDLE_MANIFEST);
  if (!manifestData) throw new InvalidAgentBundleError(`${topDir}/${AGENT_BUNDLE_MANIFEST} is missing`);
  let raw: unknown;
  try {
    raw = JSON.parse(manifestData.toString('utf8'));
  } catch (e) {
    throw new InvalidAgentBundleError(`${AGENT_BUNDLE_MANIFEST} is not JSON: ${(e as Error).message}`);
  }
  const parsed = AgentBundleManifestSchema.safeParse(raw);
  if (!parsed.success)
    throw new InvalidAgentBundleError(`${AGENT_BUNDLE_MANIFEST}: ${formatIssues(parsed.error.issues)}`);
  const manifest = parsed.data;
  if (topDir !== agentBundleTopDir(manifest.version))
    throw new InvalidAgentBundleError(
      `top directory '${topDir}' does not match version ${manifest.version} of ${AGENT_BUNDLE_MANIFEST}`,
    );

  if (!Object.hasOwn(manifest.files, manifest.entry))
    throw new InvalidAgentBundleError(`entry '${manifest.entry}' is not listed in ${AGENT_BUNDLE_MANIFEST}`);
  for (const [p, want] of Object.entries(manifest.files)) {
    const data = filesIn.get(p);
    if (!data) throw new InvalidAgentBundleError(`'${p}' is listed in ${AGENT_BUNDLE_MANIFEST} but missing`);
    if (data.length !== want.bytes)
      throw new InvalidAgentBundleError(
        `'${p}' has ${data.length} bytes, ${AGENT_BUNDLE_MANIFEST} says ${want.bytes}`,
      );
    if (sha256(data) !== want.sha256)
      throw new InvalidAgentBundleError(`'${p}' does not match its sha256 in ${AGENT_BUNDLE_MANIFEST}`);
  }
  // Unlisted files would reach the device unchecked.
  for (const p of filesIn.keys())
    if (p !== AGENT_BUNDLE_MANIFEST && !Object.hasOwn(manifest.files, p))
      throw new InvalidAgentBundleError(`'${p}' is not listed in ${AGENT_BUNDLE_MANIFEST}`);

  return { manifest, sha256: sha256(gz), bytes: gz.length, topDir };
}
