/** Endpoints of alerts: the list, one alert, acknowledging one. */
import { AlertListQuerySchema, AlertListResponseSchema, AlertSchema } from '../alerts.js';
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
