/**
 * Test fixtures: a temp workspace (packages_dir + data_dir), tiny real programs used as
 * packages, and a safety net that kills every package process group a test saw.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { tempDir, waitFor } from '@opsplane/test-support';
import { stringify } from 'yaml';
import type { PackageStatus } from '@opsplane/models';
import type { Supervisor } from '../src/index.js';

export const NODE = process.execPath;

/** HTTP service: /health answers 200 unless config/app.json says {"healthy": false}. */
export const HTTP_SERVICE = `
const fs = require('fs'), http = require('http'), path = require('path');
let cfg = {};
try { cfg = JSON.parse(fs.readFileSync(path.join(process.env.OPSPLANE_CONFIG_DIR, 'app.json'), 'utf8')); }
catch (e) { console.error('config problem:', e.message); }
const port = Number(process.env.PORT);
http.createServer((req, res) => {
  if (req.url === '/health') { const ok = cfg.healthy !== false; res.writeHead(ok ? 200 : 500); res.end(ok ? 'ok' : 'unhealthy'); }
  else { res.writeHead(200); res.end(JSON.stringify(cfg)); }
}).listen(port, '127.0.0.1', () => console.log('listening on', port));
process.on('SIGTERM', () => process.exit(0));
`;

/** Exits with code 3 after 100 ms. */
export const CRASHER = `setTimeout(() => { console.error('crashing'); process.exit(3); }, 100);`;

/** Runs until SIGTERM. */
export const SLEEPER = `console.log('sleeping', process.pid); setInterval(() => {}, 1000); process.on('SIGTERM', () => process.exit(0));`;

/** Ignores SIGTERM: only SIGKILL ends it. */
export const STUBBORN = `process.on('SIGTERM', () => console.log('ignoring SIGTERM')); setInterval(() => {}, 1000); console.log('stubborn up');`;

export interface Workspace {
  root: string;
  packagesDir: string;
  dataDir: string;
  cleanup: () => Promise<void>;
}

export async function workspace(): Promise<Workspace> {
  const t = await tempDir('opsplane-agent-test-');
  const packagesDir = join(t.path, 'packages');
  const dataDir = join(t.path, 'data');
  await mkdir(packagesDir, { recursive: true });
  await mkdir(dataDir, { recursive: true });
  return { root: t.path, packagesDir, dataDir, cleanup: t.cleanup };
}

/**
 * Writes `<packagesDir>/<name>/` with main.cjs = `program`, config files, and a package.yaml
 * from `manifest` (command defaults to node main.cjs).
 */
export async function writePackage(
  ws: Workspace,
  name: string,
  program: string,
  manifest: Record<string, unknown> = {},
  configs: Record<string, string> = {},
): Promise<string> {
  const dir = join(ws.packagesDir, name);
  await mkdir(join(dir, 'config'), { recursive: true });
  await writeFile(join(dir, 'main.cjs'), program);
  for (const [f, c] of Object.entries(configs)) await writeFile(join(dir, 'config', f), c);
  await writeFile(
    join(dir, 'package.yaml'),
    stringify({ name, version: '1.0.0', command: NODE, args: ['main.cjs'], stop_grace: '2s', ...manifest }),
  );
  return dir;
}

/** Fast restart policy for tests. */
export const FAST_RESTARTS = {
  policy: 'always',
  max_retries: 5,
  backoff_initial: '50ms',
  backoff_max: '400ms',
  reset_after: '10s',
};

/** Remembers every pid a test saw so after() can kill the groups even if an assertion failed. */
export class PidTracker {
  private readonly pids = new Set<number>();
  note(s: PackageStatus | undefined): PackageStatus | undefined {
    if (s?.pid) this.pids.add(s.pid);
    return s;
  }
  noteSupervisor(sup: Supervisor): void {
    for (const s of sup.list()) this.note(s);
  }
  killAll(): void {
    for (const pid of this.pids) {
      try {
        process.kill(-pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
  }
}

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export async function waitStatus(
  sup: Supervisor,
  name: string,
  pred: (s: PackageStatus) => boolean,
  what: string,
  timeoutMs = 10_000,
): Promise<PackageStatus> {
  return waitFor(
    () => {
      const s = sup.statusOf(name);
      if (s && pred(s)) return s;
      if (s) throw new Error(JSON.stringify(s));
      return undefined;
    },
    { timeoutMs, what: `${name}: ${what}` },
  );
}
