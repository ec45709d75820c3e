/**
 * How the contract states an endpoint: method, path (below /api/v1, `:name` for parameters),
 * who may call it, its audit action, its documentation and the zod schemas of its request and
 * responses. The server registers exactly these (and nothing else under /api/v1); the CLI and
 * the web UI address them by their key, `'<METHOD> <path>'`, which the type checker verifies.
 */
import type { z } from 'zod';
import type { Role } from './roles.js';

export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

/** 'public': no login; 'metrics': the metrics token or any user; a role: that role or a higher one. */
export type Access = 'public' | 'metrics' | Role;

export interface EndpointSpec {
  readonly method: HttpMethod;
  readonly path: string;
  readonly access: Access;
  /**
   * 'area': the change concerns areas, and `access` is judged per area by the service (a user
   * may be operator in one area and viewer in another); the edge lets in callers who have the
   * role in at least one area.
   */
  readonly scope?: 'area';
  /** The audit action of a change (also recorded when a caller is denied). */
  readonly action?: string;
  readonly summary: string;
  readonly description?: string;
  readonly tags: readonly string[];
  readonly params?: z.ZodType;
  readonly querystring?: z.ZodType;
  readonly body?: z.ZodType;
  /** Content types the body may come in besides application/json (e.g. text/csv). */
  readonly consumes?: readonly string[];
  /** Answers that are not JSON (e.g. text/event-stream) say so here and have no response schema. */
  readonly produces?: string;
  readonly response: { readonly [status: number]: z.ZodType };
}

/** Declares an endpoint, keeping its literal types (for inference on both sides). */
export function endpoint<const E extends EndpointSpec>(e: E): E {
  return e;
}

/** The key of an endpoint: `'GET /devices/:id'`. */
export type RouteKey<E extends EndpointSpec> = `${E['method']} ${E['path']}`;

type Input<S> = S extends z.ZodType ? z.input<S> : never;
type Output<S> = S extends z.ZodType ? z.output<S> : never;

/** What a client sends: path parameters, query and body, as the schemas accept them. */
export type RequestOf<E extends EndpointSpec> = (E['params'] extends z.ZodType
  ? { params: Input<E['params']> }
  : object) &
  (E['querystring'] extends z.ZodType ? { query?: Input<E['querystring']> } : object) &
  (E['body'] extends z.ZodType ? { body: Input<E['body']> } : object);

/** The successful answer's body (the lowest 2xx status declared). */
export type ResponseOf<E extends EndpointSpec> = Output<
  E['response'][Extract<keyof E['response'], 200 | 201 | 202 | 204>]
>;
