/**
 * HostInstaller for Linux over SSH. Layout below the install root:
 *   versions/<v>/        unpacked bundles (marked complete by a .complete file holding the sha256)
 *   current, previous    symlinks into versions/, switched with rename(2) — atomic
 *   etc/agent.yaml       the agent config (mode 600: it holds the agent token)
 *   data/, packages/     the agent's data_dir and packages_dir (kept across upgrades)
 *   bin/opsplane-agentctl, run/, log/   the supervisor used where systemd is not available
 * Scope `system` (default) installs to /opt/opsplane/agent as root (directly or with `sudo -n`)
 * and uses a systemd unit when systemd runs; scope `user` installs into the login user's home
 * without root, kept alive by opsplane-agentctl. Every remote command is a constant script with
 * its inputs as positional arguments, so names and paths never become shell code.
 */
import { SshCommandError } from '../ssh/ssh-errors.js';
import type { SshSession } from '../ssh/ssh-session.js';
import { DiskFullError, NodeMissingError, UnsupportedPlatformError } from '../deploy-errors.js';
import type {
  AgentBundleInfo,
  HostFacts,
  HostInstaller,
  InstalledVersions,
  InstallLayout,
} from '../host-installer.js';
import { agentctlScript, systemdUnit, STOP_PACKAGES_SCRIPT } from './linux-scripts.js';
import { compareNodeVersions, nodeMinimum, parseNodeVersion } from '../node-version.js';

export type InstallScope = 'system' | 'user';

export interface LinuxInstallerOptions {
  scope: InstallScope;
  /** Absolute install root; default /opt/opsplane/agent (system) or ~/.opsplane/agent (user). */
  installDir?: string;
  /** Node.js executable on the device; default: `node` on PATH, then /usr/local/bin, /usr/bin. */
  nodePath?: string;
}

export const SERVICE_NAME = 'opsplane-agent';
const SAFE_PATH = /^\/(?:[A-Za-z0-9._-]+\/)*[A-Za-z0-9._-]+$/;

/** An install root is an absolute, plain path at least two levels deep (never /, /opt, ..). */
export function checkInstallDir(dir: string): string {
  const parts = dir.split('/').filter(Boolean);
  if (!SAFE_PATH.test(dir) || parts.length < 2 || parts.some((p) => p === '.' || p === '..')) {
    throw new UnsupportedPlatformError(
      `install_dir '${dir}' must be an absolute path of at least two plain segments (letters, digits, . _ -)`,
    );
  }
  return dir;
}

/** Whether `node --version` output `v` is at least the range's minimum (any version if open). */
function versionAtLeast(v: string, range: string): boolean {
  const have = parseNodeVersion(v);
  const min = nodeMinimum(range);
  return have !== undefined && (min === undefined || compareNodeVersions(have, min) >= 0);
}

export class LinuxInstaller implements HostInstaller {
  #facts: HostFacts | undefined;
  #layout: InstallLayout | undefined;
  #sudo = false;

  constructor(
    readonly session: SshSession,
    private readonly opts: LinuxInstallerOptions,
  ) {
    if (opts.installDir !== undefined) checkInstallDir(opts.installDir);
  }

  async detect(): Promise<HostFacts> {
    const d = await this.session.detect();
    if (d.os !== 'linux') throw new UnsupportedPlatformError(`the device runs '${d.os}', not Linux`);
    if (this.opts.scope === 'system' && !d.isRoot) {
      // Fails with SshSudoError (a clear reason) when sudo is missing or wants a password.
      await this.session.exec(['true'], { sudo: true, timeoutMs: 30_000 });
      this.#sudo = true;
    }
    const privileged = d.isRoot || this.#sudo;
    let root = this.opts.installDir;
    if (root === undefined) {
      if (this.opts.scope === 'system') root = '/opt/opsplane/agent';
      else {
        const home = (await this.#sh('printf %s "$HOME"', [])).stdout;
        root = checkInstallDir(`${home.replace(/\/+$/, '')}/.opsplane/agent`);
      }
    }
    this.#layout = {
      root,
      configFile: `${root}/etc/agent.yaml`,
      dataDir: `${root}/data`,
      packagesDir: `${root}/packages`,
      logFile: `${root}/log/agent.log`,
    };
    this.#facts = {
      os: 'linux',
      arch: d.arch,
      serviceManager: d.hasSystemd && privileged && this.opts.scope === 'system' ? 'systemd' : 'supervised',
      privileged,
    };
    return this.#facts;
  }

  layout(): InstallLayout {
    if (!this.#layout) throw new Error('detect() first');
    return this.#layout;
  }

  get #root(): string {
    return this.layout().root;
  }

  get #systemd(): boolean {
    return this.#facts?.serviceManager === 'systemd';
  }

  /** Runs a constant sh script with positional args (as root when the scope needs it). */
  async #sh(script: string, args: readonly string[], opts: { stdin?: string; timeoutMs?: number } = {}) {
    try {
      return await this.session.exec(['sh', '-c', script, 'sh', ...args], {
        sudo: this.#sudo,
        check: true,
        timeoutMs: opts.timeoutMs ?? 120_000,
        ...(opts.stdin !== undefined ? { stdin: opts.stdin } : {}),
      });
    } catch (e) {
      if (e instanceof SshCommandError && /No space left on device|Disk quota exceeded/i.test(e.stderrTail)) {
        throw new DiskFullError(
          `no space left on the device below ${this.#layout?.root ?? 'the install dir'}: ${e.stderrTail}`,
        );
      }
      throw e;
    }
  }

  async checkPrerequisites(bundle: AgentBundleInfo): Promise<{ node: string; nodeVersion: string }> {
    // A configured node_path is the only candidate: silently using another node would hide a typo.
    const candidates = this.opts.nodePath
      ? [this.opts.nodePath]
      : ['', '/usr/local/bin/node', '/usr/bin/node'];
    const found = await this.session.exec(
      [
        'sh',
        '-c',
        'for n in "$@"; do [ -z "$n" ] && n=$(command -v node 2>/dev/null); ' +
          '[ -n "$n" ] && [ -x "$n" ] && { printf "%s\\n" "$n"; "$n" --version; exit 0; }; done; exit 3',
        'sh',
        ...candidates,
      ],
      { timeoutMs: 30_000 },
    );
    const [node = '', version = ''] = found.stdout.trim().split('\n');
    if (found.code !== 0 || !node) {
      throw new NodeMissingError(
        this.opts.nodePath
          ? `Node.js ${bundle.node} is needed on the device; node_path ${this.opts.nodePath} is not an executable`
          : `Node.js ${bundle.node} is needed on the device but none was found (install it, or set the device's node_path metadata)`,
      );
    }
    if (!versionAtLeast(version, bundle.node)) {
      throw new NodeMissingError(
        `Node.js ${bundle.node} is needed on the device; ${node} is ${version.trim()}`,
      );
    }
    // Free space where the bundle will be unpacked: the packed size, ~4x for unpacking, 1 MiB slack.
    const df = await this.#sh('mkdir -p "$1" && df -Pk "$1" | awk \'NR==2 {print $4}\'', [this.#root], {
      timeoutMs: 30_000,
    });
    const freeKiB = Number(df.stdout.trim());
    const needKiB = Math.ceil((bundle.bytes * 5) / 1024) + 1024;
    if (Number.isFinite(freeKiB) && freeKiB < needKiB) {
      throw new DiskFullError(
        `only ${freeKiB} KiB free below ${this.#root}; the agent ${bundle.version} needs about ${needKiB} KiB`,
      );
    }
    return { node, nodeVersion: version.trim() };
  }

  async uploadBundle(bundle: AgentBundleInfo): Promise<void> {
    const versionDir = `${this.#root}/versions/${bundle.version}`;
    const done = await this.session.exec(['cat', `${versionDir}/.complete`], {
      sudo: this.#sudo,
      timeoutMs: 30_000,
    });
    if (done.code === 0 && done.stdout.trim() === bundle.sha256) return; // unpacked by an earlier attempt
    // Staged where the login user may write (it is not root with sudo), then unpacked as root.
    const staging = (
      await this.session.exec(['mktemp', '-d', '/tmp/opsplane-agent.XXXXXXXX'], { check: true })
    ).stdout.trim();
    try {
      const staged = `${staging}/${bundle.fileName}`;
      await this.session.upload(bundle.path, staged, { mode: 0o644 });
      await this.#sh(
        // $1 root, $2 tarball, $3 version, $4 top dir, $5 sha256, $6 entry
        'set -e; cd "$1"; mkdir -p versions; t=$(mktemp -d "versions/.unpack.XXXXXXXX"); ' +
          'trap \'rm -rf "$t"\' EXIT; tar -xzf "$2" -C "$t"; test -f "$t/$4/$6"; ' +
          'rm -rf "versions/$3"; mv "$t/$4" "versions/$3"; printf "%s\\n" "$5" > "versions/$3/.complete"',
        [this.#root, staged, bundle.version, bundle.topDir, bundle.sha256, bundle.entry],
      );
    } finally {
      await this.session.exec(['rm', '-rf', '--', staging]).catch(() => undefined);
    }
  }

  async writeConfig(yamlText: string): Promise<void> {
    await this.#sh(
      'set -e; umask 077; mkdir -p "$(dirname "$1")" "$2" "$3"; cat > "$1.new"; mv -f "$1.new" "$1"',
      [this.layout().configFile, this.layout().dataDir, this.layout().packagesDir],
      { stdin: yamlText },
    );
  }

  async activate(version: string): Promise<InstalledVersions> {
    await this.#sh(
      'set -e; cd "$1"; test -f "versions/$2/.complete"; cur=$(readlink current 2>/dev/null || true); ' +
        'cur=${cur#versions/}; if [ "$cur" != "$2" ]; then ln -sfn "versions/$2" .current.new; mv -Tf .current.new current; ' +
        'if [ -n "$cur" ]; then ln -sfn "versions/$cur" .previous.new; mv -Tf .previous.new previous; fi; fi',
      [this.#root, version],
    );
    return this.versions();
  }

  async installService(node: string): Promise<void> {
    const root = this.#root;
    await this.#sh(
      'set -e; mkdir -p "$1/bin" "$1/run" "$1/log" "$1/etc"; cat > "$1/bin/.agentctl.new"; chmod 755 "$1/bin/.agentctl.new"; ' +
        'mv -f "$1/bin/.agentctl.new" "$1/bin/opsplane-agentctl"; printf "%s\n" "$2" > "$1/etc/node"',
      [root, node],
      { stdin: agentctlScript(root, node) },
    );
    if (this.#systemd) {
      await this.#sh(
        'set -e; cat > "/etc/systemd/system/$1.service.new"; mv -f "/etc/systemd/system/$1.service.new" "/etc/systemd/system/$1.service"; ' +
          'systemctl daemon-reload; systemctl enable "$1.service" >/dev/null 2>&1',
        [SERVICE_NAME],
        { stdin: systemdUnit(root, node) },
      );
    }
  }

  async start(): Promise<void> {
    if (this.#systemd) await this.#sh('systemctl start "$1.service"', [SERVICE_NAME]);
    else await this.#sh('"$1/bin/opsplane-agentctl" start', [this.#root], { timeoutMs: 60_000 });
  }

  async stop(opts: { packages?: boolean } = {}): Promise<void> {
    if (this.#systemd) await this.#sh('systemctl stop "$1.service" || true', [SERVICE_NAME]);
    else
      await this.#sh(
        'if [ -x "$1/bin/opsplane-agentctl" ]; then "$1/bin/opsplane-agentctl" stop; fi',
        [this.#root],
        {
          timeoutMs: 60_000,
        },
      );
    if (opts.packages) {
      // The agent leaves its packages running when it stops (so upgrades do not interrupt them);
      // on uninstall they go too: the pids it recorded, checked against /proc start times.
      await this.#sh(
        'n=$(cat "$1/etc/node" 2>/dev/null); [ -f "$1/data/state.json" ] && [ -x "$n" ] && "$n" -e "$2" "$1/data/state.json" || true',
        [this.#root, STOP_PACKAGES_SCRIPT],
        { timeoutMs: 60_000 },
      );
    }
  }

  async restart(): Promise<void> {
    if (this.#systemd) await this.#sh('systemctl restart "$1.service"', [SERVICE_NAME]);
    else await this.#sh('"$1/bin/opsplane-agentctl" restart', [this.#root], { timeoutMs: 60_000 });
  }

  async isRunning(): Promise<boolean> {
    const script = this.#systemd
      ? 'systemctl is-active --quiet "$2.service"'
      : '[ -x "$1/bin/opsplane-agentctl" ] && "$1/bin/opsplane-agentctl" status >/dev/null';
    const r = await this.session.exec(['sh', '-c', script, 'sh', this.#root, SERVICE_NAME], {
      sudo: this.#sudo,
      timeoutMs: 30_000,
    });
    return r.code === 0;
  }

  async versions(): Promise<InstalledVersions> {
    const r = await this.session.exec(
      [
        'sh',
        '-c',
        'cd "$1" 2>/dev/null || exit 0; c=$(readlink current 2>/dev/null || true); p=$(readlink previous 2>/dev/null || true); ' +
          'printf "current=%s\\nprevious=%s\\n" "${c#versions/}" "${p#versions/}"; ' +
          'for d in versions/*/; do [ -f "$d.complete" ] && printf "available=%s\\n" "$(basename "$d")"; done; true',
        'sh',
        this.#root,
      ],
      { sudo: this.#sudo, timeoutMs: 30_000, check: true },
    );
    const out: InstalledVersions = { available: [] };
    for (const line of r.stdout.split('\n')) {
      const [k, v = ''] = line.split('=', 2);
      if (!v) continue;
      if (k === 'current') out.current = v;
      else if (k === 'previous') out.previous = v;
      else if (k === 'available') out.available.push(v);
    }
    return out;
  }

  async prune(): Promise<void> {
    const v = await this.versions();
    const keep = new Set([v.current, v.previous].filter((x): x is string => !!x));
    const drop = v.available.filter((x) => !keep.has(x));
    if (drop.length === 0) return;
    await this.#sh('set -e; cd "$1/versions"; shift; for v in "$@"; do rm -rf -- "$v"; done', [
      this.#root,
      ...drop,
    ]);
  }

  async removeAll(): Promise<void> {
    if (this.#systemd) {
      await this.#sh(
        'systemctl disable --now "$1.service" >/dev/null 2>&1; rm -f "/etc/systemd/system/$1.service"; systemctl daemon-reload',
        [SERVICE_NAME],
      );
    }
    await this.#sh('rm -rf -- "$1"', [checkInstallDir(this.#root)]);
  }

  async logTail(lines: number): Promise<string> {
    const script = this.#systemd
      ? 'journalctl -u "$2.service" -n "$3" --no-pager 2>/dev/null'
      : 'tail -n "$3" "$1/log/agent.log" 2>/dev/null';
    const r = await this.session
      .exec(['sh', '-c', script, 'sh', this.#root, SERVICE_NAME, String(lines)], {
        sudo: this.#sudo,
        timeoutMs: 30_000,
      })
      .catch(() => undefined);
    return r?.stdout.trim() ?? '';
  }

  close(): void {
    this.session.close();
  }
}
