/**
 * HostInstaller for Windows devices over a WinRmSession. Layout below the install root (default
 * `C:\Program Files\Opsplane\Agent`): `versions\<v>\` (unpacked bundles), `current` and
 * `previous` (directory junctions), `etc\agent.yaml` (SYSTEM and Administrators only),
 * `data\`, `packages\`, `log\agent.log`, `bin\supervisor.cjs`, `tmp\`.
 *
 * Why these choices:
 * - `current` is switched by creating the new junction under a temporary name and renaming it
 *   into place (the old one renamed away first). NTFS renames within a directory are atomic;
 *   the pair is not, so for an instant `current` may not exist — harmless, since the agent
 *   resolves it only when (re)started, which the steps do after activate.
 * - The agent runs as a Scheduled Task `OpsplaneAgent` (at startup, as SYSTEM), not a Windows
 *   service: the Service Control Manager only runs programs that speak its protocol, which a
 *   plain node process does not without a wrapper binary (nssm, winsw) we would have to ship.
 *   The task runs bin\supervisor.cjs on the device's node.exe; it restarts the agent when it
 *   exits and captures its output (the task's own restart-on-failure covers launch failures).
 *   Start/stop are Start-ScheduledTask / Stop-ScheduledTask (plus ending the agent process).
 * - Bundles are unpacked with the built-in tar.exe (Windows 10 1803 / Server 2019 and later)
 *   into tmp\ and then moved into versions\, so a version directory is complete or absent.
 *
 * Every value reaches the scripts (windows-scripts.ts) as a bound literal, never as code.
 * Tested against the recorded-exchange WinRM fake, not a Windows host.
 */
import { AgentBundleVersionSchema, OpsplaneError, ValidationError } from '@opsplane/models';
import { createLogger, type Logger } from '@opsplane/kit';
import { DiskFullError, NodeMissingError, UnsupportedPlatformError } from '../deploy-errors.js';
import type {
  AgentBundleInfo,
  HostFacts,
  HostInstaller,
  InstalledVersions,
  InstallLayout,
} from '../host-installer.js';
import { compareNodeVersions as compareVersions, nodeMinimum, parseNodeVersion } from '../node-version.js';
import type { PsValue } from './powershell.js';
import * as S from './windows-scripts.js';
import { WinRmCommandError } from './winrm-errors.js';
import type { PowerShellResult, WinRmSession } from './winrm-session.js';

export { nodeMinimum };
export const WINDOWS_INSTALL_DIR = 'C:\\Program Files\\Opsplane\\Agent';
export const WINDOWS_TASK_NAME = 'OpsplaneAgent';

export interface WindowsInstallerOptions {
  /** Install root (absolute, drive-letter path, not a drive root). Default WINDOWS_INSTALL_DIR. */
  installDir?: string;
  logger?: Logger;
}

// Drive letter, then segments without Windows' reserved characters (control characters apart).
const WIN_PATH = /^[A-Za-z]:(?:\\[^\\/:*?"<>|]+)+$/;

/** Validates and normalizes an install root: `C:\dir[\sub…]`, no trailing backslash. */
export function checkWindowsInstallDir(dir: string): string {
  const d = dir.replace(/[\\/]+$/, '');
  const bad =
    !WIN_PATH.test(d) ||
    [...d].some((c) => c.charCodeAt(0) < 0x20) ||
    d.split('\\').some((s) => s === '.' || s === '..' || /[ .]$/.test(s));
  if (bad) {
    throw new UnsupportedPlatformError(
      `install_dir '${dir}' must be an absolute Windows path below a drive root, like C:\\Opsplane\\Agent`,
    );
  }
  return d;
}

function checkVersion(version: string): string {
  const r = AgentBundleVersionSchema.safeParse(version);
  if (!r.success) throw new ValidationError(`invalid agent version '${version}'`);
  return version;
}

/** The JSON object a script printed last (PowerShell may print warnings before it). */
function lastJson(res: PowerShellResult, label: string): Record<string, unknown> {
  const line = res.stdout
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.startsWith('{'))
    .pop();
  try {
    return JSON.parse(line ?? '') as Record<string, unknown>;
  } catch {
    const out = res.stdout.trim().slice(0, 200);
    throw new WinRmCommandError(
      `PowerShell 'windows.${label}'`,
      res.code,
      res.stderr,
      `printed no JSON (${out})`,
    );
  }
}

const strOrUndef = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);

export class WindowsInstaller implements HostInstaller {
  readonly session: WinRmSession;
  readonly #root: string;
  readonly #log: Logger;
  #facts: HostFacts | undefined;

  constructor(session: WinRmSession, opts: WindowsInstallerOptions = {}) {
    this.session = session;
    this.#root = checkWindowsInstallDir(opts.installDir ?? WINDOWS_INSTALL_DIR);
    this.#log = (opts.logger ?? createLogger('windows-installer')).child({ target: session.target });
  }

  async detect(): Promise<HostFacts> {
    const d = await this.session.detect();
    this.#facts = { os: 'windows', arch: d.arch, serviceManager: 'windows', privileged: d.isAdmin };
    this.#log.debug({ ...this.#facts, caption: d.caption, osVersion: d.osVersion }, 'detected');
    return this.#facts;
  }

  layout(): InstallLayout {
    const r = this.#root;
    return {
      root: r,
      configFile: `${r}\\etc\\agent.yaml`,
      dataDir: `${r}\\data`,
      packagesDir: `${r}\\packages`,
      logFile: `${r}\\log\\agent.log`,
    };
  }

  async checkPrerequisites(bundle: AgentBundleInfo): Promise<{ node: string; nodeVersion: string }> {
    if (this.#facts && !this.#facts.privileged) {
      throw new UnsupportedPlatformError(
        `the WinRM user of ${this.session.target} is not an administrator; installing under ` +
          `${this.#root} and registering a SYSTEM task needs one`,
      );
    }
    const info = lastJson(
      await this.#ps('prerequisites', S.PREREQUISITES, { Root: this.#root }, 120_000),
      'prerequisites',
    );
    if (info.tar !== true) {
      throw new UnsupportedPlatformError(
        'tar.exe is missing on the device (built in since Windows 10 1803 / Server 2019, which are required)',
      );
    }
    const node = strOrUndef(info.node);
    const nodeVersion = strOrUndef(info.nodeVersion);
    const looked = strOrUndef(info.looked) ?? 'PATH';
    if (!node || !nodeVersion) {
      throw new NodeMissingError(
        `Node.js ${bundle.node} is needed on the device but none was found (looked in ${looked} and PATH; ` +
          `install it, or put it at ${this.#root}\\node\\node.exe)`,
        { required: bundle.node, looked },
      );
    }
    const min = nodeMinimum(bundle.node);
    const have = parseNodeVersion(nodeVersion);
    if (min && (!have || compareVersions(have, min) < 0)) {
      throw new NodeMissingError(
        `Node.js ${bundle.node} is needed on the device; ${node} is ${nodeVersion}`,
        {
          required: bundle.node,
          found: nodeVersion,
          node,
        },
      );
    }
    // The archive, its unpacked copy (~4x) and slack.
    const needed = bundle.bytes * 5 + 16 * 1024 * 1024;
    const free = typeof info.freeBytes === 'number' ? info.freeBytes : undefined;
    if (free !== undefined && free < needed) {
      const drive = strOrUndef(info.drive) ?? this.#root.slice(0, 2);
      throw new DiskFullError(
        `only ${mib(free)} free on ${drive}; the agent ${bundle.version} needs about ${mib(needed)} below ${this.#root}`,
        { drive, freeBytes: free, neededBytes: needed },
      );
    }
    return { node, nodeVersion };
  }

  async uploadBundle(bundle: AgentBundleInfo): Promise<void> {
    const version = checkVersion(bundle.version);
    // Names joined to paths on the device: plain names only, so none can climb out of its directory.
    for (const name of [bundle.fileName, bundle.topDir, bundle.entry]) {
      if (!/^[\w.-]+$/.test(name) || /^\.+$/.test(name))
        throw new ValidationError(`invalid bundle name '${name}'`);
    }
    const vars = { Root: this.#root, Version: version, Sha256: bundle.sha256 };
    const state = await this.#ps('bundle.prepare', S.HELPERS + S.LAYOUT + S.BUNDLE_PRESENT, vars);
    if (state.stdout.trim() === 'present') return; // unpacked by an earlier attempt
    const archive = `${this.#root}\\tmp\\${bundle.fileName}`;
    const up = await this.session.upload(bundle.path, archive);
    if (up.sha256 !== bundle.sha256) {
      throw new OpsplaneError(
        'internal',
        `bundle ${bundle.path} changed on the server: sha256 ${up.sha256}, recorded ${bundle.sha256}`,
      );
    }
    await this.#ps(
      'bundle.unpack',
      S.UNPACK,
      { ...vars, Archive: archive, TopDir: bundle.topDir, Entry: bundle.entry },
      10 * 60_000,
    );
  }

  async writeConfig(yamlText: string): Promise<void> {
    await this.#ps('config.prepare', S.HELPERS + S.LAYOUT, { Root: this.#root });
    // Through stdin (upload), not the command line: the config holds the agent's token, and
    // command lines show up in process listings and audit logs. etc\ is already locked down,
    // so the file is never readable by others, not even while being written.
    await this.session.upload(Buffer.from(yamlText, 'utf8'), `${this.#root}\\etc\\agent.yaml.new`);
    await this.#ps('config.commit', S.HELPERS + S.CONFIG_COMMIT, { Root: this.#root });
  }

  async activate(version: string): Promise<InstalledVersions> {
    const vars = { Root: this.#root, Version: checkVersion(version), Entry: 'agent.mjs' };
    return toVersions(lastJson(await this.#ps('activate', S.HELPERS + S.ACTIVATE, vars), 'activate'));
  }

  async installService(node: string): Promise<void> {
    await this.session.upload(Buffer.from(S.SUPERVISOR_JS, 'utf8'), `${this.#root}\\bin\\supervisor.cjs`);
    await this.#ps('service.install', S.SERVICE_INSTALL, {
      Root: this.#root,
      Node: node,
      TaskName: WINDOWS_TASK_NAME,
    });
  }

  async start(): Promise<void> {
    await this.#ps('service.start', S.START, { TaskName: WINDOWS_TASK_NAME });
  }

  async stop(opts: { packages?: boolean } = {}): Promise<void> {
    const vars = { Root: this.#root, TaskName: WINDOWS_TASK_NAME, StopPackages: opts.packages === true };
    await this.#ps('service.stop', S.HELPERS + S.STOP, vars);
  }

  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }

  async isRunning(): Promise<boolean> {
    const res = await this.#ps('service.status', S.IS_RUNNING, { TaskName: WINDOWS_TASK_NAME });
    return res.stdout.trim() === 'running';
  }

  async versions(): Promise<InstalledVersions> {
    return toVersions(
      lastJson(await this.#ps('versions', S.HELPERS + S.VERSIONS, { Root: this.#root }), 'versions'),
    );
  }

  async prune(): Promise<void> {
    await this.#ps('prune', S.HELPERS + S.PRUNE, { Root: this.#root }, 10 * 60_000);
  }

  async removeAll(): Promise<void> {
    await this.#ps(
      'remove',
      S.HELPERS + S.REMOVE_ALL,
      { Root: this.#root, TaskName: WINDOWS_TASK_NAME },
      10 * 60_000,
    );
  }

  async logTail(lines: number): Promise<string> {
    const n = Math.max(1, Math.min(10_000, Math.floor(lines)));
    try {
      const res = await this.#ps('log.tail', S.LOG_TAIL, { Root: this.#root, Lines: n }, 60_000);
      return res.stdout.trim();
    } catch (e) {
      // Diagnostics only: never let them replace the error being diagnosed.
      this.#log.debug({ err: (e as Error).message }, 'log tail failed');
      return '';
    }
  }

  close(): void {
    void this.session.close();
  }

  #ps(
    label: string,
    body: string,
    vars: Record<string, PsValue>,
    timeoutMs = 120_000,
  ): Promise<PowerShellResult> {
    return this.session.runPowerShell(body, { label: `windows.${label}`, vars, check: true, timeoutMs });
  }
}

function toVersions(raw: Record<string, unknown>): InstalledVersions {
  const list = Array.isArray(raw.available)
    ? raw.available
    : typeof raw.available === 'string'
      ? [raw.available]
      : [];
  const out: InstalledVersions = { available: list.filter((v): v is string => typeof v === 'string').sort() };
  const current = strOrUndef(raw.current);
  const previous = strOrUndef(raw.previous);
  if (current) out.current = current;
  if (previous) out.previous = previous;
  return out;
}

function mib(bytes: number): string {
  return `${(bytes / (1024 * 1024)).toFixed(1)} MiB`;
}
