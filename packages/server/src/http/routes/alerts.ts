/**
 * Alerts: the list (filter by status, kind, area; newest first), one alert, and acknowledging
 * one (operator+, audited). Alerts are raised and resolved by the alert engine only; an
 * acknowledgement records who is on it and changes nothing else (no notification).
 */
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { ConflictError, NotFoundError } from '@opsplane/models';
import { audited } from '../audit.js';
import { principalOf } from '../auth.js';
import type { RouteOptions } from '../context.js';
import {
  AlertListQuerySchema,
  AlertListResponseSchema,
  AlertSchema,
  ErrorBodySchema,
  IdParamsSchema,
  commonErrors,
} from '@opsplane/api';
import { toAlert } from '../../storage/alerts-repo.js';

export const alertRoutes: FastifyPluginAsyncZod<RouteOptions> = async (app, { ctx }) => {
  const { store } = ctx;

  app.get(
    '/alerts',
    {
      config: { access: 'viewer' },
      schema: {
        summary: 'List alerts, newest first; filter by status (firing, resolved), kind and area',
        tags: ['alerts'],
        querystring: AlertListQuerySchema,
        response: { 200: AlertListResponseSchema, ...commonErrors },
      },
    },
    async (req) => {
      const q = req.query;
      const { items, total } = await store.alerts.list(q);
      return { items: items.map(toAlert), total, page: q.page, pageSize: q.pageSize };
    },
  );

  app.get(
    '/alerts/:id',
    {
      config: { access: 'viewer' },
      schema: {
        summary: 'One alert',
        tags: ['alerts'],
        params: IdParamsSchema,
        response: { 200: AlertSchema, 404: ErrorBodySchema, ...commonErrors },
      },
    },
    async (req) => {
      const a = await store.alerts.get(req.params.id);
      if (!a) throw new NotFoundError(`alert ${req.params.id} not found`);
      return toAlert(a);
    },
  );

  app.post(
    '/alerts/:id/ack',
    {
      config: { access: 'operator', action: 'alert.ack' },
      schema: {
        summary: 'Acknowledge a firing alert (records who and when; the first acknowledgement stays)',
        description:
          'An acknowledgement does not silence or resolve the alert: it resolves when its condition clears. ' +
          'Acknowledging an acknowledged alert again answers it unchanged; a resolved one is 409.',
        tags: ['alerts'],
        params: IdParamsSchema,
        response: { 200: AlertSchema, 404: ErrorBodySchema, 409: ErrorBodySchema, ...commonErrors },
      },
    },
    async (req) => {
      const p = principalOf(req);
      const id = req.params.id;
      const row = await audited(
        ctx,
        req,
        { action: 'alert.ack', targetType: 'alert', targetId: id },
        async (tx, spec) => {
          const a = await tx.alerts.get(id);
          if (!a) throw new NotFoundError(`alert ${id} not found`);
          if (a.status !== 'firing')
            throw new ConflictError(`alert ${id} is resolved already; nothing to acknowledge`);
          spec.details = { kind: a.kind, subject: a.subject };
          return (await tx.alerts.acknowledge(id, p.user.username)) ?? a;
        },
      );
      return toAlert(row);
    },
  );
};
