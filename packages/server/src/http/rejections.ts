/**
 * Requests refused before their handler ran — bad input (schema, unsafe text, content type),
 * a cross-site request, a role too low — leave an audit record when they would have changed
 * something: the route's action with `result: failure` and the error code. Handlers audit
 * their own outcome (AuditTrail.run), so only refusals before the handler are recorded here.
 * Not recorded: unauthenticated callers (401 — except on public routes such as login, which is
 * rate-limited), rate-limited ones (the limiter records login floods), unknown routes.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { actorOf } from './auth.js';
import type { ServerContext } from './context.js';
import { toHttpError } from './errors.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The route's handler was reached (its own audit applies from here on). */
    handlerReached: boolean;
  }
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);
const NOT_AUDITED = new Set([401, 404, 405, 429]);

function auditable(req: FastifyRequest, status: number): boolean {
  if (req.handlerReached || SAFE_METHODS.has(req.method) || req.routeOptions.url === undefined) return false;
  if (NOT_AUDITED.has(status) || status >= 500) return false;
  return req.principal !== null || (req.routeOptions.config.access ?? 'viewer') === 'public';
}

export function installRejectionAudit(app: FastifyInstance, ctx: ServerContext): void {
  app.decorateRequest('handlerReached', false);
  app.addHook('preHandler', async (req) => {
    req.handlerReached = true;
  });
  app.addHook('onError', async (req, _reply, err) => {
    const { status, body } = toHttpError(err, req);
    if (!auditable(req, status)) return;
    const action = req.routeOptions.config.action ?? `${req.method} ${req.routeOptions.url ?? ''}`;
    await ctx.audit.record(actorOf(req), {
      action,
      result: 'failure',
      details: {
        error: body.error.code,
        message: body.error.message.slice(0, 500),
        ...(req.principal ? { role: req.principal.role } : {}),
      },
    });
  });
}
