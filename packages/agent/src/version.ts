/**
 * The agent's version (reported in `hello`), read once at start-up. In the bundle (agent.mjs,
 * built by scripts/build-bundle.mjs) it is the `version` of the manifest.json next to it, so one
 * built agent.mjs packed under any version label reports that label; unbundled (dist/src) it is
 * this package's package.json version.
 */
import { readFileSync } from 'node:fs';

/**
 * Replaced by the bundler with the package.json version at build time; never defined unbundled.
 * Its presence is how this module knows it runs from the bundle.
 */
declare const __OPSPLANE_AGENT_BUILD_VERSION__: string | undefined;

function versionIn(file: URL): string | undefined {
  try {
    const raw: unknown = JSON.parse(readFileSync(file, 'utf8'));
    if (raw && typeof raw === 'object' && 'version' in raw && typeof raw.version === 'string')
      return raw.version;
  } catch {
    // Missing or unreadable: the caller falls back.
  }
  return undefined;
}

function readVersion(): string {
  if (typeof __OPSPLANE_AGENT_BUILD_VERSION__ === 'string') {
    // A bare dist/bundle/agent.mjs (not unpacked from a bundle) has no manifest beside it.
    return versionIn(new URL('./manifest.json', import.meta.url)) ?? __OPSPLANE_AGENT_BUILD_VERSION__;
  }
  // dist/src/version.js → ../../package.json is packages/agent/package.json.
  return versionIn(new URL('../../package.json', import.meta.url)) ?? '0.0.0';
}

export const AGENT_VERSION = readVersion();

/** Go's GOARCH names, which the platform's device model uses (amd64, arm64). */
export function goArch(arch: string = process.arch): string {
  const map: Record<string, string> = { x64: 'amd64', ia32: '386', arm64: 'arm64', arm: 'arm' };
  return map[arch] ?? arch;
}
