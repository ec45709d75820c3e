/**
 * No string with a NUL or a lone UTF-16 surrogate gets past the controller's edge (see
 * @opsplane/models' text.ts): every route's validator refuses them before its zod schema, the
 * raw URL is checked for `%00` and percent-encoded bytes that are not UTF-8, and a URL whose path
 * does not decode at all gets the same 400 `invalid_characters` in the usual error body.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { validatorCompiler } from 'fastify-type-provider-zod';
import {
  findUnsafeText,
  findUnsafeUrlText,
  InvalidTextError,
  OpsplaneError,
  rejectUnsafeText,
} from '@opsplane/models';

/** fastify-type-provider-zod's validator compiler, refusing unsafe text first. */
export const safeValidatorCompiler: typeof validatorCompiler = (route) =>
  rejectUnsafeText(route.httpPart ?? 'request', validatorCompiler(route)) as ReturnType<
    typeof validatorCompiler
  >;

export function installInputHygiene(app: FastifyInstance): void {
  app.setValidatorCompiler(safeValidatorCompiler);
  app.addHook('preValidation', async (req) => {
    const inUrl = findUnsafeUrlText(req.url);
    if (inUrl) throw new InvalidTextError(inUrl.location, inUrl);
    if (req.body !== undefined && req.routeOptions.schema?.body === undefined) {
      const inBody = findUnsafeText(req.body);
      if (inBody) throw new InvalidTextError('body', inBody);
    }
  });
}

/** What a Fastify framework error (a request that reaches no route) answers. */
function frameworkError(err: Error & { code?: string }, url: string): OpsplaneError {
  if (err.code === 'FST_ERR_MAX_PARAM_LENGTH') {
    return new OpsplaneError('uri_too_long', 'a path parameter is longer than this server accepts', {
      status: 414,
    });
  }
  if (err.code !== 'FST_ERR_BAD_URL') return new OpsplaneError('internal', 'internal error', { status: 500 });
  const found = findUnsafeUrlText(url);
  return found
    ? new InvalidTextError(found.location, found)
    : new OpsplaneError('bad_request', 'the URL is not valid percent-encoded UTF-8', { status: 400 });
}

/** Fastify's `frameworkErrors` (a URL that does not decode): a 400 in the controller's error body. */
export function frameworkErrorHandler(
  err: Error & { code?: string },
  req: FastifyRequest,
  reply: FastifyReply,
): void {
  const e = frameworkError(err, req.url);
  req.log.debug({ code: e.code, framework: err.code }, e.message);
  void reply.code(e.status).type('application/json; charset=utf-8').send(e.toBody());
}
