/**
 * Typed errors of the SSH session layer. Callers branch on `code` (stable) or `instanceof`,
 * never on the message. Messages never contain passwords, keys or passphrases.
 */
import { DeployError, stderrTail } from '../deploy-errors.js';

/** The device refused the credentials (password, key or passphrase). */
export class SshAuthError extends DeployError {
  constructor(target: string, message = `SSH authentication failed for ${target}`, cause?: unknown) {
    super('ssh_auth_failed', message, { status: 502, details: { target }, cause });
  }
}

/** The device could not be reached: refused, unreachable, or no SSH handshake within the timeout. */
export class SshUnreachableError extends DeployError {
  constructor(target: string, reason: string, cause?: unknown) {
    super('ssh_unreachable', `SSH host ${target} unreachable: ${reason}`, {
      status: 504,
      details: { target, reason },
      cause,
    });
  }
}

/** The host presented a key other than the recorded one (possible man-in-the-middle). */
export class SshHostKeyChangedError extends DeployError {
  readonly hostPort: string;
  readonly expectedFingerprint: string;
  readonly presentedFingerprint: string;
  constructor(hostPort: string, expected: string, presented: string) {
    super(
      'ssh_host_key_changed',
      `host key of ${hostPort} changed: recorded ${expected}, presented ${presented}; ` +
        'refusing to connect (accept the new key explicitly if the change is expected)',
      { status: 409, details: { hostPort, expected, presented } },
    );
    this.hostPort = hostPort;
    this.expectedFingerprint = expected;
    this.presentedFingerprint = presented;
  }
}

/** A remote command failed (non-zero exit, killed, or timed out). */
export class SshCommandError extends DeployError {
  /** Exit code, or null when the command was killed by a signal or timed out. */
  readonly exitCode: number | null;
  /** The last part of stderr (at most 2 KiB). */
  readonly stderrTail: string;
  constructor(what: string, exitCode: number | null, stderr: string, reason?: string) {
    const tail = stderrTail(stderr);
    super(
      'ssh_command_failed',
      `${what} ${reason ?? `exited with ${exitCode === null ? 'no exit code' : exitCode}`}` +
        (tail ? `: ${tail}` : ''),
      { status: 502, details: { exitCode, stderr: tail } },
    );
    this.exitCode = exitCode;
    this.stderrTail = tail;
  }
}

/** `sudo -n` refused (not installed, or the login user may not run it without a password). */
export class SshSudoError extends DeployError {
  readonly stderrTail: string;
  constructor(user: string, stderr: string) {
    const tail = stderrTail(stderr);
    const missing = /sudo: (?:command )?not found/.test(stderr);
    super(
      'ssh_sudo_refused',
      (missing
        ? `sudo is not installed on the device (login user '${user}' is not root)`
        : `sudo refused for user '${user}' (passwordless sudo, NOPASSWD, is required)`) +
        (tail ? `: ${tail}` : ''),
      { status: 502, details: { user, stderr: tail } },
    );
    this.stderrTail = tail;
  }
}

/** The uploaded file's remote SHA-256 differs from the local one. */
export class SshChecksumError extends DeployError {
  constructor(remotePath: string, expected: string, actual: string) {
    super(
      'ssh_checksum_mismatch',
      `uploaded ${remotePath}: remote sha256 ${actual || '(none)'} != local ${expected}`,
      { status: 502, details: { remotePath, expected, actual } },
    );
  }
}
