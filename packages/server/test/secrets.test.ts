/**
 * Credentials are encrypted at rest and write-only on the API. After creating, importing and
 * updating devices with passwords, private keys and passphrases (plus a session, an API token,
 * area credentials from the configuration and from the admin API), the clear values must appear
 * nowhere: not in any byte of the PGlite data
 * directory, not in any PostgreSQL row (row_to_json of every table), not in any API response,
 * not in the logs. Positive controls prove the scans would have seen them.
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { inspect } from 'node:util';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { pino } from 'pino';
import { driverSkip, startTestServer, type TestServer } from './helpers.js';

function secretKit() {
  const pem = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({
    type: 'pkcs8',
    format: 'pem',
  }) as string;
  const pem2 = generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
  const word = (tag: string) => `${tag}-${randomBytes(12).toString('hex')}`;
  return {
    pem,
    pem2,
    passwords: [word('PwCreate'), word('PwCsv'), word('PwPatch'), word('PwJson')],
    passphrase: word('Passphrase'),
    /** Area credentials: from the configuration, then set through the API. */
    configAgentSecret: word('CfgAgentSecret'),
    configControllerToken: word('CfgCtlToken'),
    apiAgentSecret: word('ApiAgentSecret'),
    apiControllerToken: word('ApiCtlToken'),
  };
}

type Kit = ReturnType<typeof secretKit>;

/** The server configuration's `areas:` for a kit (imported into the secret store at start). */
function areasOf(kit: Kit) {
  return {
    'area-conf': { agent_secret: kit.configAgentSecret, controller_token: kit.configControllerToken },
  };
}

/** Distinctive fragments: each secret, and every base64 line of the keys. */
function needlesOf(kit: ReturnType<typeof secretKit>, extra: string[]): string[] {
  const keyLines = [kit.pem, kit.pem2].flatMap((p) =>
    p.split('\n').filter((l) => l.length >= 40 && !l.startsWith('-----')),
  );
  return [
    ...kit.passwords,
    kit.passphrase,
    kit.configAgentSecret,
    kit.configControllerToken,
    kit.apiAgentSecret,
    kit.apiControllerToken,
    ...keyLines,
    ...extra,
  ];
}

class Capture extends Writable {
  text = '';
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: () => void) {
    this.text += chunk.toString();
    cb();
  }
}

interface Exercise {
  needles: string[];
  controls: string[];
  responses: string[];
}

async function exercise(t: TestServer, kit: Kit): Promise<Exercise> {
  const responses: string[] = [];
  let auth = t.users.operator.session;
  const call = async (method: string, path: string, body?: unknown, contentType?: string) => {
    const r = await t.call(method, path, {
      auth,
      ...(body !== undefined ? { body } : {}),
      ...(contentType ? { contentType } : {}),
    });
    responses.push(JSON.stringify([...r.headers]) + r.text);
    assert.ok(r.status < 300, `${method} ${path}: ${r.status} ${r.text}`);
    return r.json as { id: string };
  };
  const name = `secret-host-${randomBytes(4).toString('hex')}`;
  const created = await call('POST', '/api/v1/devices', {
    name,
    ip: '10.77.0.1',
    function_area: 'area-secret',
    os: 'linux',
    login: {
      username: 'deploy',
      password: kit.passwords[0],
      private_key: kit.pem,
      passphrase: kit.passphrase,
    },
  });
  const csv = `name,ip,function_area,os,username,password,private_key\n${name}-csv,10.77.0.2,area-secret,linux,root,${kit.passwords[1]},"${kit.pem2}"\n`;
  await call('POST', '/api/v1/devices/import', csv, 'text/csv');
  await call('PATCH', `/api/v1/devices/${created.id}`, { login: { password: kit.passwords[2] } });
  await call('POST', '/api/v1/devices/import', [
    {
      name: `${name}-json`,
      ip: '10.77.0.3',
      function_area: 'area-secret',
      os: 'windows',
      login: { username: 'Administrator', password: kit.passwords[3] },
    },
  ]);
  await call('GET', '/api/v1/devices?q=secret-host');
  await call('GET', `/api/v1/devices/${created.id}`);
  await call('GET', '/api/v1/audit?action=device.*');
  const token = (await call('POST', '/api/v1/tokens', { name: 'ci' })) as unknown as { token: string };
  const login = await t.call('POST', '/api/v1/auth/login', {
    body: { username: 'admin-user', password: t.users.admin.password },
  });
  const sid = (login.headers.get('set-cookie') ?? '').split(';')[0]?.split('=')[1] ?? '';
  assert.ok(sid.length > 20);
  const areaSecret = await t.server.store.secrets.ensureAreaSecret('area-secret', 'agent_secret');

  // Area credentials: configured ones were imported at start; more through the admin API.
  auth = t.users.admin.session;
  await call('PUT', '/api/v1/areas/area-api/credentials', {
    agent_secret: kit.apiAgentSecret,
    controller_token: kit.apiControllerToken,
  });
  const areas = (await call('GET', '/api/v1/areas')) as unknown as {
    areas: { name: string; has_agent_secret: boolean; has_controller_token: boolean }[];
  };
  for (const name of ['area-conf', 'area-api'])
    assert.deepEqual(
      areas.areas.filter((a) => a.name === name).map((a) => [a.has_agent_secret, a.has_controller_token]),
      [[true, true]],
      `flags of ${name}`,
    );
  await call('GET', '/api/v1/audit?action=area.*');
  await call('GET', '/api/v1/agents');
  await call('GET', '/api/v1/controllers');
  // They are really stored and used (the pools' bearer), just never shown.
  assert.equal(t.server.platform.credentials.controllerToken('area-api'), kit.apiControllerToken);
  assert.equal(t.server.platform.credentials.controllerToken('area-conf'), kit.configControllerToken);
  assert.equal(await t.server.store.secrets.get('area/area-conf', 'agent_secret'), kit.configAgentSecret);
  // A configuration printed or logged carries no credential.
  const printed = JSON.stringify(t.server.config) + inspect(t.server.config, { depth: 10 });
  for (const v of [kit.configAgentSecret, kit.configControllerToken])
    assert.ok(!printed.includes(v), 'credential in a printed configuration');
  assert.match(printed, /area-conf/);

  // The secrets are really stored (decryptable), just not in the clear.
  const s = await t.server.store.devices.loginSecrets(created.id);
  assert.deepEqual([s.password, s.private_key, s.passphrase], [kit.passwords[2], kit.pem, kit.passphrase]);
  const csvDev = await t.server.store.devices.getByName(`${name}-csv`);
  assert.equal((await t.server.store.devices.loginSecrets(csvDev!.id)).private_key, kit.pem2);

  for (const r of responses)
    assert.ok(!/"(password|private_key|passphrase)"/.test(r), 'responses carry no secret fields');
  // The token is legitimately in its creation response; every other response is checked below.
  const tokenResponseIdx = responses.findIndex((r) => r.includes(token.token));
  responses.splice(tokenResponseIdx, 1);
  return {
    needles: needlesOf(kit, [token.token, sid, areaSecret]),
    controls: [name, `${name}-csv`, 'area-secret', 'area-api'],
    responses,
  };
}

async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await filesUnder(p)));
    else if (e.isFile()) out.push(p);
  }
  return out;
}

describe('secrets at rest: PGlite data directory', { timeout: 90_000 }, () => {
  const logs = new Capture();
  const kit = secretKit();
  let t: TestServer;
  before(async () => {
    t = await startTestServer('pglite', { logger: pino({ level: 'trace' }, logs), areas: areasOf(kit) });
  });
  after(async () => t?.env.cleanup());

  it('no clear secret in any file, response or log line', async () => {
    const ex = await exercise(t, kit);
    await t.server.stop(); // flushes and closes PGlite
    const files = await filesUnder(t.env.dataDir);
    assert.ok(files.length > 100, 'scanned the whole data directory');
    const found = new Map<string, string[]>();
    const seenControls = new Set<string>();
    for (const f of files) {
      const bytes = await readFile(f);
      for (const n of ex.needles)
        if (bytes.includes(Buffer.from(n))) found.set(n, [...(found.get(n) ?? []), f]);
      for (const c of ex.controls) if (bytes.includes(Buffer.from(c))) seenControls.add(c);
    }
    assert.deepEqual([...found.entries()], [], 'clear secrets found on disk');
    assert.deepEqual([...seenControls].sort(), [...ex.controls].sort(), 'the scan sees ordinary data');
    for (const n of ex.needles) {
      for (const r of ex.responses) assert.ok(!r.includes(n), 'secret in an API response');
      assert.ok(!logs.text.includes(n), 'secret in the logs');
    }
    assert.ok(logs.text.includes('/api/v1/devices'), 'the logs were captured');
  });
});

describe('secrets at rest: PostgreSQL tables', { timeout: 90_000, skip: driverSkip('postgres') }, () => {
  const logs = new Capture();
  const kit = secretKit();
  let t: TestServer;
  before(async () => {
    t = await startTestServer('postgres', { logger: pino({ level: 'trace' }, logs), areas: areasOf(kit) });
  });
  after(async () => t?.stop());

  it('no clear secret in any row of any table, response or log line', async () => {
    const ex = await exercise(t, kit);
    const client = new pg.Client({ connectionString: t.env.databaseUrl });
    await client.connect();
    let dump = '';
    try {
      const tables = await client.query<{ table_name: string }>(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE'",
      );
      assert.ok(tables.rows.length >= 12);
      for (const { table_name } of tables.rows) {
        const rows = await client.query<{ j: string }>(
          `SELECT row_to_json(t)::text AS j FROM "${table_name}" t`,
        );
        dump += rows.rows.map((r) => r.j).join('\n') + '\n';
      }
      const enc = await client.query<{ c: string }>(
        'SELECT login_password_enc AS c FROM devices WHERE login_password_enc IS NOT NULL',
      );
      assert.ok(enc.rows.length >= 3 && enc.rows.every((r) => /^v1:[0-9a-f]{8}:[A-Za-z0-9+/=]+$/.test(r.c)));
    } finally {
      await client.end();
    }
    for (const n of ex.needles) {
      assert.ok(!dump.includes(n), `clear secret in the database: ${n.slice(0, 12)}…`);
      for (const r of ex.responses) assert.ok(!r.includes(n), 'secret in an API response');
      assert.ok(!logs.text.includes(n), 'secret in the logs');
    }
    for (const c of ex.controls) assert.ok(dump.includes(c), `control ${c} visible`);
  });
});
