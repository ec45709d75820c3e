/**
 * Builds the Fastify application around a ServerContext: zod validation and serialisation,
 * OpenAPI (/docs, /docs/json), cookies, the login rate limit, authentication, metrics and the
 * route plugins. No listening here — tests inject requests; startServer() listens.
 */
import fastifyCookie from '@fastify/cookie';
import fastifyRateLimit from '@fastify/rate-limit';
import fastifySwagger from '@fastify/swagger';
import fastifySwaggerUi from '@fastify/swagger-ui';
import Fastify, { type FastifyBaseLogger, type FastifyInstance, type RawServerDefault } from 'fastify';
import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  createJsonSchemaTransform,
  jsonSchemaTransformObject,
  serializerCompiler,
  type ZodTypeProvider,
} from 'fastify-type-provider-zod';
import { API_PREFIX } from '@opsplane/api';
import { installAuth, SESSION_COOKIE } from './auth.js';
import { databaseRateLimitStore } from './rate-limit-store.js';
import { installBrowserGuard } from './browser-guard.js';
import type { ServerContext } from './context.js';
import { installErrorHandling } from './errors.js';
import { frameworkErrorHandler, installInputHygiene } from './input-hygiene.js';
import { installRejectionAudit } from './rejections.js';
import { agentRoutes } from './routes/agents.js';
import { alertRoutes } from './routes/alerts.js';
import { pkiRoutes } from './routes/pki.js';
import { areaRoutes } from './routes/areas.js';
import { auditRoutes } from './routes/audit.js';
import { authRoutes } from './routes/auth.js';
import { batchRoutes } from './routes/batches.js';
import { controllerRoutes } from './routes/controllers.js';
import { deploymentRoutes } from './routes/deployments.js';
import { deviceRoutes } from './routes/devices.js';
import { distributionRoutes } from './routes/distribution.js';
import { systemRoutes } from './routes/system.js';
import { tokenRoutes } from './routes/tokens.js';
import { userRoutes } from './routes/users.js';
import { webRoutes } from './routes/web.js';

export const SERVER_VERSION = '0.1.0';

export type App = FastifyInstance<
  RawServerDefault,
  IncomingMessage,
  ServerResponse,
  FastifyBaseLogger,
  ZodTypeProvider
>;

export async function buildApp(ctx: ServerContext, https?: { cert: string; key: string }): Promise<App> {
  const app = Fastify({
    // HTTPS with the server's certificate (server.tls); typed as the plain server, which it extends.
    ...((https ? { https } : {}) as object),
    loggerInstance: ctx.logger as FastifyBaseLogger,
    trustProxy: ctx.config.server.trust_proxy,
    bodyLimit: ctx.config.server.body_limit,
    // `/api/v1/devices/` is the same resource as `/api/v1/devices`.
    routerOptions: { ignoreTrailingSlash: true },
    // A URL whose path does not decode (e.g. an encoded lone surrogate): our 400, not Fastify's.
    frameworkErrors: frameworkErrorHandler(ctx),
  }).withTypeProvider<ZodTypeProvider>();
  // Every route's validator refuses NUL and lone surrogates before its schema (input-hygiene.ts).
  installInputHygiene(app);
  app.setSerializerCompiler(serializerCompiler);
  installErrorHandling(app);
  installRejectionAudit(app, ctx);
  // Bodies are JSON (or a route's own types) — text/plain is what a cross-site form can send.
  app.removeContentTypeParser('text/plain');

  // Non-encapsulated plugins first: their hooks must run before the auth hook sees a request.
  await app.register(fastifyCookie);
  // Counted in the database: every replica sees the same attempts.
  await app.register(fastifyRateLimit, {
    global: false,
    store: databaseRateLimitStore(ctx.rateCounter),
    skipOnError: true,
  });
  installAuth(app, ctx);
  installBrowserGuard(app, ctx);
  app.addHook('onResponse', async (req, reply) => {
    const route = req.routeOptions.url ?? 'unmatched';
    ctx.metrics.httpRequests.inc({ method: req.method, route, status: String(reply.statusCode) });
    ctx.metrics.httpDuration.observe({ method: req.method, route }, reply.elapsedTime / 1000);
  });

  await app.register(fastifySwagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'Opsplane platform API',
        version: SERVER_VERSION,
        description:
          'Controllers, agents across areas, cross-area batches, areas, devices, users, API tokens and audit of the Opsplane platform server.',
      },
      components: {
        securitySchemes: {
          bearerAuth: { type: 'http', scheme: 'bearer', description: 'API token (opsp_…)' },
          cookieAuth: { type: 'apiKey', in: 'cookie', name: SESSION_COOKIE },
        },
      },
      security: [{ bearerAuth: [] }, { cookieAuth: [] }],
    },
    transform: createJsonSchemaTransform({ skipList: [] }),
    transformObject: jsonSchemaTransformObject,
  });
  await app.register(fastifySwaggerUi, { routePrefix: '/docs' });

  const opts = { ctx };
  await app.register(systemRoutes, opts);
  await app.register(webRoutes, opts);
  await app.register(authRoutes, { ...opts, prefix: API_PREFIX });
  await app.register(userRoutes, { ...opts, prefix: API_PREFIX });
  await app.register(tokenRoutes, { ...opts, prefix: API_PREFIX });
  await app.register(deviceRoutes, { ...opts, prefix: API_PREFIX });
  await app.register(auditRoutes, { ...opts, prefix: API_PREFIX });
  await app.register(controllerRoutes, { ...opts, prefix: API_PREFIX });
  await app.register(agentRoutes, { ...opts, prefix: API_PREFIX });
  await app.register(batchRoutes, { ...opts, prefix: API_PREFIX });
  await app.register(areaRoutes, { ...opts, prefix: API_PREFIX });
  await app.register(deploymentRoutes, { ...opts, prefix: API_PREFIX });
  await app.register(alertRoutes, { ...opts, prefix: API_PREFIX });
  await app.register(pkiRoutes, { ...opts, prefix: API_PREFIX });
  await app.register(distributionRoutes, { ...opts, prefix: API_PREFIX });
  await app.ready();
  return app;
}
