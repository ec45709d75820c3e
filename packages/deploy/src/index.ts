/**
 * @opsplane/deploy — the install engine: SSH and WinRM sessions, the Linux and Windows agent
 * installers and the deployment walk. It is handed an InstallTarget (plain data) and a
 * HostKeyStore and never reads the server's storage.
 */

// Connecting to a device and the walk of a deployment.
export type {
  InstallTarget,
  LoginTarget,
  TargetSecrets,
  InstallOptions,
  WinRmTargetOptions,
} from './install-target.js';
export { installOptionsOf, winrmOptionsOf } from './install-target.js';
export { connectInstaller, type ConnectOptions } from './connect.js';
export { runDeployment, STEPS } from './deployment-steps.js';
export type {
  DeploymentKind,
  DeploymentInput,
  DeploymentOutcome,
  DeploymentReporter,
  StepStatus,
  LogLevel,
} from './deployment-steps.js';
export { renderAgentConfig, type AgentIdentity } from './agent-config.js';
export { onlineBaseline, waitOnline } from './online-wait.js';
export type { AgentSighting, OnlineWatch, OnlineBaseline } from './online-wait.js';
export type {
  HostInstaller,
  HostFacts,
  InstallLayout,
  InstalledVersions,
  AgentBundleInfo,
} from './host-installer.js';
export * from './deploy-errors.js';

// Linux over SSH.
export * from './ssh/ssh-errors.js';
export { MemoryHostKeyStore, checkHostKey, hostKeyFingerprint, hostPortKey } from './ssh/host-key-policy.js';
export type { HostKeyStore, HostKeyDecision } from './ssh/host-key-policy.js';
export { SshSession, shellQuote, shellCommand, normalizeArch } from './ssh/ssh-session.js';
export type {
  SshTarget,
  SshConnectOptions,
  ExecOptions,
  ExecResult,
  UploadOptions,
  UploadResult,
  DetectResult,
} from './ssh/ssh-session.js';
export { LinuxInstaller, checkInstallDir, SERVICE_NAME, type InstallScope } from './linux/linux-installer.js';

// Windows over WinRM (tested against a recorded-exchange fake only: no Windows host runs here).
export { WinRmSession, type WinRmConnectOptions } from './winrm/winrm-session.js';
export { WindowsInstaller, checkWindowsInstallDir } from './winrm/windows-installer.js';
export * from './winrm/winrm-errors.js';

// Node.js versions on devices.
export { nodeMinimum, parseNodeVersion, compareNodeVersions } from './node-version.js';
