/**
 * No string with a NUL or a lone UTF-16 surrogate gets past the edge (see @opsplane/models'
 * text.ts): PostgreSQL and PGlite refuse them — a 500 and a lost audit row before this — and
 * they have no place in names, logs or files.
 *
 * - the schema layer: every route's validator (body, querystring, params, headers) refuses them
 *   before its zod schema runs → 400 `invalid_characters`;
 * - a request-level guard for what no schema sees: the raw URL (`%00`, percent-encoded bytes
 *   that are not UTF-8) and bodies of routes without a body schema;
 * - a URL whose path does not even decode (`%ED%A0%80`) never reaches a route: Fastify's
 *   framework error becomes the same 400, audited when the caller is known.
 */
import { Readable } from 'node:stream';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { validatorCompiler } from 'fastify-type-provider-zod';
import {
  findUnsafeText,
  findUnsafeUrlText,
  InvalidTextError,
  OpsplaneError,
  rejectUnsafeText,
} from '@opsplane/models';
import { identify } from './auth.js';
import type { ServerContext } from './context.js';

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
    // A body left a stream (artifact uploads) is binary: nothing to walk.
    if (
      req.body !== undefined &&
      req.routeOptions.schema?.body === undefined &&
      !(req.body instanceof Readable)
    ) {
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

/** Fastify's `frameworkErrors` (a URL that does not decode): our error body, audited like the rest. */
export function frameworkErrorHandler(c: ServerContext) {
  return (err: Error & { code?: string }, req: FastifyRequest, reply: FastifyReply): void => {
    const e = frameworkError(err, req.url);
    req.log.debug({ code: e.code, framework: err.code }, e.message);
    const send = () =>
      reply
        .status(e.status)
        .type('application/json; charset=utf-8')
        .serializer(JSON.stringify)
        .send(e.toBody());
    if (e.status >= 500 || req.method === 'GET' || req.method === 'HEAD') {
      send();
      return;
    }
    // Only a known caller's attempt is recorded: anonymous noise must not fill the audit log.
    void identify(req, c)
      .then(async (caller) => {
        if (caller) {
          await c.audit.record(caller, {
            action: `${req.method} ${req.url.split('?')[0] ?? ''}`.slice(0, 200),
            result: 'failure',
            details: { error: e.code, message: e.message },
          });
        }
      })
      .catch(() => undefined)
      .finally(send);
  };
}
