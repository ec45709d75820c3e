/**
 * Bulk import over HTTP: 5,000 CSV rows with 37 bad ones (every reason reported with its row),
 * re-import updates without duplicates, file-level errors change nothing, JSON bodies and dry runs.
 * Runs on PGlite and PostgreSQL.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { DRIVERS, driverSkip, startTestServer, type Auth, type TestServer } from './helpers.js';
import type { ImportReport } from '@opsplane/api';

const HEADER = 'name,ip,function_area,os,arch,login_method,port,username,password,private_key,metadata.rack';
const KEY = '"-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXk=\n-----END OPENSSH PRIVATE KEY-----"';

interface Expected {
  row: number;
  line: number;
  reason: RegExp;
}

/** 5,000 data rows; 37 of them bad in known ways. */
function buildCsv(): { csv: string; bad: Expected[]; good: number } {
  const lines = [HEADER];
  const bad: Expected[] = [];
  const kinds: { count: number; make: (i: number) => string; reason: RegExp }[] = [
    {
      count: 8,
      make: (i) => `bad-ip-${i},10.0.0.300,area-1,linux,amd64,ssh,22,root,pw,,r1`,
      reason: /^ip: /,
    },
    {
      count: 6,
      make: (i) => `bad-os-${i},10.1.0.1,area-1,solaris,amd64,ssh,22,root,pw,,r1`,
      reason: /^os: /,
    },
    { count: 5, make: () => `,10.1.0.2,area-1,linux,amd64,ssh,22,root,pw,,r1`, reason: /^name: / },
    {
      count: 5,
      make: (i) => `bad-area-${i},10.1.0.3,area/../x,linux,amd64,ssh,22,root,pw,,r1`,
      reason: /^function_area: /,
    },
    {
      count: 5,
      make: (i) => `host-${String(i).padStart(5, '0')},10.1.0.4,area-1,linux,amd64,ssh,22,root,pw,,r1`,
      reason: /duplicate name 'host-\d{5}' \(first at row \d+\)/,
    },
    {
      count: 3,
      make: (i) => `bad-port-${i},10.1.0.5,area-1,linux,amd64,ssh,99999,root,pw,,r1`,
      reason: /^port: /,
    },
    {
      count: 2,
      make: (i) => `bad-method-${i},10.1.0.6,area-1,linux,amd64,winrm,5985,root,pw,,r1`,
      reason: /^login_method: linux devices cannot use winrm/,
    },
    { count: 2, make: (i) => `bad-fields-${i},10.1.0.7,area-1`, reason: /^expected 11 fields, got 3$/ },
    {
      count: 1,
      make: (i) => `bad-user-${i},10.1.0.8,area-1,linux,amd64,ssh,22,,pw,,r1`,
      reason: /^username: /,
    },
  ];
  const total = 5000;
  const badTotal = kinds.reduce((n, k) => n + k.count, 0);
  assert.equal(badTotal, 37);
  // Bad rows at fixed, spread-out positions (after row 100, so duplicates have a first).
  const badAt = new Map<number, { make: (i: number) => string; reason: RegExp; i: number }>();
  let pos = 101;
  for (const k of kinds)
    for (let i = 0; i < k.count; i++, pos += 131) badAt.set(pos, { make: k.make, reason: k.reason, i });
  let good = 0;
  // The line each row starts on: private keys make some rows span three lines.
  let line = 2;
  const push = (text: string) => {
    lines.push(text);
    line += text.split('\n').length;
  };
  for (let row = 1; row <= total; row++) {
    const b = badAt.get(row);
    if (b) {
      bad.push({ row, line, reason: b.reason });
      push(b.make(b.i));
      continue;
    }
    const n = good++;
    const windows = n % 10 === 9;
    const ip = `10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}`;
    const secret = n % 3 === 0 ? `,${KEY}` : `pw-${n},`;
    push(
      windows
        ? `host-${String(n).padStart(5, '0')},${ip},area-${n % 7},windows,amd64,,,Administrator,pw-${n},,r${n % 40}`
        : `host-${String(n).padStart(5, '0')},${ip},area-${n % 7},linux,${n % 2 ? 'arm64' : 'amd64'},ssh,22,root,${secret},r${n % 40}`,
    );
  }
  return { csv: lines.join('\r\n') + '\r\n', bad, good };
}

function importSuite(driver: (typeof DRIVERS)[number]) {
  describe(`device import on ${driver}`, { timeout: 90_000, skip: driverSkip(driver) }, () => {
    let t: TestServer;
    let op: Auth;
    const { csv, bad, good } = buildCsv();

    before(async () => {
      t = await startTestServer(driver);
      op = t.users.operator.session;
    });
    after(async () => t?.stop());

    const count = async () =>
      (await t.call<{ total: number }>('GET', '/api/v1/devices?pageSize=1', { auth: op })).json.total;
    const importCsv = (body: string, query = '') =>
      t.call<ImportReport>('POST', `/api/v1/devices/import${query}`, {
        auth: op,
        body,
        contentType: 'text/csv',
      });

    it(`imports 5,000 rows: ${5000 - 37} created, 37 rejected with row numbers and reasons`, async () => {
      const t0 = performance.now();
      const res = await importCsv(csv);
      const ms = performance.now() - t0;
      assert.equal(res.status, 200, res.text);
      assert.equal(res.json.total, 5000);
      assert.equal(res.json.created, good);
      assert.equal(good, 4963);
      assert.equal(res.json.updated, 0);
      assert.equal(res.json.rejected.length, 37);
      const byRow = new Map(res.json.rejected.map((r) => [r.row, r]));
      for (const b of bad) {
        const r = byRow.get(b.row);
        assert.ok(r, `row ${b.row} should be rejected`);
        assert.match(r.reason, b.reason, `row ${b.row}`);
        assert.equal(r.line, b.line, `line of row ${b.row}`);
      }
      assert.equal(await count(), 4963);
      console.log(`[${driver}] import of 5,000 rows took ${ms.toFixed(0)} ms`);
      assert.ok(ms < 30_000, `import too slow: ${ms} ms`);
    });

    it('re-import updates every row, creates no duplicates, keeps ids and agent codes', async () => {
      const before = await t.call<{ devices: { id: string; agent_code: string; name: string }[] }>(
        'GET',
        '/api/v1/devices?pageSize=500&sort=name',
        { auth: op },
      );
      const res = await importCsv(csv.replace(/,r(\d+)\r\n/g, ',rack-$1\r\n'));
      assert.equal(res.status, 200, res.text);
      assert.deepEqual([res.json.created, res.json.updated, res.json.rejected.length], [0, 4963, 37]);
      assert.equal(await count(), 4963);
      const afterRes = await t.call<{
        devices: { id: string; agent_code: string; name: string; metadata: Record<string, string> }[];
      }>('GET', '/api/v1/devices?pageSize=500&sort=name', { auth: op });
      assert.deepEqual(
        afterRes.json.devices.map((d) => [d.name, d.id, d.agent_code]),
        before.json.devices.map((d) => [d.name, d.id, d.agent_code]),
      );
      assert.match(afterRes.json.devices[0]?.metadata.rack ?? '', /^rack-\d+$/);
      const codes = new Set(
        (await t.server.store.devices.list({ page: 1, pageSize: 5000, sort: 'name', order: 'asc' })).rows.map(
          (d) => d.agentCode,
        ),
      );
      assert.equal(codes.size, 4963, 'agent codes are unique');
    });

    it('a file-level error (broken header, unparsable CSV, bad JSON shape) changes nothing', async () => {
      const auditBefore = (
        await t.call<{ total: number }>('GET', '/api/v1/audit?action=device.import&result=success', {
          auth: op,
        })
      ).json.total;
      const fresh = 'brand-new-1,10.200.0.1,area-1,linux,amd64,ssh,22,root,pw,,r1';
      const cases: [string, string, RegExp][] = [
        [
          'unknown column',
          `${HEADER.replace('function_area', 'fuction_area')}\n${fresh}\n`,
          /unknown column\(s\) 'fuction_area'/,
        ],
        [
          'missing column',
          `name,ip,os,username\nbrand-new-1,10.200.0.1,linux,root\n`,
          /missing required column\(s\) function_area/,
        ],
        ['same field twice', `${HEADER},login_port\n${fresh},22\n`, /set the same field/],
        ['unclosed quote', `${HEADER}\n${fresh}\nbrand-new-2,"10.200.0.2,area-1,linux\n`, /unparsable CSV/],
        ['empty file', '', /empty file/],
      ];
      for (const [what, body, msg] of cases) {
        const res = await importCsv(body);
        assert.equal(res.status, 400, `${what}: ${res.text}`);
        assert.equal(
          (res.json as unknown as { error: { code: string } }).error.code,
          'validation_failed',
          what,
        );
        assert.match(res.text, msg, what);
      }
      const json = await t.call('POST', '/api/v1/devices/import', { auth: op, body: { rows: [] } });
      assert.equal(json.status, 400, json.text);
      assert.equal(await count(), 4963);
      assert.equal(
        (await t.call('GET', '/api/v1/devices?name=brand-new', { auth: op })).json && (await count()),
        4963,
      );
      assert.equal(await t.server.store.devices.getByName('brand-new-1'), undefined);
      const auditAfter = (
        await t.call<{ total: number }>('GET', '/api/v1/audit?action=device.import&result=success', {
          auth: op,
        })
      ).json.total;
      assert.equal(auditAfter, auditBefore);
    });

    it('JSON import (array or {devices}) with per-row report, and dry runs write nothing', async () => {
      const rows = [
        {
          name: 'json-1',
          ip: '10.250.0.1',
          function_area: 'area-j',
          os: 'linux',
          login: { username: 'root', password: 'x' },
        },
        { name: 'json-2', ip: 'nope', function_area: 'area-j', os: 'linux', login: { username: 'root' } },
        'not an object',
        {
          name: 'host-00000',
          ip: '10.250.0.3',
          function_area: 'area-j',
          os: 'linux',
          login: { username: 'root' },
          extra: 1,
        },
        {
          name: 'host-00001',
          ip: '10.250.0.4',
          function_area: 'area-j',
          os: 'linux',
          login: { username: 'admin' },
        },
      ];
      const dry = await t.call<ImportReport>('POST', '/api/v1/devices/import?dry_run=true', {
        auth: op,
        body: rows,
      });
      assert.equal(dry.status, 200, dry.text);
      assert.deepEqual([dry.json.created, dry.json.updated, dry.json.dry_run], [1, 1, true]);
      assert.equal(await t.server.store.devices.getByName('json-1'), undefined);
      const res = await t.call<ImportReport>('POST', '/api/v1/devices/import', {
        auth: op,
        body: { devices: rows },
      });
      assert.equal(res.status, 200, res.text);
      assert.deepEqual([res.json.created, res.json.updated], [1, 1]);
      assert.deepEqual(
        res.json.rejected.map((r) => [r.row, r.name ?? null]),
        [
          [2, 'json-2'],
          [3, null],
          [4, 'host-00000'],
        ],
      );
      assert.match(res.json.rejected[0]?.reason ?? '', /^ip: /);
      assert.match(res.json.rejected[2]?.reason ?? '', /extra/);
      assert.equal((await t.server.store.devices.getByName('host-00001'))?.loginUsername, 'admin');
    });

    it('viewers cannot import', async () => {
      const res = await t.call('POST', '/api/v1/devices/import', {
        auth: t.users.viewer.token,
        body: csv.slice(0, 500),
        contentType: 'text/csv',
      });
      assert.equal(res.status, 403);
    });
  });
}

for (const driver of DRIVERS) importSuite(driver);
