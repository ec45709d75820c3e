/**
 * Error body on the wire (`{"error":{"code","message"}}`) and the typed error classes every
 * package throws. Callers branch on `code` or `instanceof`, never on message text.
 */
import { z } from 'zod';

export const ERROR_CODES = [
  'bad_request',
  'validation_failed',
  'unknown_parameter',
  'invalid_file_name',
  'invalid_characters',
  'unauthorized',
  'forbidden',
  'not_found',
  'agent_not_found',
  'package_not_found',
  'controller_not_found',
  'conflict',
  'payload_too_large',
  'rate_limited',
  'internal',
  'controller_unavailable',
  'agent_unavailable',
  'timeout',
  'upstream_error',
] as const;
export type ErrorCode = (typeof ERROR_CODES)[number];

export const ErrorBodySchema = z.object({
  error: z.object({
    code: z.string(),
    message: z.string(),
    details: z.unknown().optional(),
  }),
});
export type ErrorBody = z.infer<typeof ErrorBodySchema>;

export const HTTP_STATUS_BY_CODE: Record<ErrorCode, number> = {
  bad_request: 400,
  validation_failed: 400,
  unknown_parameter: 400,
  invalid_file_name: 400,
  invalid_characters: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  agent_not_found: 404,
  package_not_found: 404,
  controller_not_found: 404,
  conflict: 409,
  payload_too_large: 413,
  rate_limited: 429,
  internal: 500,
  controller_unavailable: 503,
  agent_unavailable: 503,
  timeout: 504,
  upstream_error: 502,
};

/** Base of every Opsplane error: a stable machine-readable code and the HTTP status it maps to. */
export class OpsplaneError extends Error {
  readonly code: string;
  readonly status: number;
  readonly details: unknown;
  constructor(
    code: ErrorCode | string,
    message: string,
    opts: { status?: number; details?: unknown; cause?: unknown } = {},
  ) {
    super(message, opts.cause !== undefined ? { cause: opts.cause } : undefined);
    this.name = new.target.name;
    this.code = code;
    this.status = opts.status ?? HTTP_STATUS_BY_CODE[code as ErrorCode] ?? 500;
    this.details = opts.details;
  }
  toBody(): ErrorBody {
    return {
      error: {
        code: this.code,
        message: this.message,
        ...(this.details !== undefined ? { details: this.details } : {}),
      },
    };
  }
}

export class ValidationError extends OpsplaneError {
  constructor(message: string, details?: unknown, code: ErrorCode = 'validation_failed') {
    super(code, message, { details });
  }
}

export class NotFoundError extends OpsplaneError {
  constructor(message: string, code: ErrorCode = 'not_found') {
    super(code, message);
  }
}

export class AgentNotFoundError extends NotFoundError {
  readonly agentId: string;
  constructor(agentId: string, message = `agent '${agentId}' not found`) {
    super(message, 'agent_not_found');
    this.agentId = agentId;
  }
}

export class PackageNotFoundError extends NotFoundError {
  constructor(agentId: string, pkg: string) {
    super(`package '${pkg}' not found on agent '${agentId}'`, 'package_not_found');
  }
}

/** No online controller for an area (or a given controller is gone). */
export class ControllerUnavailableError extends OpsplaneError {
  readonly area: string;
  constructor(area: string, message = `no online controller for area '${area}'`) {
    super('controller_unavailable', message);
    this.area = area;
  }
}

export class ControllerNotFoundError extends NotFoundError {
  constructor(area: string, id: string) {
    super(`controller '${area}/${id}' not found`, 'controller_not_found');
  }
}

export class RequestTimeoutError extends OpsplaneError {
  readonly timeoutMs: number;
  constructor(what: string, timeoutMs: number) {
    super('timeout', `${what} timed out after ${timeoutMs} ms`);
    this.timeoutMs = timeoutMs;
  }
}

export class UnauthorizedError extends OpsplaneError {
  constructor(message = 'authentication required') {
    super('unauthorized', message);
  }
}

export class ForbiddenError extends OpsplaneError {
  constructor(message = 'not allowed') {
    super('forbidden', message);
  }
}

export class ConflictError extends OpsplaneError {
  constructor(message: string) {
    super('conflict', message);
  }
}

/** Formats zod issues as one human sentence, naming the path of each problem. */
export function formatIssues(issues: readonly { path: readonly PropertyKey[]; message: string }[]): string {
  return issues
    .map((i) => (i.path.length ? `${i.path.map(String).join('.')}: ${i.message}` : i.message))
    .join('; ');
}
