/**
 * Typed errors of the install engine. DeployError is the base of every error the engine raises
 * itself (SSH, WinRM and the ones here); the ones here do not belong to one transport: what the
 * device lacks (Node.js, disk space, a supported platform), an agent that never came online, and
 * the outcomes of the step walk (not installed, cancelled, rolled back). Callers branch on `code`
 * (stable, with a fixed HTTP status) or `instanceof`, never on the message; messages name what is
 * missing and what is needed, and never carry a secret.
 */
import { OpsplaneError } from '@opsplane/models';

/** Base of the engine's typed errors; `code` and `status` are part of the server's API. */
export class DeployError extends OpsplaneError {}

/** Node.js is missing on the device, or older than the bundle's range allows. */
export class NodeMissingError extends DeployError {
  constructor(message: string, details?: Record<string, unknown>) {
    super('node_missing', message, { status: 422, details });
  }
}

/** Not enough free space below the install root for the bundle (archive + unpacked copy). */
export class DiskFullError extends DeployError {
  constructor(message: string, details?: Record<string, unknown>) {
    super('disk_full', message, { status: 422, details });
  }
}

/** The device's OS, architecture, tooling or install path is one the installers cannot deploy to. */
export class UnsupportedPlatformError extends DeployError {
  constructor(message: string, details?: Record<string, unknown>) {
    super('unsupported_platform', message, { status: 422, details });
  }
}

/** The agent was installed and started but did not come online within the wait. */
export class AgentNotOnlineError extends DeployError {
  constructor(message: string, details?: Record<string, unknown>) {
    super('agent_not_online', message, { status: 504, details });
  }
}

/** An upgrade (or restart) was asked for a device that has no agent installed. */
export class AgentNotInstalledError extends DeployError {
  constructor(message: string) {
    super('agent_not_installed', message, { status: 409 });
  }
}

/** An operator cancelled the deployment (or the server stopped it) between two steps. */
export class DeploymentCancelledError extends DeployError {
  constructor(message = 'cancelled by an operator') {
    super('deployment_cancelled', message, { status: 409 });
  }
}

/** The upgrade failed and the device was rolled back to `previous`, which is online again. */
export class UpgradeRolledBackError extends DeployError {
  readonly version: string;
  readonly previous: string;
  constructor(version: string, previous: string, cause: Error) {
    super(
      'upgrade_rolled_back',
      `upgrade to ${version} failed (${cause.message}); rolled back to ${previous}, which is online again`,
      { status: 502, details: { version, previous }, cause },
    );
    this.version = version;
    this.previous = previous;
  }
}

const TAIL = 2048;

/** The last part of a remote command's stderr (at most 2 KiB), for messages and details. */
export function stderrTail(s: string): string {
  const t = s.trim();
  return t.length > TAIL ? '…' + t.slice(-TAIL) : t;
}

/** Socket error codes that mean "the device cannot be reached" (vs. a protocol failure). */
export const UNREACHABLE_NET_CODES: ReadonlySet<string> = new Set([
  'ECONNREFUSED',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ETIMEDOUT',
  'ECONNRESET',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EADDRNOTAVAIL',
  'EPIPE',
]);
