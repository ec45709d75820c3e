/**
 * The one place HTTP errors are shaped: every failure leaves as `{"error":{"code","message"}}`
 * with a fitting status. Bad input of any kind (schema, JSON syntax, size, media type, unknown
 * query parameter) is a 4xx naming what is wrong — never a 500 (the Go controller answered 502
 * for `page_size`).
 */
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { hasZodFastifySchemaValidationErrors, isResponseSerializationError } from 'fastify-type-provider-zod';
import { OpsplaneError, unknownAgentQueryParamMessage } from '@opsplane/models';

function send(reply: FastifyReply, err: OpsplaneError): FastifyReply {
  return reply.code(err.status).type('application/json; charset=utf-8').send(err.toBody());
}

/** Keys of the route's querystring schema, when it is a zod object. */
function knownQueryKeys(req: FastifyRequest): string[] {
  const schema = req.routeOptions.schema?.querystring as { shape?: Record<string, unknown> } | undefined;
  return schema?.shape ? Object.keys(schema.shape) : [];
}

function unknownParamMessage(req: FastifyRequest, key: string): string {
  if (req.routeOptions.url?.endsWith('/agents')) return unknownAgentQueryParamMessage(key);
  const known = knownQueryKeys(req);
  const norm = (s: string) => s.toLowerCase().replace(/[_-]/g, '');
  const suggestion = known.find((k) => norm(k) === norm(key));
  return (
    `unknown query parameter '${key}'.` +
    (suggestion ? ` Did you mean '${suggestion}'?` : '') +
    (known.length ? ` Supported parameters: ${known.join(', ')}.` : '')
  );
}

const CONTEXT_NAMES: Record<string, string> = {
  body: 'request body',
  querystring: 'query string',
  params: 'path',
  headers: 'headers',
};

/** Maps a Fastify-level error (parsing, limits) to an OpsplaneError, or undefined if it is not one. */
function fromFastify(err: FastifyError): OpsplaneError | undefined {
  switch (err.code) {
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return new OpsplaneError('bad_request', `request body is not valid JSON: ${err.message}`);
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new OpsplaneError('bad_request', 'request body is empty but Content-Type is application/json');
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new OpsplaneError(
        'payload_too_large',
        'request body is larger than this controller accepts (http.body_limit)',
      );
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new OpsplaneError('unsupported_media_type', `${err.message}; send application/json`, {
        status: 415,
      });
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new OpsplaneError('bad_request', 'Content-Length does not match the body');
    default:
      break;
  }
  if (err.name === 'SyntaxError' || err instanceof SyntaxError) {
    return new OpsplaneError('bad_request', `request body is not valid JSON: ${err.message}`);
  }
  const status = err.statusCode ?? 500;
  if (status === 429) return new OpsplaneError('rate_limited', err.message);
  if (status >= 400 && status < 500) return new OpsplaneError('bad_request', err.message, { status });
  return undefined;
}

export function installErrorHandlers(app: FastifyInstance): void {
  app.setErrorHandler((error: unknown, req, reply) => {
    if (error instanceof OpsplaneError) return send(reply, error);
    if (hasZodFastifySchemaValidationErrors(error)) {
      const context = (error as { validationContext?: string }).validationContext ?? 'body';
      const unknownKey = error.validation.find((v) => v.keyword === 'unrecognized_keys');
      if (context === 'querystring' && unknownKey) {
        const keys = (unknownKey.params as { keys?: string[] }).keys ?? [];
        return send(
          reply,
          new OpsplaneError('unknown_parameter', unknownParamMessage(req, keys[0] ?? '?'), {
            details: { parameters: keys },
          }),
        );
      }
      const issues = error.validation.map((v) => {
        const path = v.instancePath.replace(/^\//, '').split('/').filter(Boolean).join('.');
        return path ? `${path}: ${v.message ?? 'invalid'}` : (v.message ?? 'invalid');
      });
      return send(
        reply,
        new OpsplaneError(
          'validation_failed',
          `invalid ${CONTEXT_NAMES[context] ?? context}: ${issues.join('; ')}`,
          {
            details: error.validation.map((v) => ({ path: v.instancePath, message: v.message })),
          },
        ),
      );
    }
    if (typeof error === 'object' && error !== null && isResponseSerializationError(error)) {
      req.log.error({ err: error }, 'response does not match its schema');
      return send(
        reply,
        new OpsplaneError('internal', 'internal error: the response did not match its schema'),
      );
    }
    const mapped = fromFastify(error as FastifyError);
    if (mapped) return send(reply, mapped);
    req.log.error({ err: error }, 'unhandled error');
    return send(reply, new OpsplaneError('internal', 'internal error'));
  });

  app.setNotFoundHandler((req, reply) =>
    send(reply, new OpsplaneError('not_found', `no route ${req.method} ${req.url.split('?')[0] ?? ''}`)),
  );
}
