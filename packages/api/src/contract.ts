/**
 * The whole HTTP contract of the platform server in one table: every endpoint under /api/v1
 * (`ENDPOINTS`, by resource) and the operational ones at the root (`SYSTEM_ENDPOINTS`). Clients
 * name an endpoint by its route key, `'GET /devices/:id'`; `Route<K>` gives its spec, so a key
 * the server does not serve, or a request or answer of the wrong shape, fails the type check.
 */
import type { EndpointSpec, RequestOf, ResponseOf } from './endpoint.js';
import { authEndpoints, tokenEndpoints, userEndpoints } from './endpoints/accounts.js';
import { alertEndpoints } from './endpoints/alerts.js';
import { agentBundleEndpoints, deploymentEndpoints, rolloutEndpoints } from './endpoints/deployments.js';
import { agentEndpoints, batchEndpoints, controllerEndpoints } from './endpoints/fleet.js';
import { areaEndpoints, auditEndpoints, deviceEndpoints } from './endpoints/inventory.js';
import { systemEndpoints } from './endpoints/system.js';
import { certificateEndpoints, revocationEndpoints } from './endpoints/pki.js';

export const API_PREFIX = '/api/v1';

export const ENDPOINTS = {
  auth: authEndpoints,
  users: userEndpoints,
  tokens: tokenEndpoints,
  devices: deviceEndpoints,
  areas: areaEndpoints,
  audit: auditEndpoints,
  controllers: controllerEndpoints,
  agents: agentEndpoints,
  batches: batchEndpoints,
  deployments: deploymentEndpoints,
  rollouts: rolloutEndpoints,
  agentBundles: agentBundleEndpoints,
  alerts: alertEndpoints,
  revocations: revocationEndpoints,
  certificates: certificateEndpoints,
} as const;

export const SYSTEM_ENDPOINTS = systemEndpoints;

type Groups = typeof ENDPOINTS;
type AnyEndpoint = { [G in keyof Groups]: Groups[G][keyof Groups[G]] }[keyof Groups];

/** Every endpoint under /api/v1 by its route key, e.g. `Routes['GET /devices/:id']`. */
export type Routes = { [E in AnyEndpoint as `${E['method']} ${E['path']}`]: E };
export type RouteName = keyof Routes;
export type Route<K extends RouteName> = Routes[K];
export type RouteRequest<K extends RouteName> = RequestOf<Routes[K]>;
export type RouteResponse<K extends RouteName> = ResponseOf<Routes[K]>;

/** Every endpoint under /api/v1, flat. */
export function allEndpoints(): EndpointSpec[] {
  return Object.values(ENDPOINTS).flatMap((group) => Object.values(group) as EndpointSpec[]);
}

/**
 * The URL path (below /api/v1) of a route key with its parameters filled in, and the method.
 * Pure string work, so clients that import only types can copy the rule: `:name` is replaced
 * by the URI-encoded parameter.
 */
export function routePath(
  route: RouteName,
  params: Record<string, string> = {},
): { method: string; path: string } {
  const [method, pattern] = route.split(' ') as [string, string];
  const path = pattern.replace(/:([A-Za-z_]+)/g, (_m, name: string) => {
    const v = params[name];
    if (v === undefined) throw new Error(`route ${route}: missing parameter '${name}'`);
    return encodeURIComponent(v);
  });
  return { method, path };
}
