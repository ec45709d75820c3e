/**
 * Errors specific to talking to agents. They are OpsplaneErrors, so the HTTP error handler turns
 * them into `{"error":{"code","message"}}` with the right status without knowing them.
 */
import { HTTP_STATUS_BY_CODE, OpsplaneError, type ErrorCode } from '@opsplane/models';

/**
 * The agent is known here but not connected, or it disconnected while a request was pending.
 * `mayHaveReceived` tells the two apart: a request that was written to the socket may have
 * reached the agent (its outcome is unknown), one that never left did not.
 */
export class AgentOfflineError extends OpsplaneError {
  readonly agentId: string;
  readonly mayHaveReceived: boolean;
  constructor(agentId: string, message = `agent '${agentId}' is offline`, mayHaveReceived = false) {
    super('agent_unavailable', message);
    this.agentId = agentId;
    this.mayHaveReceived = mayHaveReceived;
  }
}

/** The agent answered `ok: false`; its code is kept so that e.g. package_not_found stays a 404. */
export class AgentReportedError extends OpsplaneError {
  constructor(agentId: string, code: string, message: string) {
    const status = HTTP_STATUS_BY_CODE[code as ErrorCode];
    // Only client-error statuses are passed through; anything else the agent says is an upstream failure.
    super(code, `agent '${agentId}': ${message}`, {
      status: status !== undefined && status >= 400 && status < 500 ? status : 502,
    });
  }
}

/** The agent answered something that does not match the protocol. */
export class AgentProtocolError extends OpsplaneError {
  constructor(message: string) {
    super('upstream_error', message);
  }
}

/** Too many agents in one batch request. */
export class TooManyAgentsError extends OpsplaneError {
  constructor(count: number, max: number) {
    super(
      'payload_too_large',
      `the batch lists ${count} agents; at most ${max} are allowed per request (split it)`,
    );
  }
}
