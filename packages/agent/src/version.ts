/** The agent's version (reported in `hello`), read once from this package's package.json. */
import { readFileSync } from 'node:fs';

function readVersion(): string {
  try {
    // dist/src/version.js → ../../package.json is packages/agent/package.json.
    const raw: unknown = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8'));
    if (raw && typeof raw === 'object' && 'version' in raw && typeof raw.version === 'string')
      return raw.version;
  } catch {
    // Bundled or relocated: fall through.
  }
  return '0.0.0';
}

export const AGENT_VERSION = readVersion();

/** Go's GOARCH names, which the platform's device model uses (amd64, arm64). */
export function goArch(arch: string = process.arch): string {
  const map: Record<string, string> = { x64: 'amd64', ia32: '386', arm64: 'arm64', arm: 'arm' };
  return map[arch] ?? arch;
}
