/** Device deployment over SSH (the session layer the deployer builds on). */
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
