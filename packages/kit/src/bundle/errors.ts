/** Errors of the bundle module: a malformed tar (internal) and an invalid agent bundle (public, typed). */
import { OpsplaneError } from '@opsplane/models';

/** The archive is not a safe ustar of files and directories; readAgentBundle turns it into InvalidAgentBundleError. */
export class TarError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TarError';
  }
}

/** A .tar.gz that is not a well-formed agent bundle; the message says what is wrong. */
export class InvalidAgentBundleError extends OpsplaneError {
  constructor(message: string, opts: { cause?: unknown } = {}) {
    super('invalid_agent_bundle', `invalid agent bundle: ${message}`, { status: 400, ...opts });
  }
}
