/**
 * The one place errors become responses: `{"error":{"code","message"}}` with a fitting status.
 * Typed OpsplaneErrors keep their code; zod validation names the field; bad JSON is 400, too
 * large 413; anything unexpected is a 500 whose details go to the log, not to the client.
 */
import type { FastifyError, FastifyInstance, FastifyRequest } from 'fastify';
import { hasZodFastifySchemaValidationErrors } from 'fastify-type-provider-zod';
import { type ErrorBody, OpsplaneError } from '@opsplane/models';
import {
  DATABASE_RETRY_AFTER_S,
  DatabaseUnavailableError,
  isDatabaseUnavailable,
} from '../storage/database.js';

const CODE_BY_STATUS: Record<number, string> = {
  400: 'bad_request',
  401: 'unauthorized',
  403: 'forbidden',
  404: 'not_found',
  405: 'method_not_allowed',
  406: 'not_acceptable',
  409: 'conflict',
  413: 'payload_too_large',
  415: 'unsupported_media_type',
  429: 'rate_limited',
};

export function errorBody(code: string, message: string, details?: unknown): ErrorBody {
  return { error: { code, message, ...(details !== undefined ? { details } : {}) } };
}

/** Query keys the route's zod schema knows, for "did you mean" on unknown parameters. */
function knownQueryKeys(req: FastifyRequest): string[] {
  const schema = req.routeOptions.schema?.querystring as { shape?: Record<string, unknown> } | undefined;
  return schema?.shape ? Object.keys(schema.shape) : [];
}

function unknownParamMessage(param: string, known: readonly string[]): string {
  const norm = (s: string) => s.toLowerCase().replace(/[_-]/g, '');
  const suggestion = known.find((k) => norm(k) === norm(param));
  return (
    `unknown query parameter '${param}'.` +
    (suggestion ? ` Did you mean '${suggestion}'?` : '') +
    (known.length ? ` Supported parameters: ${known.join(', ')}.` : '')
  );
}

export function toHttpError(
  err: unknown,
  req: FastifyRequest,
): { status: number; body: ErrorBody; retryAfterS?: number } {
  if (isDatabaseUnavailable(err)) {
    const e = err instanceof DatabaseUnavailableError ? err : new DatabaseUnavailableError(err);
    return { status: 503, body: e.toBody(), retryAfterS: DATABASE_RETRY_AFTER_S };
  }
  if (hasZodFastifySchemaValidationErrors(err)) {
    const where = (err as { validationContext?: string }).validationContext ?? 'request';
    const first = err.validation[0];
    if (where === 'querystring' && first?.keyword === 'unrecognized_keys') {
      const keys = (first.params as { keys?: string[] }).keys ?? [];
      return {
        status: 400,
        body: errorBody('unknown_parameter', unknownParamMessage(keys[0] ?? '?', knownQueryKeys(req))),
      };
    }
    const message = err.validation
      .map((v) => {
        const path = v.instancePath.split('/').filter(Boolean).join('.');
        return `${path ? `${where}.${path}` : where}: ${v.message}`;
      })
      .join('; ');
    return { status: 400, body: errorBody('validation_failed', message) };
  }
  if (err instanceof OpsplaneError) return { status: err.status, body: err.toBody() };
  const fe = err as Partial<FastifyError>;
  switch (fe.code) {
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return { status: 400, body: errorBody('bad_request', `invalid JSON body: ${fe.message ?? ''}`) };
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return { status: 400, body: errorBody('bad_request', 'empty body with content-type application/json') };
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return { status: 413, body: errorBody('payload_too_large', 'request body too large') };
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return {
        status: 415,
        body: errorBody(
          'unsupported_media_type',
          `unsupported content-type '${req.headers['content-type'] ?? ''}'`,
        ),
      };
  }
  if (err instanceof SyntaxError && fe.statusCode === 400) {
    return { status: 400, body: errorBody('bad_request', `invalid JSON body: ${err.message}`) };
  }
  const status = fe.statusCode;
  if (typeof status === 'number' && status >= 400 && status < 500) {
    return { status, body: errorBody(CODE_BY_STATUS[status] ?? 'bad_request', fe.message ?? 'bad request') };
  }
  return { status: 500, body: errorBody('internal', 'internal server error') };
}

export function installErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler((err, req, reply) => {
    const { status, body, retryAfterS } = toHttpError(err, req);
    if (status === 503)
      req.log.warn({ code: body.error.code, err: (err as Error).message }, body.error.message);
    else if (status >= 500) req.log.error({ err }, 'request failed');
    else req.log.debug({ code: body.error.code, status }, body.error.message);
    if (retryAfterS !== undefined) reply.header('retry-after', String(retryAfterS));
    // Send the body as-is: the route's response schema is for its success shape.
    return reply.status(status).type('application/json; charset=utf-8').serializer(JSON.stringify).send(body);
  });
  app.setNotFoundHandler((req, reply) =>
    reply
      .status(404)
      .type('application/json; charset=utf-8')
      .serializer(JSON.stringify)
      .send(errorBody('not_found', `route ${req.method} ${req.url.split('?')[0]} not found`)),
  );
}
