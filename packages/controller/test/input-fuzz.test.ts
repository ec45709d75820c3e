/**
 * F4 of issue 15 on the controller: every route of its OpenAPI document (the models' zod
 * schemas) gets a NUL or a lone surrogate in each string its body schema admits, in each query
 * parameter and in each path parameter. Every case is a 400 `invalid_characters`, never a 500.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  HOSTILE_STRINGS,
  HOSTILE_URL_VALUES,
  fillPath,
  pathParamNames,
  startEtcd,
  stringPaths,
  valueAt,
  type EtcdHandle,
} from '@opsplane/test-support';
import type { RunningController } from '../src/index.js';
import { startTestController } from './support/harness.js';

const TOKEN = 'fuzz-api-token-0123456789';

interface Operation {
  parameters?: { in: string; name: string }[];
  requestBody?: { content?: Record<string, { schema?: unknown }> };
}

let etcd: EtcdHandle;
let ctrl: RunningController;

before(async () => {
  etcd = await startEtcd();
  ctrl = await startTestController(etcd, { api_token: TOKEN });
});

after(async () => {
  await ctrl?.stop();
  await etcd?.stop();
});

describe('controller input hygiene fuzz', { timeout: 120_000 }, () => {
  it('refuses NUL and lone surrogates in every body string, query and path parameter of every route: 400, never 500', async () => {
    const doc = (await (await fetch(`${ctrl.url}/docs/json`)).json()) as {
      paths: Record<string, Record<string, Operation>>;
    };
    const cases: { route: string; what: string; method: string; path: string; body?: string }[] = [];
    for (const [pattern, ops] of Object.entries(doc.paths)) {
      for (const [m, op] of Object.entries(ops)) {
        const method = m.toUpperCase();
        const route = `${method} ${pattern}`;
        const base = fillPath(pattern, {}, () => 'agent-1');
        for (const p of pathParamNames(pattern)) {
          for (const h of HOSTILE_URL_VALUES) {
            cases.push({
              route,
              what: `path {${p}} ${h.name}`,
              method,
              path: fillPath(pattern, { [p]: h.value }, () => 'agent-1'),
            });
          }
        }
        const queries = (op.parameters ?? []).filter((p) => p.in === 'query').map((p) => p.name);
        for (const q of queries.length ? queries : ['unknown_param']) {
          for (const h of HOSTILE_URL_VALUES)
            cases.push({ route, what: `query ${q} ${h.name}`, method, path: `${base}?${q}=${h.value}` });
        }
        if (method !== 'GET') {
          const json = op.requestBody?.content?.['application/json']?.schema;
          for (const sp of json ? stringPaths(json, doc) : []) {
            for (const h of HOSTILE_STRINGS) {
              cases.push({
                route,
                what: `body ${sp.join('.') || '(the body)'} ${h.name}`,
                method,
                path: base,
                body: JSON.stringify(valueAt(sp, h.value)),
              });
            }
          }
          cases.push({ route, what: 'body key NUL', method, path: base, body: '{"k\\u0000":"x"}' });
        }
      }
    }
    const failures: string[] = [];
    for (const c of cases) {
      const res = await fetch(ctrl.url + c.path, {
        method: c.method,
        headers: {
          authorization: `Bearer ${TOKEN}`,
          ...(c.body !== undefined ? { 'content-type': 'application/json' } : {}),
        },
        ...(c.body !== undefined ? { body: c.body } : {}),
      });
      const text = await res.text();
      let code: string | undefined;
      try {
        code = (JSON.parse(text) as { error?: { code?: string } }).error?.code;
      } catch {
        code = undefined;
      }
      if (res.status !== 400 || code !== 'invalid_characters') {
        failures.push(`${c.route} — ${c.what}: ${res.status} ${text.slice(0, 200)}`);
      }
    }
    assert.deepEqual(failures, [], `${failures.length} of ${cases.length} cases failed`);
    const routes = new Set(cases.map((c) => c.route));
    assert.ok(routes.size >= 10, `${routes.size} routes`);
    console.log(`# controller: ${cases.length} fuzz cases over ${routes.size} routes`);
  });
});
