/**
 * The whole HTTP contract of the platform server in one table: every endpoint under /api/v1
 * (`ENDPOINTS`, by resource) and the operational ones at the root (`SYSTEM_ENDPOINTS`). Clients
 * name an endpoint by its route key, `'GET /devices/:id'`; `Route<K>` gives its spec, so a key
 * the server does not serve, or a request or answer of the wrong shape, fails the type check.
 */
import type { EndpointSpec, RequestOf, ResponseOf } from './endpoint.js';
import { authEndpoints, tokenEndpoints, userEndpoints } from './endpoints/accounts.js';
import { alertEndpoints, silenceEndpoints } from './endpoints/alerts.js';
import { agentBundleEndpoints, deploymentEndpoints, rolloutEndpoints } from './endpoints/deployments.js';
import { agentEndpoints, batchEndpoints, controllerEndpoints } from './endpoints/fleet.js';
import { areaEndpoints, auditEndpoints, deviceEndpoints } from './endpoints/inventory.js';
import { artifactEndpoints, policyEndpoints, policyRolloutEndpoints } from './endpoints/distribution.js';
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
  silences: silenceEndpoints,
  artifacts: artifactEndpoints,
  policies: policyEndpoints,
  policyRollouts: policyRolloutEndpoints,
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
  const path = pattern.replace(/:([A-Za-z_][A-Za-z0-9_]*)/g, (_m, name: string) => {
    const v = params[name];
    if (v === undefined) throw new Error(`route ${route}: missing parameter '${name}'`);
    return encodeURIComponent(v);
  });
  return { method, path };
}

// ------------------------------------------------------------------------------ for clients

/** A query as a client writes it: values travel as text, so a free-text field also takes a number. */
export type ClientQuery<Q> = { [P in keyof Q]: Q[P] | (string extends Q[P] ? number : never) };

type WithClientQuery<R> = 'query' extends keyof R
  ? R extends { query?: infer Q }
    ? Omit<R, 'query'> & { query?: ClientQuery<NonNullable<Q>> }
    : R
  : R;

/** What a client passes to call route K: `RouteRequest<K>`, its query written as `ClientQuery`. */
export type ClientRequest<K extends RouteName> = WithClientQuery<RouteRequest<K>>;

/**
 * The request argument(s) of a client call: optional when nothing in the request is required
 * (no path parameter, no body), so `call('GET /controllers')` needs none.
 */
export type RequestArgs<K extends RouteName> =
  object extends ClientRequest<K> ? [request?: ClientRequest<K>] : [request: ClientRequest<K>];

/** Content types route K's body may come in besides JSON (its `consumes`); never when none. */
export type RouteConsumes<K extends RouteName> = Routes[K] extends { consumes: readonly (infer C)[] }
  ? C
  : never;

/** Routes whose answer is not JSON (`produces`, e.g. the deployment event stream). */
export type StreamRouteName = {
  [K in RouteName]: Routes[K] extends { produces: string } ? K : never;
}[RouteName];

/** Routes answering JSON (or nothing, 204): what a client's `call` addresses. */
export type JsonRouteName = Exclude<RouteName, StreamRouteName>;
