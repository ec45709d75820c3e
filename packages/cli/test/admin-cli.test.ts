/**
 * The operator's administration commands against a real `opsplane server` process (no fleet:
 * none of this needs a controller): users (roles per area, disable/enable, password reset,
 * delete), tokens (expiry, role, area scope, last used, revoke), devices create/get/update/
 * delete with write-only secrets, the audit log with before → after, silences, and usage errors
 * (exit 2) of each command.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { startServerProcess, tempDir, type ServerProcess } from '@opsplane/test-support';

const MAIN = fileURLToPath(new URL('../src/main.js', import.meta.url));
const ADMIN_PASSWORD = 'admin-cli-password-0123';

interface Run {
  code: number | null;
  out: string;
  err: string;
}

describe('opsplane users/tokens/devices/audit/alerts against a real server', { timeout: 120_000 }, () => {
  let dir: { path: string; cleanup: () => Promise<void> };
  let server: ServerProcess;
  let env: NodeJS.ProcessEnv;

  function opsplane(args: string[], extraEnv: NodeJS.ProcessEnv = {}, input?: string): Promise<Run> {
    return new Promise((resolve) => {
      const child = execFile(
        process.execPath,
        [MAIN, ...args],
        { env: { ...env, ...extraEnv }, timeout: 60_000 },
        (err, stdout, stderr) => {
          const code = err ? ((err as { code?: number }).code ?? 1) : 0;
          resolve({ code: typeof code === 'number' ? code : 1, out: stdout, err: stderr });
        },
      );
      child.stdin?.end(input ?? '');
    });
  }
  const ok = async (args: string[], extraEnv: NodeJS.ProcessEnv = {}, input?: string) => {
    const r = await opsplane(args, extraEnv, input);
    assert.equal(r.code, 0, `opsplane ${args.join(' ')}: ${r.out}${r.err}`);
    return r;
  };

  before(async () => {
    dir = await tempDir('opsplane-admin-cli-');
    server = await startServerProcess({
      dir: join(dir.path, 'server'),
      etcdEndpoints: ['http://127.0.0.1:1'],
      adminPassword: ADMIN_PASSWORD,
    });
    env = { ...process.env, OPSPLANE_CONFIG_DIR: join(dir.path, 'cli'), OPSPLANE_LOG_LEVEL: 'warn' };
    for (const k of ['OPSPLANE_SERVER', 'OPSPLANE_TOKEN', 'OPSPLANE_PASSWORD', 'OPSPLANE_NEW_PASSWORD'])
      delete env[k];
    await ok(['login', '--server', server.url, '-u', 'admin'], {}, `${ADMIN_PASSWORD}\n`);
  });
  after(async () => {
    await server?.stop();
    await dir?.cleanup();
  });

  it('users: create with roles per area, update, disable/enable, reset the password, delete', async () => {
    const c = await ok(['users', 'create', 'carol', '--role', 'viewer', '--area-role', 'area-1=operator'], {
      OPSPLANE_NEW_PASSWORD: 'carol-password-1',
    });
    assert.match(c.out, /created user carol \(viewer; area-1=operator\)/);
    const list = await ok(['users', 'list']);
    assert.match(list.out, /carol\s+viewer\s+area-1=operator\s+no\s+-/);
    const upd = await ok(['users', 'update', 'carol', '--area-role', 'area-2=admin,area-1=none']);
    assert.match(upd.out, /carol: viewer; area roles area-2=admin/);
    assert.match((await ok(['users', 'disable', 'carol'])).out, /carol disabled/);
    assert.equal(
      (
        await opsplane(
          ['login', '--server', server.url, '-u', 'carol'],
          { OPSPLANE_CONFIG_DIR: join(dir.path, 'c') },
          'carol-password-1\n',
        )
      ).code,
      1,
    );
    assert.match((await ok(['users', 'enable', 'carol'])).out, /carol enabled/);
    // The new password on stdin (not a terminal), as a script passes it.
    assert.match(
      (await ok(['users', 'reset-password', 'carol'], {}, 'carol-password-2\n')).out,
      /password of carol reset/,
    );
    const carolLogin = await opsplane(
      ['login', '--server', server.url, '-u', 'carol'],
      { OPSPLANE_CONFIG_DIR: join(dir.path, 'carol') },
      'carol-password-2\n',
    );
    assert.equal(carolLogin.code, 0, carolLogin.err);
    const got = JSON.parse((await ok(['users', 'get', 'carol', '--output', 'json'])).out) as {
      area_roles: Record<string, string>;
      last_login_at: string | null;
    };
    assert.deepEqual(got.area_roles, { 'area-2': 'admin' });
    assert.ok(got.last_login_at);
    const usage = await opsplane(['users', 'update', 'carol', '--area-role', 'area-1']);
    assert.equal(usage.code, 2);
    assert.match(usage.err, /area=role/);
    assert.equal((await opsplane(['users', 'frob'])).code, 2);
  });

  it('tokens: created with expiry, role and scope (secret once), listed with last use, revoked', async () => {
    const c = await ok([
      'tokens',
      'create',
      'ci-deploy',
      '--role',
      'operator',
      '--expires',
      '720h',
      '--areas',
      'area-1',
    ]);
    const secret = c.out.trim();
    assert.match(secret, /^opsp_/);
    assert.match(c.err, /operator, areas area-1, expires .*: the secret above is shown only now/);
    const me = await ok(['devices', 'list'], { OPSPLANE_TOKEN: secret, OPSPLANE_SERVER: server.url });
    assert.match(me.out, /device\(s\)/);
    const list = await ok(['tokens', 'list']);
    assert.match(list.out, /ci-deploy\s+admin\s+operator\s+area-1\s+active\s+\S+\s+\d+s ago/);
    assert.ok(!list.out.includes(secret), 'never listed');
    const id = (
      JSON.parse((await ok(['tokens', 'list', '-o', 'json'])).out) as {
        tokens: { id: string; name: string }[];
      }
    ).tokens.find((t) => t.name === 'ci-deploy')?.id as string;
    await ok(['tokens', 'revoke', id]);
    const after = await opsplane(['devices', 'list'], {
      OPSPLANE_TOKEN: secret,
      OPSPLANE_SERVER: server.url,
    });
    assert.equal(after.code, 1);
    assert.match(after.err, /opsplane login/);
    assert.equal((await opsplane(['tokens', 'create'])).code, 2);
  });

  it('devices: create, get, update, delete — secrets go in and never come out', async () => {
    const c = await ok(
      [
        'devices',
        'create',
        'edge-9',
        '--ip',
        '10.5.0.9',
        '--function-area',
        'area-1',
        '--os',
        'linux',
        '--username',
        'deploy',
        '--metadata',
        'role=edge,env=lab',
      ],
      { OPSPLANE_DEVICE_PASSWORD: 'dev-secret-pw-1' },
    );
    assert.match(c.out, /created device edge-9 in area-1; agent code agt-\S+; secrets set: password/);
    const got = await ok(['devices', 'get', 'edge-9']);
    assert.match(got.out, /login\s+ssh deploy@10\.5\.0\.9:22/);
    assert.match(got.out, /metadata\s+env=lab, role=edge/);
    assert.ok(!got.out.includes('dev-secret-pw-1'));
    const u = await ok([
      'devices',
      'update',
      'edge-9',
      '--ip',
      '10.5.0.10',
      '--port',
      '2222',
      '--clear-password',
    ]);
    assert.match(u.out, /updated device edge-9; secrets set: none/);
    const json = JSON.parse((await ok(['devices', 'get', 'edge-9', '--json'])).out) as {
      ip: string;
      login: { port: number; has_password: boolean };
    };
    assert.deepEqual([json.ip, json.login.port, json.login.has_password], ['10.5.0.10', 2222, false]);
    assert.equal((await opsplane(['devices', 'create', 'x'])).code, 2, 'create needs --ip …');
    assert.equal((await opsplane(['devices', 'update', 'edge-9'])).code, 2, 'nothing to change');
    await ok(['devices', 'delete', 'edge-9']);
    assert.equal((await opsplane(['devices', 'get', 'edge-9'])).code, 1);
  });

  it('audit: who changed what, before → after, with filters; secrets redacted', async () => {
    const r = await ok(['audit', '--action', 'device.*', '--since', '1h']);
    assert.match(r.out, /admin\s+127\.0\.0\.1\s+device\.update\s+success\s+device \S+/);
    assert.match(r.out, /^\s+ip: 10\.5\.0\.9 → 10\.5\.0\.10$/m);
    assert.match(r.out, /^\s+login\.port: 22 → 2222$/m);
    assert.match(r.out, /^\s+login\.password: \[redacted\] → ∅$/m);
    assert.ok(!r.out.includes('dev-secret-pw-1'));
    const users = await ok(['audit', '--target-type', 'user', '--action', 'user.update', '-o', 'json']);
    const entries = (JSON.parse(users.out) as { entries: { changes: { field: string }[] }[] }).entries;
    assert.ok(entries.some((e) => e.changes.some((c) => c.field === 'area_roles.area-2')));
    const q = await ok(['audit', '--q', 'edge-9', '--result', 'success']);
    assert.match(q.out, /device\.delete/);
    assert.equal((await opsplane(['audit', '--since', 'yesterday'])).code, 2);
    assert.equal((await opsplane(['audit', '--result', 'maybe'])).code, 2);
  });

  it('alerts: silences by rule and area, listed, ended; an empty list without a fleet', async () => {
    const s = await ok([
      'alerts',
      'silence',
      '--kind',
      'package_unhealthy',
      '--area',
      'area-1',
      '--for',
      '2h',
    ]);
    const id = /silence (\S+): kind=package_unhealthy area=area-1 until/.exec(s.out)?.[1];
    assert.ok(id, s.out);
    assert.match(
      (await ok(['alerts', 'silences'])).out,
      new RegExp(`${id}\\s+kind=package_unhealthy area=area-1`),
    );
    assert.match((await ok(['alerts', 'list', '--status', 'all'])).out, /0 alert\(s\)/);
    await ok(['alerts', 'unsilence', id as string]);
    assert.match((await ok(['alerts', 'silences', '--all'])).out, new RegExp(`${id}.*\\sno\\s`));
    assert.equal((await opsplane(['alerts', 'list', '--kind', 'nope'])).code, 2);
  });
});
