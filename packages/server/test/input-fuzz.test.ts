/**
 * F4 of issue 15 (input hygiene), over real HTTP on PGlite and PostgreSQL: every route of the
 * contract (`allEndpoints()` and the system routes) gets a NUL or a lone surrogate in each string
 * its body schema admits (from the OpenAPI document the server serves, i.e. the contract's zod
 * schemas), in each query parameter and in each path parameter. Every case must be a 400
 * `invalid_characters` — never a 500 — and on routes that change something the refusal must be
 * in the audit log. The server's log must hold no SQL parameters, tokens, token hashes,
 * passwords or query strings afterwards.
 */
import assert from 'node:assert/strict';
import { createHash, randomUUID } from 'node:crypto';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { API_PREFIX, SYSTEM_ENDPOINTS, allEndpoints, type EndpointSpec } from '@opsplane/api';
import {
  HOSTILE_STRINGS,
  HOSTILE_URL_VALUES,
  fillPath,
  pathParamNames,
  stringPaths,
  valueAt,
} from '@opsplane/test-support';
import { DRIVERS, driverSkip, startTestServer, type TestServer } from './helpers.js';

interface Case {
  endpoint: EndpointSpec;
  what: string;
  path: string;
  body?: string;
  contentType?: string;
}

interface OpenApiOperation {
  parameters?: { in: string; name: string }[];
  requestBody?: { content?: Record<string, { schema?: unknown }> };
}

const VALID_PARAM: Record<string, () => string> = {
  id: () => randomUUID(),
  area: () => 'area-1',
  code: () => 'agent-1',
};

function casesFor(
  e: EndpointSpec,
  prefix: string,
  doc: { paths: Record<string, Record<string, OpenApiOperation>> },
): Case[] {
  const openApiPath = (prefix + e.path).replace(/:([A-Za-z_][A-Za-z0-9_]*)/g, '{$1}');
  const op = doc.paths[openApiPath]?.[e.method.toLowerCase()];
  assert.ok(op, `${e.method} ${openApiPath} is in the OpenAPI document`);
  const valid = (name: string) => (VALID_PARAM[name] ?? (() => 'x'))();
  const base = prefix + fillPath(e.path, {}, valid);
  const out: Case[] = [];
  for (const p of pathParamNames(e.path)) {
    for (const h of HOSTILE_URL_VALUES) {
      out.push({
        endpoint: e,
        what: `path :${p} ${h.name}`,
        path: prefix + fillPath(e.path, { [p]: h.value }, valid),
      });
    }
  }
  const queries = (op.parameters ?? []).filter((p) => p.in === 'query').map((p) => p.name);
  for (const q of queries.length ? queries : ['unknown_param']) {
    for (const h of HOSTILE_URL_VALUES)
      out.push({ endpoint: e, what: `query ${q} ${h.name}`, path: `${base}?${q}=${h.value}` });
  }
  const json = op.requestBody?.content?.['application/json']?.schema;
  if (e.method !== 'GET') {
    const paths = json ? stringPaths(json, doc) : [];
    for (const sp of paths) {
      for (const h of HOSTILE_STRINGS) {
        out.push({
          endpoint: e,
          what: `body ${sp.join('.') || '(the body)'} ${h.name}`,
          path: base,
          body: JSON.stringify(valueAt(sp, h.value)),
          contentType: 'application/json',
        });
      }
    }
    // A key, and a body the route has no schema for: the request-level guard.
    out.push({
      endpoint: e,
      what: 'body key NUL',
      path: base,
      body: '{"k\\u0000":"x"}',
      contentType: 'application/json',
    });
    if (!json) {
      out.push({
        endpoint: e,
        what: 'unexpected body NUL',
        path: base,
        body: '{"x":"a\\u0000"}',
        contentType: 'application/json',
      });
    }
    if (e.consumes?.includes('text/csv')) {
      out.push({
        endpoint: e,
        what: 'CSV cell NUL',
        path: base,
        body: 'name,ip,function_area,os,username,password\nweb-9,10.0.0.9,area-1,linux,ro\u0000ot,pw\n',
        contentType: 'text/csv',
      });
    }
  }
  return out;
}

for (const driver of DRIVERS) {
  describe(`input hygiene fuzz (${driver})`, { skip: driverSkip(driver), timeout: 300_000 }, () => {
    let t: TestServer;
    const lines: string[] = [];
    before(async () => {
      const logger = pino(
        { level: 'debug' },
        new Writable({
          write(chunk: Buffer, _enc, done) {
            lines.push(chunk.toString());
            done();
          },
        }),
      );
      t = await startTestServer(driver, {
        logger,
        server: { login_rate_limit: { max: 10_000 }, deploy: { poll_interval: '1h' } },
      });
    });
    after(async () => t?.stop());

    it('refuses NUL and lone surrogates in every body string, query and path parameter of every route: 400, audited, never 500', async () => {
      const doc = (
        await t.call<{ paths: Record<string, Record<string, OpenApiOperation>> }>('GET', '/docs/json', {
          auth: t.users.viewer.token,
        })
      ).json;
      const endpoints: [EndpointSpec, string][] = [
        ...allEndpoints().map((e): [EndpointSpec, string] => [e, API_PREFIX]),
        ...Object.values(SYSTEM_ENDPOINTS).map((e): [EndpointSpec, string] => [e, '']),
      ];
      const cases = endpoints.flatMap(([e, prefix]) => casesFor(e, prefix, doc));
      const failures: string[] = [];
      let audited = 0;
      const token = t.users.admin.token.token as string;
      for (const c of cases) {
        const res = await fetch(t.url + c.path, {
          method: c.endpoint.method,
          headers: {
            authorization: `Bearer ${token}`,
            ...(c.contentType ? { 'content-type': c.contentType } : {}),
          },
          ...(c.body !== undefined ? { body: c.body } : {}),
        });
        const text = await res.text();
        const code = (JSON.parse(text || '{}') as { error?: { code?: string } }).error?.code;
        const label = `${c.endpoint.method} ${c.endpoint.path} — ${c.what}`;
        if (res.status !== 400 || code !== 'invalid_characters') {
          failures.push(`${label}: ${res.status} ${text.slice(0, 200)}`);
          continue;
        }
        if (c.endpoint.method !== 'GET') {
          const { rows } = await t.server.store.audit.list({ page: 1, pageSize: 1 });
          const row = rows[0];
          const details = row?.details as { error?: string } | undefined;
          // Public routes (login) do not look at the token: the refusal is the anonymous caller's.
          const actor = c.endpoint.access === 'public' ? 'anonymous' : 'admin-user';
          if (row?.result !== 'failure' || details?.error !== 'invalid_characters' || row.actor !== actor) {
            failures.push(`${label}: no audit record of the refusal (newest: ${JSON.stringify(row)})`);
          } else audited++;
        }
      }
      assert.deepEqual(failures, [], `${failures.length} of ${cases.length} cases failed`);
      // Every route was exercised; the count is what the report quotes.
      const routes = new Set(cases.map((c) => `${c.endpoint.method} ${c.endpoint.path}`));
      assert.equal(routes.size, endpoints.length);
      assert.ok(cases.length > 300, `${cases.length} cases`);
      console.log(
        `# ${driver}: ${cases.length} fuzz cases over ${routes.size} routes, ${audited} audited refusals`,
      );
    });

    it('puts no secret, token hash, SQL parameter or query string into a log line', async () => {
      const admin = t.users.admin;
      const login = await t.call('POST', '/api/v1/auth/login', {
        body: { username: admin.username, password: admin.password },
      });
      assert.equal(login.status, 200);
      const bad = await t.call('POST', '/api/v1/auth/login', {
        body: { username: admin.username, password: 'wrong-password-123' },
      });
      assert.equal(bad.status, 401);
      const created = await t.call<{ token: string }>('POST', '/api/v1/tokens', {
        auth: admin.token,
        body: { name: 'log-check' },
      });
      assert.equal(created.status, 201);
      const secrets = [
        admin.password,
        'wrong-password-123',
        admin.token.token as string,
        created.json.token,
        createHash('sha256').update(created.json.token).digest('hex'),
        createHash('sha256')
          .update(admin.token.token as string)
          .digest('hex'),
      ];
      const all = lines.join('');
      assert.ok(lines.length > 100, 'the server logged the requests');
      for (const s of secrets) assert.ok(!all.includes(s), `a log line carries a secret (${s.slice(0, 6)}…)`);
      assert.doesNotMatch(all, /\\u0000|\\ud800|\\udc00/i, 'no hostile string is logged');
      assert.doesNotMatch(all, /params: (?!\[redacted\])/, 'no SQL parameters are logged');
      assert.doesNotMatch(all, /"url":"[^"]*\?(?!\[redacted\])/, 'no query string is logged');
    });
  });
}
