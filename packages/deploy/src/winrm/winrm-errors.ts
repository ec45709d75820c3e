/**
 * Typed errors of the WinRM layer (client, session, installer transport). Callers branch on
 * `code` (stable) or `instanceof`, never on the message. Messages name the target as
 * `user@host:port` and never contain the password (nor NTLM tokens or Authorization headers).
 */
import { DeployError, stderrTail } from '../deploy-errors.js';

/** The WinRM service refused the credentials (HTTP 401 after Basic or the NTLM handshake). */
export class WinRmAuthError extends DeployError {
  constructor(target: string, reason = 'credentials rejected (HTTP 401)') {
    super('winrm_auth_failed', `WinRM authentication failed for ${target}: ${reason}`, {
      status: 502,
      details: { target, reason },
    });
  }
}

/** No WinRM answer: refused, unreachable, DNS, reset, or no response within the timeout. */
export class WinRmUnreachableError extends DeployError {
  constructor(endpoint: string, reason: string, cause?: unknown) {
    super('winrm_unreachable', `WinRM endpoint ${endpoint} unreachable: ${reason}`, {
      status: 504,
      details: { endpoint, reason },
      cause,
    });
  }
}

/**
 * The TLS peer could not be trusted: normal certificate verification failed, or the certificate's
 * SHA-256 fingerprint differs from the pinned one. Raised before any credential is sent.
 */
export class WinRmTlsError extends DeployError {
  constructor(endpoint: string, reason: string, cause?: unknown) {
    super('winrm_tls_failed', `TLS to WinRM endpoint ${endpoint} refused: ${reason}`, {
      status: 502,
      details: { endpoint, reason },
      cause,
    });
  }
}

/** The WinRM service answered with a SOAP fault (or an HTTP error without one). */
export class WinRmFaultError extends DeployError {
  /** SOAP subcode, e.g. `w:TimedOut`, `w:InvalidSelectors`. */
  readonly subcode: string;
  /** The WSManFault code (a Windows error number), e.g. 2150858793; undefined when absent. */
  readonly wsmanCode: number | undefined;
  readonly httpStatus: number;
  constructor(
    what: string,
    fault: { subcode: string; wsmanCode: number | undefined; reason: string },
    httpStatus: number,
  ) {
    super(
      'winrm_fault',
      `WinRM ${what} failed: ${fault.reason || fault.subcode || `HTTP ${httpStatus}`}` +
        (fault.wsmanCode !== undefined ? ` (WSManFault ${fault.wsmanCode})` : ''),
      { status: 502, details: { ...fault, httpStatus } },
    );
    this.subcode = fault.subcode;
    this.wsmanCode = fault.wsmanCode;
    this.httpStatus = httpStatus;
  }
}

/** A remote command failed: non-zero exit, or it did not finish within its timeout. */
export class WinRmCommandError extends DeployError {
  /** Exit code, or null when the command timed out (and was terminated). */
  readonly exitCode: number | null;
  /** The last part of stderr (at most 2 KiB), CLIXML already decoded. */
  readonly stderrTail: string;
  constructor(what: string, exitCode: number | null, stderr: string, reason?: string) {
    const tail = stderrTail(stderr);
    super(
      'winrm_command_failed',
      `${what} ${reason ?? `exited with ${exitCode === null ? 'no exit code' : exitCode}`}` +
        (tail ? `: ${tail}` : ''),
      { status: 502, details: { exitCode, stderr: tail } },
    );
    this.exitCode = exitCode;
    this.stderrTail = tail;
  }
}

/** The uploaded file's remote SHA-256 (Get-FileHash) differs from the local one. */
export class WinRmChecksumError extends DeployError {
  constructor(remotePath: string, expected: string, actual: string) {
    super(
      'winrm_checksum_mismatch',
      `uploaded ${remotePath}: remote sha256 ${actual || '(none)'} != local ${expected}`,
      { status: 502, details: { remotePath, expected, actual } },
    );
  }
}
