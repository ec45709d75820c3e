/**
 * The contract between the shared deployment steps (deployment-steps.ts) and the per-OS
 * installers: `LinuxInstaller` over an SshSession, `WindowsInstaller` over a WinRmSession. The
 * steps decide *what* happens in which order (connect → detect → check → upload → configure →
 * install service → start → wait online, and the upgrade/uninstall/restart variants); an
 * installer knows *how* on its OS. Every method is idempotent, so a deployment interrupted by a
 * server restart can run again from the first step.
 */

/** A bundle to deploy — a local .tar.gz (the server keeps them in its bundle directory) — as installers need it. */
export interface AgentBundleInfo {
  version: string;
  /** Local path of the .tar.gz. */
  path: string;
  /** File name to upload as, `opsplane-agent-<version>.tar.gz`. */
  fileName: string;
  /** SHA-256 (hex) of the .tar.gz. */
  sha256: string;
  bytes: number;
  /** The bundle's top directory inside the archive, `opsplane-agent-<version>`. */
  topDir: string;
  /** Entry file inside topDir, `agent.mjs`. */
  entry: string;
  /** Node.js range the bundle needs, e.g. `>=20.18`. */
  node: string;
}

export interface HostFacts {
  os: 'linux' | 'windows' | string;
  /** amd64, arm64, or the raw machine name. */
  arch: string;
  /** How the agent is kept running: a systemd unit, a Windows service/task, or our own supervisor. */
  serviceManager: 'systemd' | 'windows' | 'supervised';
  /** Whether commands run with administrator rights (root, sudo or an elevated Windows user). */
  privileged: boolean;
}

/** Where the agent lives on the device. All absolute paths in the device's own syntax. */
export interface InstallLayout {
  /** Root of the installation: versions/, current, etc/, data/, packages/, log/, run/. */
  root: string;
  /** The agent config file (holds the token: readable by the agent's user only). */
  configFile: string;
  dataDir: string;
  packagesDir: string;
  /** Where the agent's own stdout/stderr go (supervised mode) — read back for diagnostics. */
  logFile: string;
}

export interface InstalledVersions {
  /** The version `current` points to, if any. */
  current?: string;
  /** The version kept for rollback, if any. */
  previous?: string;
  /** Every unpacked version directory. */
  available: string[];
}

export interface HostInstaller {
  /** OS, arch, service manager and privileges (also decides the layout). */
  detect(): Promise<HostFacts>;
  layout(): InstallLayout;
  /**
   * Node.js present and new enough (NodeMissingError otherwise) and enough free space for the
   * bundle below the install root (DiskFullError otherwise). Returns the node executable path.
   */
  checkPrerequisites(bundle: AgentBundleInfo): Promise<{ node: string; nodeVersion: string }>;
  /** Uploads the bundle (checksum-verified) and unpacks it into versions/<version>, atomically. */
  uploadBundle(bundle: AgentBundleInfo): Promise<void>;
  /** Writes the agent config (atomically, owner-only permissions). */
  writeConfig(yamlText: string): Promise<void>;
  /** Points `current` at versions/<version> atomically; the old target becomes `previous`. */
  activate(version: string): Promise<InstalledVersions>;
  /** Registers the service (unit file / supervisor script / Windows service) for `current`. */
  installService(node: string): Promise<void>;
  start(): Promise<void>;
  /** Stops the agent; with `packages`, the packages it supervises stop too (uninstall). */
  stop(opts?: { packages?: boolean }): Promise<void>;
  restart(): Promise<void>;
  isRunning(): Promise<boolean>;
  versions(): Promise<InstalledVersions>;
  /** Removes versions other than current and previous. */
  prune(): Promise<void>;
  /** Removes the service and every file of the installation. */
  removeAll(): Promise<void>;
  /** The last lines of the agent's own log, for error messages. Empty when none. */
  logTail(lines: number): Promise<string>;
  close(): void;
}
