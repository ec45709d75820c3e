/** Agent deployment: SSH and WinRM sessions, bundles, the shared steps and the per-OS installers. */
export {
  SshAuthError,
  SshUnreachableError,
  SshHostKeyChangedError,
  SshCommandError,
  SshSudoError,
  SshChecksumError,
} from './ssh/ssh-errors.js';
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

// Deployment: bundles, the shared steps, per-OS installers and their errors.
export {
  AgentBundleStore,
  BundleNotFoundError,
  compareVersions,
  type StoredBundle,
} from './agent-bundles.js';
export * from './deploy-errors.js';
export { runDeploymentSteps, renderAgentConfig, STEPS } from './deployment-steps.js';
export type { DeploymentKind, StepRecorder, StepsInput, AgentIdentity } from './deployment-steps.js';
export type {
  HostInstaller,
  HostFacts,
  InstallLayout,
  InstalledVersions,
  AgentBundleInfo,
} from './host-installer.js';
export { LinuxInstaller, checkInstallDir, SERVICE_NAME, type InstallScope } from './linux-installer.js';
export { installOptionsOf, type InstallOptions } from './device-connector.js';
export { WinRmSession } from './winrm/winrm-session.js';
export { WindowsInstaller } from './winrm/windows-installer.js';
export * from './winrm/winrm-errors.js';
