/**
 * Errors the controller HTTP client raises. Callers branch on `instanceof` or `code`, never on
 * message text (the Go guide's `strings.Contains(err.Error(), "not found")` is what this
 * replaces). Agent-level and timeout errors reuse the shared classes from @opsplane/models;
 * only what is specific to talking HTTP to a controller lives here.
 */
import { ControllerUnavailableError, ErrorBodySchema, OpsplaneError } from '@opsplane/models';

export interface ControllerHttpErrorInit {
  /** The HTTP status the controller answered with. */
  status: number;
  /** The raw response body (text; kept up to 64 KiB). */
  body: string;
  /** The full request URL. */
  url: string;
  method: string;
  /** Overrides the code taken from the body (used for malformed 2xx bodies). */
  code?: string;
  message?: string;
  details?: unknown;
  cause?: unknown;
  /** From a Retry-After header (seconds form), if the controller sent one. */
  retryAfterMs?: number;
}

const MAX_KEPT_BODY = 64 * 1024;

/** Parses `{"error":{"code","message"}}`; undefined for anything else. */
export function parseWireError(body: string): { code: string; message: string } | undefined {
  try {
    const parsed = ErrorBodySchema.safeParse(JSON.parse(body));
    return parsed.success ? { code: parsed.data.error.code, message: parsed.data.error.message } : undefined;
  } catch {
    return undefined;
  }
}

/**
 * A controller answered, but not with what we asked for: a non-2xx status, or a 2xx whose body
 * does not match the wire schema (code 'upstream_error').
 *
 * `status` is the controller's status for non-2xx answers, so callers can branch on 400 vs 503.
 * For a malformed 2xx body it is 502 (what the failure maps to) and `upstreamStatus` keeps the
 * real one; an error must never claim status 200.
 */
export class ControllerHttpError extends OpsplaneError {
  readonly body: string;
  readonly url: string;
  readonly method: string;
  /** The code the controller put in its error body, if it sent one. */
  readonly wireCode: string | undefined;
  /** The message the controller put in its error body, if it sent one. */
  readonly wireMessage: string | undefined;
  /** The status the controller actually answered with. */
  readonly upstreamStatus: number;
  /** How long the controller asked us to wait (Retry-After), if it said. */
  readonly retryAfterMs: number | undefined;

  constructor(init: ControllerHttpErrorInit) {
    const wire = parseWireError(init.body);
    const isSuccess = init.status >= 200 && init.status < 300;
    const code = init.code ?? wire?.code ?? 'upstream_error';
    const message =
      init.message ??
      `controller answered ${init.status} to ${init.method} ${init.url}` +
        (wire ? `: ${wire.code}: ${wire.message}` : init.body ? `: ${truncate(init.body, 200)}` : '');
    super(code, message, {
      status: isSuccess ? 502 : init.status,
      details: init.details,
      cause: init.cause,
    });
    // Kept for diagnosis, but bounded: errors end up in logs and API responses.
    this.body = truncate(init.body, MAX_KEPT_BODY);
    this.url = init.url;
    this.method = init.method;
    this.wireCode = wire?.code;
    this.wireMessage = wire?.message;
    this.upstreamStatus = init.status;
    this.retryAfterMs = init.retryAfterMs;
  }
}

/**
 * An artifact upload started at an offset other than the bytes the controller holds (409
 * `artifact_offset_mismatch`); `bytes` is what it holds, where the upload resumes.
 */
export class ArtifactOffsetMismatchError extends ControllerHttpError {
  readonly bytes: number;
  constructor(init: ControllerHttpErrorInit, bytes: number) {
    super(init);
    this.bytes = bytes;
  }
}

/**
 * The controller could not be reached at all (connection refused or reset, DNS failure, socket
 * closed mid-request, client already closed). It is a ControllerUnavailableError, so code
 * 'controller_unavailable' / status 503, and `instanceof ControllerUnavailableError` holds.
 */
/** Low-level codes that mean the request never got to the controller (no connection was made). */
const NEVER_SENT_CODES = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'UND_ERR_CONNECT_TIMEOUT',
]);

export class ControllerConnectionError extends ControllerUnavailableError {
  readonly url: string;
  /** The low-level error code, e.g. ECONNREFUSED, UND_ERR_SOCKET. */
  readonly causeCode: string | undefined;
  /**
   * True when no connection was made (refused, unresolvable, unreachable): the request cannot
   * have reached the controller. A reset or a socket closed mid-exchange may have.
   */
  readonly neverSent: boolean;

  constructor(area: string, url: string, cause: unknown, message?: string) {
    const causeCode = errorCode(cause);
    super(
      area,
      message ??
        `controller of area '${area}' unreachable at ${url}` +
          (causeCode ? ` (${causeCode})` : cause instanceof Error ? ` (${cause.message})` : ''),
    );
    this.url = url;
    this.causeCode = causeCode;
    this.neverSent = causeCode !== undefined && NEVER_SENT_CODES.has(causeCode);
    if (cause !== undefined) Object.defineProperty(this, 'cause', { value: cause, enumerable: false });
  }
}

/** `err.code` when it is a string (Node system errors and undici errors carry one). */
export function errorCode(err: unknown): string | undefined {
  if (typeof err === 'object' && err !== null && 'code' in err) {
    const code = (err as { code: unknown }).code;
    return typeof code === 'string' ? code : undefined;
  }
  return undefined;
}

function truncate(s: string, max: number): string {
  return s.length > max ? `${s.slice(0, max)}…` : s;
}
