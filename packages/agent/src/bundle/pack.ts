/**
 * Packs the bundled agent (dist/bundle/agent.mjs, built by scripts/build-bundle.mjs) into the
 * versioned agent bundle the platform deploys (see @opsplane/platform's writeAgentBundle).
 * The version is only a label: the bundled agent reports the version of the manifest it is
 * unpacked with, so one build can be packed as several versions (upgrade tests do).
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
// The subpath, not the package root: the root loads the etcd client, which the agent never needs.
import { agentBundleFileName, writeAgentBundle } from '@opsplane/kit';
import { AGENT_VERSION } from '../version.js';

/** Node.js the bundle needs on a device (the bundle targets node20; 20.18 is the repo's floor). */
export const AGENT_BUNDLE_NODE_RANGE = '>=20.18';

export interface PackAgentBundleOptions {
  /** Version label; default this package's version. */
  version?: string;
  /** Directory to write `opsplane-agent-<version>.tar.gz` into (created if missing). */
  outDir: string;
}

export interface PackedAgentBundle {
  path: string;
  /** SHA-256 (hex) of the .tar.gz. */
  sha256: string;
  bytes: number;
  version: string;
}

/** Absolute path of dist/bundle/agent.mjs; throws when the bundle has not been built. */
export function bundledAgentPath(): string {
  // dist/src/bundle/pack.js → dist/bundle/agent.mjs
  const path = fileURLToPath(new URL('../../bundle/agent.mjs', import.meta.url));
  if (!existsSync(path)) {
    throw new Error(
      `the bundled agent ${path} has not been built; run \`npm run build\` ` +
        '(or `node packages/agent/scripts/build-bundle.mjs` after tsc)',
    );
  }
  return path;
}

/** Writes `<outDir>/opsplane-agent-<version>.tar.gz` holding agent.mjs and its manifest. */
export async function packAgentBundle(opts: PackAgentBundleOptions): Promise<PackedAgentBundle> {
  const version = opts.version ?? AGENT_VERSION;
  const agent = await readFile(bundledAgentPath());
  await mkdir(opts.outDir, { recursive: true });
  const written = await writeAgentBundle({
    version,
    files: { 'agent.mjs': agent },
    node: AGENT_BUNDLE_NODE_RANGE,
    outFile: join(opts.outDir, agentBundleFileName(version)),
  });
  return { path: written.path, sha256: written.sha256, bytes: written.bytes, version };
}
