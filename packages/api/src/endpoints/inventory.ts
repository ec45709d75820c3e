/** Endpoints of devices (CRUD, bulk import), areas and their credentials, and the audit log. */
import { z } from 'zod';
import { AuditListResponseSchema, AuditQuerySchema } from '../audit.js';
import { ErrorBodySchema, IdParamsSchema, commonErrors, withErrors } from '../common.js';
import {
  DeviceCreateSchema,
  DeviceListQuerySchema,
  DeviceListResponseSchema,
  DeviceSchema,
  DeviceUpdateSchema,
  ImportBodySchema,
  ImportQuerySchema,
  ImportReportSchema,
} from '../devices.js';
import { endpoint } from '../endpoint.js';
import {
  AreaCredentialsUpdateSchema,
  AreaListResponseSchema,
  AreaParamsSchema,
  AreaSchema,
} from '../platform.js';

const deviceErrors = withErrors(404, 409);

export const deviceEndpoints = {
  list: endpoint({
    method: 'GET',
    path: '/devices',
    access: 'viewer',
    summary: 'List devices: filter, free-text search (q), sort, paginate',
    tags: ['devices'],
    querystring: DeviceListQuerySchema,
    response: { 200: DeviceListResponseSchema, ...commonErrors },
  }),
  get: endpoint({
    method: 'GET',
    path: '/devices/:id',
    access: 'viewer',
    summary: 'One device',
    tags: ['devices'],
    params: IdParamsSchema,
    response: { 200: DeviceSchema, ...deviceErrors },
  }),
  create: endpoint({
    method: 'POST',
    path: '/devices',
    access: 'operator',
    scope: 'area',
    action: 'device.create',
    summary: 'Create a device (its agent code is generated)',
    tags: ['devices'],
    body: DeviceCreateSchema,
    response: { 201: DeviceSchema, ...deviceErrors },
  }),
  update: endpoint({
    method: 'PATCH',
    path: '/devices/:id',
    access: 'operator',
    scope: 'area',
    action: 'device.update',
    summary: 'Update a device; login secrets: a string sets, null clears, absent keeps',
    description:
      'Login secrets are bound to their target: a change of ip, login.port, login.username, login_method or ' +
      'the jump_host / winrm_* metadata drops the stored secrets this request does not set again (the answer ' +
      'shows has_password etc. false; the audit record names them). The SSH host key stays pinned to the ' +
      'device: a different key at the new address is refused until a deployment accepts it.',
    tags: ['devices'],
    params: IdParamsSchema,
    body: DeviceUpdateSchema,
    response: { 200: DeviceSchema, ...deviceErrors },
  }),
  delete: endpoint({
    method: 'DELETE',
    path: '/devices/:id',
    access: 'operator',
    scope: 'area',
    action: 'device.delete',
    summary: 'Delete a device (its agent code is never issued again)',
    tags: ['devices'],
    params: IdParamsSchema,
    response: { 204: z.null(), ...deviceErrors },
  }),
  import: endpoint({
    method: 'POST',
    path: '/devices/import',
    access: 'operator',
    scope: 'area',
    action: 'device.import',
    summary: 'Bulk create/update devices from CSV or JSON (matched by name) with a per-row report',
    description:
      'CSV columns: name, ip, function_area, os, arch, login_method, port, username, password, private_key, ' +
      'passphrase, agent_version, metadata (JSON object), metadata.<key>. Empty cells keep the stored value of ' +
      'secrets and metadata — except that a row changing where secrets would be sent (ip, port, username, ' +
      'login_method, jump_host / winrm_* metadata) drops those it does not give (listed in secrets_dropped). ' +
      'A file-level error (unparsable CSV, unknown or missing columns) changes nothing; ' +
      'the import is one transaction.',
    tags: ['devices'],
    consumes: ['text/csv', 'application/csv'],
    querystring: ImportQuerySchema,
    body: ImportBodySchema,
    response: { 200: ImportReportSchema, ...deviceErrors, 413: ErrorBodySchema },
  }),
} as const;

export const areaEndpoints = {
  list: endpoint({
    method: 'GET',
    path: '/areas',
    access: 'viewer',
    summary: 'Areas with their controllers, devices, agents and which credentials are set',
    description: 'Credentials are never returned, only has_agent_secret / has_controller_token.',
    tags: ['areas'],
    response: { 200: AreaListResponseSchema, ...commonErrors },
  }),
  setCredentials: endpoint({
    method: 'PUT',
    path: '/areas/:area/credentials',
    access: 'admin',
    scope: 'area',
    action: 'area.credentials',
    summary: "Set or remove an area's agent secret and controller API token (write-only)",
    description:
      'A string sets, null removes, an absent field keeps. Values set in the server configuration ' +
      '(`areas:` / OPSPLANE_AREAS_FILE) are imported again at the next start and win.',
    tags: ['areas'],
    params: AreaParamsSchema,
    body: AreaCredentialsUpdateSchema,
    response: { 200: AreaSchema, ...commonErrors },
  }),
} as const;

export const auditEndpoints = {
  list: endpoint({
    method: 'GET',
    path: '/audit',
    access: 'viewer',
    summary: 'Audit log, newest first; filter by actor, action, target, result and time',
    tags: ['audit'],
    querystring: AuditQuerySchema,
    response: { 200: AuditListResponseSchema, ...commonErrors },
  }),
} as const;
