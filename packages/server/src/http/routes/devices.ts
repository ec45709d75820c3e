/**
 * Devices: list/search, CRUD and bulk import. Reads are open to every role, changes need an
 * operator. Every change is audited in its own transaction; an import is one transaction, so it
 * applies every valid row or — on a file-level or database error — nothing.
 */
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { NotFoundError } from '@opsplane/models';
import { audited } from '../audit.js';
import type { RouteOptions } from '../context.js';
import {
  DeviceCreateSchema,
  DeviceListQuerySchema,
  DeviceListResponseSchema,
  DeviceSchema,
  DeviceUpdateSchema,
  ErrorBodySchema,
  IdParamsSchema,
  ImportQuerySchema,
  ImportReportSchema,
  commonErrors,
  type ImportReport,
} from '@opsplane/api';
import { readCsv, readJson, validateRows } from '../../services/device-import.js';

const errors = { ...commonErrors, 404: ErrorBodySchema, 409: ErrorBodySchema };

/** Import bodies: CSV text, a JSON array, or {"devices": [...]}; rows are checked one by one. */
const ImportBodySchema = z
  .union([z.string(), z.array(z.unknown()), z.object({ devices: z.array(z.unknown()) })], {
    message: 'expected CSV text (text/csv), a JSON array of devices, or {"devices": [...]}',
  })
  .describe('text/csv with a header line, or application/json');

/** Field names only: values of secret fields never reach the audit log. */
function fieldNames(o: object, prefix = ''): string[] {
  return Object.entries(o).flatMap(([k, v]) =>
    v && typeof v === 'object' && !Array.isArray(v) && k === 'login' ? fieldNames(v, 'login.') : [prefix + k],
  );
}

export const deviceRoutes: FastifyPluginAsyncZod<RouteOptions> = async (app, { ctx }) => {
  const { store } = ctx;

  app.addContentTypeParser(['text/csv', 'application/csv'], { parseAs: 'string' }, (_req, body, done) =>
    done(null, body),
  );

  app.get(
    '/devices',
    {
      config: { access: 'viewer' },
      schema: {
        summary: 'List devices: filter, free-text search (q), sort, paginate',
        tags: ['devices'],
        querystring: DeviceListQuerySchema,
        response: { 200: DeviceListResponseSchema, ...commonErrors },
      },
    },
    async (req) => {
      const { devices, total } = await store.devices.list(req.query);
      return { devices, total, page: req.query.page, pageSize: req.query.pageSize };
    },
  );

  app.get(
    '/devices/:id',
    {
      config: { access: 'viewer' },
      schema: {
        summary: 'One device',
        tags: ['devices'],
        params: IdParamsSchema,
        response: { 200: DeviceSchema, ...errors },
      },
    },
    async (req) => {
      const d = await store.devices.get(req.params.id);
      if (!d) throw new NotFoundError(`device ${req.params.id} not found`);
      return d;
    },
  );

  app.post(
    '/devices',
    {
      config: { access: 'operator', action: 'device.create' },
      schema: {
        summary: 'Create a device (its agent code is generated)',
        tags: ['devices'],
        body: DeviceCreateSchema,
        response: { 201: DeviceSchema, ...errors },
      },
    },
    async (req, reply) => {
      const spec = {
        action: 'device.create',
        targetType: 'device',
        details: { name: req.body.name, fields: fieldNames(req.body) },
      };
      const device = await audited(ctx, req, spec, async (tx, s) => {
        const d = await tx.devices.create(req.body);
        s.targetId = d.id;
        s.details = { ...s.details, agent_code: d.agent_code };
        return d;
      });
      return reply.status(201).send(device);
    },
  );

  app.patch(
    '/devices/:id',
    {
      config: { access: 'operator', action: 'device.update' },
      schema: {
        summary: 'Update a device; login secrets: a string sets, null clears, absent keeps',
        tags: ['devices'],
        params: IdParamsSchema,
        body: DeviceUpdateSchema,
        response: { 200: DeviceSchema, ...errors },
      },
    },
    async (req) => {
      const spec = {
        action: 'device.update',
        targetType: 'device',
        targetId: req.params.id,
        details: { fields: fieldNames(req.body) },
      };
      return audited(ctx, req, spec, async (tx, s) => {
        const { device, changed } = await tx.devices.update(req.params.id, req.body);
        s.details = { name: device.name, changed };
        return device;
      });
    },
  );

  app.delete(
    '/devices/:id',
    {
      config: { access: 'operator', action: 'device.delete' },
      schema: {
        summary: 'Delete a device (its agent code is never issued again)',
        tags: ['devices'],
        params: IdParamsSchema,
        response: { 204: z.null(), ...errors },
      },
    },
    async (req, reply) => {
      await audited(
        ctx,
        req,
        { action: 'device.delete', targetType: 'device', targetId: req.params.id },
        async (tx, s) => {
          const d = await tx.devices.delete(req.params.id);
          if (!d) throw new NotFoundError(`device ${req.params.id} not found`);
          s.details = { name: d.name, agent_code: d.agent_code };
        },
      );
      return reply.status(204).send(null);
    },
  );

  app.post(
    '/devices/import',
    {
      bodyLimit: ctx.config.server.import_body_limit,
      config: { access: 'operator', action: 'device.import' },
      schema: {
        summary: 'Bulk create/update devices from CSV or JSON (matched by name) with a per-row report',
        description:
          'CSV columns: name, ip, function_area, os, arch, login_method, port, username, password, private_key, ' +
          'passphrase, agent_version, metadata (JSON object), metadata.<key>. Empty cells keep the stored value of ' +
          'secrets and metadata. A file-level error (unparsable CSV, unknown or missing columns) changes nothing.',
        tags: ['devices'],
        querystring: ImportQuerySchema,
        body: ImportBodySchema,
        response: { 200: ImportReportSchema, ...errors, 413: ErrorBodySchema },
      },
    },
    async (req): Promise<ImportReport> => {
      const csv = typeof req.body === 'string';
      const raw = csv ? readCsv(req.body as string) : readJson(req.body);
      const { valid, rejected } = validateRows(raw, csv);
      const dryRun = req.query.dry_run;
      const report = (created: number, updated: number): ImportReport => ({
        total: raw.length,
        created,
        updated,
        rejected,
        dry_run: dryRun,
      });
      if (dryRun) {
        const names = new Set(valid.map((v) => v.name));
        const existing = await store.devices.existingNames([...names]);
        return report(valid.length - existing.size, existing.size);
      }
      const spec = {
        action: 'device.import',
        targetType: 'device',
        details: { format: csv ? 'csv' : 'json', rows: raw.length, rejected: rejected.length },
      };
      const { created, updated } = await audited(ctx, req, spec, async (tx, s) => {
        const r = valid.length > 0 ? await tx.devices.upsertMany(valid) : { created: 0, updated: 0 };
        s.details = { ...s.details, ...r };
        return r;
      });
      return report(created, updated);
    },
  );
};
