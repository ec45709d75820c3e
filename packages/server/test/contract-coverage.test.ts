/**
 * The server against its contract (@opsplane/api), both ways: it registers exactly the
 * contract's endpoints under /api/v1 (and its system endpoints at the root; nothing else but the
 * UI and the API docs), and the auth matrix's table (routes.ts, run by auth.test.ts) has a row
 * for every endpoint with the access the contract states — so a new endpoint cannot go
 * unregistered, registered off the contract, or untested for who may call it. The CLI and the
 * web UI are held to the same contract by the type check (they address endpoints by route key).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { allEndpoints, API_PREFIX, SYSTEM_ENDPOINTS, type Access, type EndpointSpec } from '@opsplane/api';
import { startTestServer, type TestServer } from './helpers.js';
import { ROUTES } from './routes.js';

const key = (method: string, url: string) => `${method} ${url}`;

/** Every endpoint of the contract by `METHOD /full/path` (`:name` parameters, as Fastify has them). */
function contractRoutes(): Map<string, EndpointSpec> {
  const out = new Map<string, EndpointSpec>();
  for (const e of allEndpoints()) out.set(key(e.method, API_PREFIX + e.path), e);
  for (const e of Object.values(SYSTEM_ENDPOINTS)) out.set(key(e.method, e.path), e);
  return out;
}

/**
 * What the server serves besides the contract: the web UI (`/`, `/*`) and the API documentation
 * (`/docs…`; printRoutes shows its wildcard as `/docs*`).
 */
const NOT_API = (method: string, url: string) =>
  method === 'GET' && (url === '/' || url === '/*' || url.startsWith('/docs'));

/**
 * The routes of `printRoutes({ commonPrefix: false })`: a tree whose lines are
 * `<indent>segment (METHODS)`, each segment continuing its parent's path. HEAD is left out
 * (Fastify adds it to every GET).
 */
function parseRouteTree(tree: string): string[] {
  const routes: string[] = [];
  const stack: string[] = [];
  for (const line of tree.split('\n')) {
    const m = /^([\s│├└─]*)(\S.*?)(?: \(([A-Z, ]+)\))?$/.exec(line);
    if (!m) continue;
    const depth = (m[1] ?? '').length / 4;
    stack.length = Math.max(0, depth - 1);
    const path = (stack[stack.length - 1] ?? '') + (m[2] ?? '');
    stack.push(path);
    for (const method of (m[3] ?? '').split(', ').filter(Boolean))
      if (method !== 'HEAD') routes.push(key(method, path.replace(/^\/\//, '/')));
  }
  return routes;
}

const RANK: Record<Access, number> = { public: 0, metrics: 1, viewer: 1, operator: 2, admin: 3 };

describe('the server and its contract', { timeout: 60_000 }, () => {
  let t: TestServer;
  before(async () => {
    t = await startTestServer('pglite');
  });
  after(async () => t?.stop());

  it('registers exactly the endpoints of the contract', () => {
    const app = t.server.app;
    const contract = contractRoutes();
    for (const [k, e] of contract) {
      const url = k.slice(k.indexOf(' ') + 1);
      assert.ok(app.hasRoute({ method: e.method, url }), `${k} is in the contract but not registered`);
    }
    const registered = parseRouteTree(app.printRoutes({ commonPrefix: false }));
    assert.ok(registered.length >= contract.size, `read only ${registered.length} routes`);
    const extras: string[] = [];
    for (const r of registered) {
      const [method = '', url = ''] = r.split(' ');
      if (NOT_API(method, url)) continue;
      assert.ok(app.hasRoute({ method: method as 'GET', url }), `${r} was misread from printRoutes`);
      if (!contract.has(r)) extras.push(r);
    }
    assert.deepEqual(extras, [], 'routes the contract does not have');
    for (const k of contract.keys()) assert.ok(registered.includes(k), `${k} missing from printRoutes`);
  });
});

describe('the auth matrix and the contract', () => {
  it('has a row for every endpoint, one of them with the access the contract states', () => {
    const contract = contractRoutes();
    const problems: string[] = [];
    for (const [k, e] of contract) {
      const rows = ROUTES.filter((r) => key(r.method, r.route) === k);
      if (rows.length === 0) problems.push(`${k}: no row in test/routes.ts`);
      else if (!rows.some((r) => r.access === e.access))
        problems.push(
          `${k}: the contract says ${e.access}, the rows ${rows.map((r) => r.access).join(', ')}`,
        );
      // Further rows may check a narrower request that needs more (another user's id), never less.
      for (const r of rows)
        if (RANK[r.access] < RANK[e.access])
          problems.push(`${k}: a row lets ${r.access} in where the contract says ${e.access}`);
    }
    for (const r of ROUTES) {
      const k = key(r.method, r.route);
      if (!contract.has(k) && !NOT_API(r.method, r.route))
        problems.push(`${k}: a row for a route not in the contract`);
    }
    assert.deepEqual(problems, []);
  });
});
