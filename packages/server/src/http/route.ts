/**
 * Registers an endpoint of the contract (@opsplane/api): method, path, access, audit action,
 * documentation and schemas all come from there, so the server cannot drift from what the CLI
 * and the UI were type-checked against. Only the handler is the server's own.
 */
import type { EndpointSpec } from '@opsplane/api';

type Documented = 'summary' | 'description' | 'tags' | 'params' | 'querystring' | 'body' | 'response';

/** The route schema of an endpoint, with the literal zod types kept for handler inference. */
export type RouteSchemaOf<E extends EndpointSpec> = Pick<E, Extract<keyof E, Documented>> & {
  consumes?: string[];
  produces?: string[];
  security?: Array<Record<string, string[]>>;
};

/** `app.route({ ...endpointRoute(ENDPOINTS.devices.get), handler })`. */
export function endpointRoute<const E extends EndpointSpec>(e: E) {
  const schema: Record<string, unknown> = { summary: e.summary, tags: [...e.tags], response: e.response };
  if (e.description !== undefined) schema.description = e.description;
  if (e.params) schema.params = e.params;
  if (e.querystring) schema.querystring = e.querystring;
  if (e.body) schema.body = e.body;
  if (e.consumes) schema.consumes = [...e.consumes, 'application/json'];
  if (e.produces) schema.produces = [e.produces];
  if (e.access === 'public') schema.security = [];
  return {
    method: e.method,
    url: e.path,
    config: {
      access: e.access,
      ...(e.action !== undefined ? { action: e.action } : {}),
      ...(e.scope !== undefined ? { scope: e.scope } : {}),
    },
    schema: schema as RouteSchemaOf<E>,
  };
}
