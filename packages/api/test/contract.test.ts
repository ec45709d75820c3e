/** The contract itself: unique route keys, well-formed paths, and its types usable by clients. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  allEndpoints,
  routePath,
  SYSTEM_ENDPOINTS,
  type ClientRequest,
  type JsonRouteName,
  type RequestArgs,
  type RouteConsumes,
  type RouteRequest,
  type RouteResponse,
  type Routes,
} from '../src/index.js';

// Compile-time checks: a client's view of two endpoints.
const req: RouteRequest<'PATCH /devices/:id'> = { params: { id: 'x' }, body: { name: 'web-01' } };
type DeviceAnswer = RouteResponse<'GET /devices/:id'>;
const name: DeviceAnswer['name'] | undefined = undefined;
// @ts-expect-error — not an endpoint of the server
type _Missing = Routes['GET /devicez'];
// What clients pass: a query's free-text values may be numbers, its enums stay enums.
const listing: ClientRequest<'GET /alerts'> = { query: { page: 2, kind: 'agent_offline' } };
// @ts-expect-error — not an alert kind
const _badKind: ClientRequest<'GET /alerts'> = { query: { kind: 'agent_gone' } };
const _noRequest: RequestArgs<'GET /controllers'> = [];
// @ts-expect-error — GET /devices/:id needs its parameter
const _noParams: RequestArgs<'GET /devices/:id'> = [];
const _csv: RouteConsumes<'POST /devices/import'> = 'text/csv';
// @ts-expect-error — an event stream is not a JSON route
const _stream: JsonRouteName = 'GET /deployments/:id/events';

describe('contract', () => {
  it('has one endpoint per route key, each documented, changes audited', () => {
    const keys = new Set<string>();
    for (const e of allEndpoints()) {
      const key = `${e.method} ${e.path}`;
      assert.ok(!keys.has(key), `duplicate ${key}`);
      keys.add(key);
      assert.match(e.path, /^\/[a-z0-9:/_-]*$/, key);
      assert.ok(e.summary.length > 0, `${key} has a summary`);
      assert.ok(e.tags.length > 0, `${key} has a tag`);
      if (e.method !== 'GET') assert.ok(e.action, `${key} names its audit action`);
      assert.ok(Object.keys(e.response).length > 0, `${key} declares its answers`);
    }
    assert.ok(keys.size >= 40, `only ${keys.size} endpoints`);
    for (const e of Object.values(SYSTEM_ENDPOINTS)) assert.ok(!keys.has(`${e.method} ${e.path}`));
  });

  it('fills in path parameters, encoded', () => {
    assert.deepEqual(routePath('GET /devices/:id', { id: 'a/b' }), { method: 'GET', path: '/devices/a%2Fb' });
    assert.throws(() => routePath('GET /devices/:id'), /missing parameter 'id'/);
    // Parameter names may hold digits after the first character.
    assert.deepEqual(routePath('GET /artifacts/:sha256', { sha256: 'ab' }), {
      method: 'GET',
      path: '/artifacts/ab',
    });
    assert.ok(req && name === undefined && listing.query?.page === 2);
  });
});
