/** Typed errors of the agent; all extend OpsplaneError so callers branch on `code`. */
import { OpsplaneError } from '@opsplane/models';

/** agent.yaml is unreadable or invalid; the message names the file and the field. */
export class AgentConfigError extends OpsplaneError {
  readonly path: string;
  constructor(path: string, message: string, cause?: unknown) {
    super('validation_failed', `${path}: ${message}`, { cause });
    this.path = path;
  }
}

/** A package.yaml is unreadable or invalid. */
export class ManifestError extends OpsplaneError {
  readonly packageDir: string;
  constructor(packageDir: string, message: string, cause?: unknown) {
    super('invalid_manifest', message, { status: 500, cause });
    this.packageDir = packageDir;
  }
}

/** A package process could not be spawned (missing binary, bad working dir…). */
export class SpawnError extends OpsplaneError {
  constructor(message: string, cause?: unknown) {
    super('start_failed', message, { status: 500, cause });
  }
}
