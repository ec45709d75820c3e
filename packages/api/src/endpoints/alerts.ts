/** Endpoints of alerts (the list, one alert, acknowledging one) and of silences. */
import {
  AlertListQuerySchema,
  AlertListResponseSchema,
  AlertSchema,
  SilenceCreateSchema,
  SilenceListQuerySchema,
  SilenceListResponseSchema,
  SilenceSchema,
} from '../alerts.js';
import { IdParamsSchema, commonErrors, withErrors } from '../common.js';
import { endpoint } from '../endpoint.js';

export const alertEndpoints = {
  list: endpoint({
    method: 'GET',
    path: '/alerts',
    access: 'viewer',
    summary: 'List alerts, newest first; filter by status (firing, resolved), kind and area',
    tags: ['alerts'],
    querystring: AlertListQuerySchema,
    response: { 200: AlertListResponseSchema, ...commonErrors },
  }),
  get: endpoint({
    method: 'GET',
    path: '/alerts/:id',
    access: 'viewer',
    summary: 'One alert',
    tags: ['alerts'],
    params: IdParamsSchema,
    response: { 200: AlertSchema, ...withErrors(404) },
  }),
  acknowledge: endpoint({
    method: 'POST',
    path: '/alerts/:id/ack',
    access: 'operator',
    scope: 'area',
    action: 'alert.ack',
    summary: 'Acknowledge a firing alert (records who and when; the first acknowledgement stays)',
    description:
      'An acknowledgement does not silence or resolve the alert: it resolves when its condition clears. ' +
      'Acknowledging an acknowledged alert again answers it unchanged; a resolved one is 409.',
    tags: ['alerts'],
    params: IdParamsSchema,
    response: { 200: AlertSchema, ...withErrors(404, 409) },
  }),
} as const;

export const silenceEndpoints = {
  list: endpoint({
    method: 'GET',
    path: '/silences',
    access: 'viewer',
    summary: 'Active silences (all=true: also the expired ones), newest first',
    tags: ['alerts'],
    querystring: SilenceListQuerySchema,
    response: { 200: SilenceListResponseSchema, ...commonErrors },
  }),
  create: endpoint({
    method: 'POST',
    path: '/silences',
    access: 'operator',
    scope: 'area',
    action: 'silence.create',
    summary: 'Silence alerts by rule (kind), area and/or agent for a while: no notifications for them',
    description:
      'Matching alerts still fire, resolve and show (with silenced_by); only their webhook notifications are ' +
      'held back. A silence of an area or an agent needs the operator role in that area; one by kind alone, ' +
      'in every area.',
    tags: ['alerts'],
    body: SilenceCreateSchema,
    response: { 201: SilenceSchema, ...commonErrors },
  }),
  expire: endpoint({
    method: 'DELETE',
    path: '/silences/:id',
    access: 'operator',
    scope: 'area',
    action: 'silence.expire',
    summary: 'End a silence now (it stays listed with all=true)',
    tags: ['alerts'],
    params: IdParamsSchema,
    response: { 200: SilenceSchema, ...withErrors(404) },
  }),
} as const;
