/** Unit tests: crypto, password hashing, credentials, and the CSV reader's edge cases. */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ValidationError } from '@opsplane/models';
import { tempDir } from '@opsplane/test-support';
import { loadMasterKey, parseMasterKey, SecretBox } from '../src/security/crypto.js';
import { hashPassword, needsRehash, verifyPassword } from '../src/security/passwords.js';
import { looksLikeApiToken, newAgentCode, newApiToken } from '../src/security/tokens.js';
import { readCsv, readJson, validateRows } from '../src/services/device-import.js';

describe('SecretBox (AES-256-GCM)', () => {
  const box = new SecretBox(randomBytes(32));
  it('round-trips, with a versioned, key-identified format and fresh IVs', () => {
    const a = box.encrypt('hunter2', 'device:1:password');
    const b = box.encrypt('hunter2', 'device:1:password');
    assert.match(a, new RegExp(`^v1:${box.keyId}:[A-Za-z0-9+/=]+$`));
    assert.notEqual(a, b);
    assert.equal(box.decrypt(a, 'device:1:password'), 'hunter2');
    assert.equal(box.decrypt(box.encrypt('', 'x'), 'x'), '');
    assert.equal(box.decrypt(box.encrypt('ünïcødé 🔑', 'x'), 'x'), 'ünïcødé 🔑');
  });
  it('refuses the wrong binding, tampering, another key, unknown formats', () => {
    const c = box.encrypt('hunter2', 'device:1:password');
    assert.throws(() => box.decrypt(c, 'device:2:password'), /authentication/);
    const raw = Buffer.from(c.split(':')[2] as string, 'base64');
    raw[raw.length - 1] = (raw[raw.length - 1] as number) ^ 1;
    assert.throws(
      () => box.decrypt(`v1:${box.keyId}:${raw.toString('base64')}`, 'device:1:password'),
      /authentication/,
    );
    assert.throws(
      () => new SecretBox(randomBytes(32)).decrypt(c, 'device:1:password'),
      /encrypted with master key/,
    );
    assert.throws(() => box.decrypt('v2:abc:def', 'x'), /unsupported/);
    assert.throws(() => box.decrypt(`v1:${box.keyId}:AAAA`, 'x'), /too short/);
  });
  it('master keys: base64 or hex, exactly 32 bytes; generated file is 0600 and never overwritten', async () => {
    const k = randomBytes(32);
    assert.deepEqual(parseMasterKey(k.toString('base64'), 't'), k);
    assert.deepEqual(parseMasterKey(k.toString('hex') + '\n', 't'), k);
    assert.throws(() => parseMasterKey('c2hvcnQ=', 't'), /32 bytes/);
    const dir = await tempDir();
    try {
      const gen = await loadMasterKey({ dataDir: dir.path, mayGenerate: true });
      assert.equal(gen.source, 'generated');
      assert.equal((await stat(join(dir.path, 'master.key'))).mode & 0o777, 0o600);
      const again = await loadMasterKey({ dataDir: dir.path, mayGenerate: true });
      assert.equal(again.source, 'file');
      assert.equal(again.box.keyId, gen.box.keyId);
      const fromFile = await loadMasterKey({
        file: join(dir.path, 'master.key'),
        dataDir: '/nonexistent',
        mayGenerate: false,
      });
      assert.equal(fromFile.box.keyId, gen.box.keyId);
      const env = await loadMasterKey({
        env: (await readFile(join(dir.path, 'master.key'), 'utf8')).trim(),
        dataDir: dir.path,
        mayGenerate: false,
      });
      assert.equal(env.source, 'env');
      await assert.rejects(
        loadMasterKey({ dataDir: join(dir.path, 'empty'), mayGenerate: false }),
        /no master key/,
      );
      await assert.rejects(
        loadMasterKey({ file: join(dir.path, 'missing.key'), dataDir: dir.path, mayGenerate: true }),
        /does not exist/,
      );
    } finally {
      await dir.cleanup();
    }
  });
});

describe('passwords (scrypt)', () => {
  it('hashes with salt and parameters, verifies, flags weak parameters', async () => {
    const h1 = await hashPassword('s3cret-password');
    const h2 = await hashPassword('s3cret-password');
    assert.notEqual(h1, h2);
    assert.match(h1, /^scrypt\$32768\$8\$1\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+$/);
    assert.equal(await verifyPassword('s3cret-password', h1), true);
    assert.equal(await verifyPassword('s3cret-passwore', h1), false);
    assert.equal(await verifyPassword('x', 'garbage'), false);
    assert.equal(await verifyPassword('x', 'scrypt$99999999$8$1$aa$bb'), false);
    const weak = await hashPassword('p', { N: 1024, r: 8, p: 1 });
    assert.equal(await verifyPassword('p', weak), true);
    assert.equal(needsRehash(weak), true);
    assert.equal(needsRehash(h1), false);
  });
});

describe('credentials', () => {
  it('API tokens and agent codes have their documented shapes', () => {
    const { token, prefix } = newApiToken();
    assert.ok(looksLikeApiToken(token));
    assert.ok(token.startsWith(`opsp_${prefix}`));
    assert.ok(!looksLikeApiToken('opsp_short'));
    const codes = new Set(Array.from({ length: 2000 }, newAgentCode));
    assert.equal(codes.size, 2000);
    for (const c of codes) assert.match(c, /^agt-[a-z2-7]{12}$/);
  });
});

describe('CSV reader', () => {
  it('handles BOM, CRLF, quotes, blank lines, aliases, metadata columns and verbatim secrets', () => {
    const csv =
      '\uFEFFName, IP ,Function_Area,os,login_username,Password,metadata,metadata.rack\r\n' +
      'a-1, 10.0.0.1 ,area-1,linux,root," pass, with comma ","{""env"":""prod""}",r7\r\n' +
      '\r\n' +
      'a-2,10.0.0.2,area-1,windows,Administrator,,,\r\n';
    const rows = readCsv(csv);
    assert.equal(rows.length, 2);
    assert.deepEqual(
      rows.map((r) => [r.row, r.line]),
      [
        [1, 2],
        [2, 4],
      ],
    );
    assert.deepEqual(rows[0]?.value, {
      name: 'a-1',
      ip: '10.0.0.1',
      function_area: 'area-1',
      os: 'linux',
      login: { username: 'root', password: ' pass, with comma ' },
      metadata: { env: 'prod', rack: 'r7' },
    });
    const { valid, rejected } = validateRows(rows, true);
    assert.equal(rejected.length, 0);
    assert.equal(valid[1]?.login.password, undefined, 'empty cell = not given');
  });
  it('rejects rows, not files, for row problems', () => {
    const rows = readCsv(
      'name,ip,function_area,os,username,metadata,port\nx,10.0.0.1,a,linux,root,[1],22\ny,10.0.0.2,a,linux,root,,abc\nz,10.0.0.3\n',
    );
    const { rejected } = validateRows(rows, true);
    assert.deepEqual(
      rejected.map((r) => r.row),
      [1, 2, 3],
    );
    assert.match(rejected[0]?.reason ?? '', /metadata: must be a JSON object/);
    assert.match(rejected[1]?.reason ?? '', /^port: /);
    assert.match(rejected[2]?.reason ?? '', /expected 7 fields, got 2/);
  });
  it('file-level errors are ValidationErrors', () => {
    assert.throws(
      () => readCsv('name,ip\n'),
      (e) => e instanceof ValidationError && /missing required column/.test(e.message),
    );
    assert.throws(
      () => readCsv('name,ip,function_area,os,username,colour\n'),
      /unknown column\(s\) 'colour'/,
    );
    assert.throws(() => readCsv('name,ip,function_area,os,username,port,login_port\n'), /set the same field/);
    assert.throws(() => readCsv('name,ip,function_area,os,username\n"x,1\n'), /unparsable CSV/);
    assert.throws(() => readJson({ nope: 1 }), ValidationError);
    assert.throws(() => readJson('text'), ValidationError);
  });
});
