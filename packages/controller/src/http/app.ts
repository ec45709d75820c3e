/**
 * Builds the controller's Fastify instance: zod validation/serialization (the models' schemas
 * are the single source of truth for validation, responses and OpenAPI), one error handler,
 * OpenAPI JSON at /docs/json and the UI at /docs, per-IP rate limiting, the optional bearer
 * token on /api/v1, request-duration metrics, and the route plugins.
 */
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import rateLimit from '@fastify/rate-limit';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import { jsonSchemaTransform, serializerCompiler, type ZodTypeProvider } from 'fastify-type-provider-zod';
import { OpsplaneError } from '@opsplane/models';
import { pathOnly, withSafeSerializers, type Logger } from '@opsplane/kit';
import type { ControllerContext } from '../context.js';
import { agentArtifactRoutes } from '../routes/agent-artifacts.js';
import { agentDetailRoutes } from '../routes/agent-details.js';
import { artifactRoutes } from '../routes/artifacts.js';
import { agentRoutes } from '../routes/agents.js';
import { batchRoutes } from '../routes/batch.js';
import { opsRoutes } from '../routes/ops.js';
import { statusRoutes } from '../routes/status.js';
import { allowSources, requireBearerToken } from './auth.js';
import { installErrorHandlers } from './error-handler.js';
import { frameworkErrorHandler, installInputHygiene } from './input-hygiene.js';

export interface BuildAppOptions {
  /**
   * The token-less legacy listener (legacy.ts): the guide's routes only (no docs, /metrics or
   * /healthz), no bearer token, and only for sources in `allow` (empty = any).
   */
  legacy?: { allow: readonly string[] };
  /** HTTPS and wss with these TLS options (controller-tls.ts); plain HTTP without. */
  https?: Record<string, unknown>;
}

export async function buildApp(
  ctx: ControllerContext,
  logger: Logger,
  opts: BuildAppOptions = {},
): Promise<FastifyInstance> {
  const { config } = ctx;
  const legacy = opts.legacy;
  const app = Fastify({
    // HTTPS and wss when the controller has a certificate (controller-tls.ts).
    ...(opts.https ? { https: opts.https } : {}),
    // pino's Logger and Fastify's logger type differ only in typing details.
    // No query strings, SQL parameters or secret-looking values in log lines.
    loggerInstance: withSafeSerializers(logger) as FastifyBaseLogger,
    // Per-request info logs would drown everything else at fleet scale; see the onResponse hook.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: config.http.bodyLimitBytes,
    trustProxy: config.http.trustProxy,
    // Idle keep-alive sockets must not hold up a graceful shutdown.
    forceCloseConnections: 'idle',
    routerOptions: { ignoreTrailingSlash: true },
    // A URL whose path does not decode (e.g. an encoded lone surrogate): our 400, not Fastify's.
    frameworkErrors: frameworkErrorHandler,
  }).withTypeProvider<ZodTypeProvider>();
  // Every route's validator refuses NUL and lone surrogates before its schema (input-hygiene.ts).
  installInputHygiene(app);
  app.setSerializerCompiler(serializerCompiler);
  installErrorHandlers(app);
  if (legacy) allowSources(app, legacy.allow);

  app.addHook('onResponse', async (req, reply) => {
    const route = req.routeOptions.url ?? 'unmatched';
    ctx.metrics.httpDuration.observe(
      { method: req.method, route, status_code: String(reply.statusCode) },
      reply.elapsedTime / 1000,
    );
    req.log.debug(
      { method: req.method, url: pathOnly(req.url), status: reply.statusCode, ms: reply.elapsedTime },
      'request',
    );
  });

  if (config.http.rateLimit.max > 0) {
    await app.register(rateLimit, {
      global: true,
      max: config.http.rateLimit.max,
      timeWindow: config.http.rateLimit.windowMs,
      errorResponseBuilder: (_req, rl) =>
        new OpsplaneError(
          'rate_limited',
          `rate limit exceeded: at most ${rl.max} requests per ${rl.after}; retry later`,
        ),
    });
  }

  if (!legacy) await registerDocsAndOps(app, ctx);
  await app.register(
    async (api) => {
      // The API speaks JSON only: a text/plain body is a 415, not a string the schema then rejects.
      api.removeContentTypeParser('text/plain');
      if (config.apiToken && !legacy) requireBearerToken(api, config.apiToken);
      await api.register(statusRoutes, { ctx });
      await api.register(agentRoutes, { ctx });
      await api.register(agentDetailRoutes, { ctx });
      await api.register(batchRoutes, { ctx });
      // Distribution is Opsplane's own: not on the guide's token-less legacy listener.
      if (!legacy) await api.register(artifactRoutes, { ctx });
    },
    { prefix: '/api/v1' },
  );
  // Agents download with their own credentials (agent-auth.ts), outside the api_token scope.
  if (!legacy) await app.register(agentArtifactRoutes, { ctx });
  return app;
}

async function registerDocsAndOps(app: FastifyInstance, ctx: ControllerContext): Promise<void> {
  const { config } = ctx;
  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'Opsplane controller API',
        description:
          'Controller of one area: lists the agents connected to it and operates on them (SYSTEM.md §2). ' +
          'Errors are always {"error":{"code","message"}}.',
        version: ctx.version,
      },
      components: {
        securitySchemes: {
          bearer: { type: 'http', scheme: 'bearer', description: 'api_token, when configured' },
        },
      },
      ...(config.apiToken ? { security: [{ bearer: [] }] } : {}),
    },
    transform: jsonSchemaTransform,
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });

  await app.register(opsRoutes, { ctx });
}
