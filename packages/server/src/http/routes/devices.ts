/** Devices: list/search, CRUD and bulk import (services/devices.ts). */
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { ENDPOINTS } from '@opsplane/api';
import { principalOf } from '../auth.js';
import type { RouteOptions } from '../context.js';
import { endpointRoute } from '../route.js';

const E = ENDPOINTS.devices;

export const deviceRoutes: FastifyPluginAsyncZod<RouteOptions> = async (app, { ctx }) => {
  const { devices } = ctx;

  app.addContentTypeParser(['text/csv', 'application/csv'], { parseAs: 'string' }, (_req, body, done) =>
    done(null, body),
  );

  app.route({ ...endpointRoute(E.list), handler: async (req) => devices.list(req.query) });
  app.route({ ...endpointRoute(E.get), handler: async (req) => devices.get(req.params.id) });
  app.route({
    ...endpointRoute(E.create),
    handler: async (req, reply) => reply.status(201).send(await devices.create(principalOf(req), req.body)),
  });
  app.route({
    ...endpointRoute(E.update),
    handler: async (req) => devices.update(principalOf(req), req.params.id, req.body),
  });
  app.route({
    ...endpointRoute(E.delete),
    handler: async (req, reply) => {
      await devices.delete(principalOf(req), req.params.id);
      return reply.status(204).send(null);
    },
  });
  app.route({
    ...endpointRoute(E.import),
    bodyLimit: ctx.config.server.import_body_limit,
    handler: async (req) => devices.import(principalOf(req), req.body, req.query.dry_run),
  });
};
