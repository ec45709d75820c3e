/**
 * The storage layer on both drivers — the same test body runs against embedded PGlite and a
 * real PostgreSQL database: migrations, schema agreement, and every repository.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { getTableConfig } from 'drizzle-orm/pg-core';
import { sql } from 'drizzle-orm';
import { ConflictError, NotFoundError, ValidationError } from '@opsplane/models';
import { openStore, MIGRATIONS, migrate, type DatabaseHandle, type Store } from '../src/index.js';
import { queryRows } from '../src/storage/database.js';
import { ALL_TABLES } from '../src/storage/schema.js';
import { MigrationError } from '../src/storage/migrations.js';
import { DeviceCreateSchema, type DeviceCreateInput } from '@opsplane/api';
import { AuditTrail } from '../src/services/audit-trail.js';
import { systemActor } from '../src/services/access.js';
import { DeviceService, deviceInput } from '../src/services/devices.js';
import { DRIVERS, TEST_MASTER_KEY, driverSkip, testEnv, testLogger, type TestEnv } from './helpers.js';

const actor = systemActor('storage-test');

const PEM =
  '-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n';

const dev = (n: number, extra: Partial<DeviceCreateInput> = {}) =>
  DeviceCreateSchema.parse({
    name: `node-${String(n).padStart(3, '0')}`,
    ip: `192.168.${Math.floor(n / 250)}.${(n % 250) + 1}`,
    function_area: n % 2 ? 'area-odd' : 'area-even',
    os: 'linux',
    login: { username: 'root', password: `secret-${n}` },
    ...extra,
  });

function storageSuite(driver: (typeof DRIVERS)[number]) {
  describe(`storage on ${driver}`, { timeout: 90_000, skip: driverSkip(driver) }, () => {
    let env: TestEnv;
    let store: Store;
    let database: DatabaseHandle;
    let devices: DeviceService;

    before(async () => {
      env = await testEnv(driver);
      ({ store, database } = await openStore(env.config, testLogger(), { masterKey: TEST_MASTER_KEY }));
      devices = new DeviceService(store, new AuditTrail(store, testLogger()));
    });
    after(async () => {
      await database?.close();
      await env?.cleanup();
    });

    it('migrations are recorded once, idempotent and concurrent-safe, and guard against drift', async () => {
      const rows = await queryRows<{ version: number; checksum: string }>(
        database.db,
        sql`SELECT version, checksum FROM schema_migrations`,
      );
      assert.deepEqual(
        rows.map((r) => Number(r.version)),
        MIGRATIONS.map((m) => m.version),
      );
      const again = await Promise.all([migrate(database.db), migrate(database.db), migrate(database.db)]);
      for (const r of again) assert.deepEqual(r.applied, []);
      const edited = MIGRATIONS.map((m) => ({ ...m, statements: [...m.statements, 'SELECT 1'] }));
      await assert.rejects(
        migrate(database.db, edited),
        (e) => e instanceof MigrationError && /changed/.test(e.message),
      );
      await database.db.execute(
        sql`INSERT INTO schema_migrations (version, name, checksum) VALUES (999, 'future', 'x')`,
      );
      await assert.rejects(
        migrate(database.db),
        (e) => e instanceof MigrationError && /newer version/.test(e.message),
      );
      await database.db.execute(sql`DELETE FROM schema_migrations WHERE version = 999`);
    });

    it('a failing migration changes nothing', async () => {
      const next = MIGRATIONS.length + 1;
      const broken = [
        ...MIGRATIONS,
        {
          version: next,
          name: 'broken',
          statements: ['CREATE TABLE half_done (id int)', 'SELECT * FROM no_such_table'],
        },
      ];
      await assert.rejects(migrate(database.db, broken));
      const t = await queryRows(
        database.db,
        sql`SELECT 1 FROM information_schema.tables WHERE table_name = 'half_done'`,
      );
      assert.equal(t.length, 0);
      const v = await queryRows(database.db, sql`SELECT 1 FROM schema_migrations WHERE version = ${next}`);
      assert.equal(v.length, 0);
    });

    it('schema.ts agrees with the migrated tables (columns, nullability)', async () => {
      for (const [name, table] of Object.entries(ALL_TABLES)) {
        const cfg = getTableConfig(table);
        assert.equal(cfg.name, name);
        const cols = await queryRows<{ column_name: string; is_nullable: string }>(
          database.db,
          sql`SELECT column_name, is_nullable FROM information_schema.columns WHERE table_schema = 'public' AND table_name = ${name}`,
        );
        const inDb = new Map(cols.map((c) => [c.column_name, c.is_nullable === 'YES']));
        const inCode = new Map(cfg.columns.map((c) => [c.name, !c.notNull]));
        assert.deepEqual([...inCode.keys()].sort(), [...inDb.keys()].sort(), `columns of ${name}`);
        for (const [col, nullable] of inCode)
          assert.equal(inDb.get(col), nullable, `${name}.${col} nullability`);
      }
    });

    it('users: unique names, updates, admin counting, cascade to sessions and tokens', async () => {
      const a = await store.users.create({ username: 'alice', role: 'admin', passwordHash: 'h' });
      await assert.rejects(
        store.users.create({ username: 'alice', role: 'viewer', passwordHash: 'h' }),
        ConflictError,
      );
      const b = await store.users.create({ username: 'bob', role: 'operator', passwordHash: 'h' });
      assert.equal((await store.users.getByUsername('bob'))?.id, b.id);
      assert.equal(await store.users.countActiveAdmins(), 1);
      assert.equal(await store.users.countActiveAdmins(a.id), 0);
      const upd = await store.users.update(b.id, { role: 'admin', disabled: true });
      assert.equal(upd?.role, 'admin');
      assert.equal(await store.users.countActiveAdmins(a.id), 0, 'disabled admins do not count');
      await store.sessions.create({
        idHash: 'sess-b',
        userId: b.id,
        expiresAt: new Date(Date.now() + 60_000),
      });
      await store.tokens.create({
        userId: b.id,
        name: 't',
        role: 'viewer',
        tokenHash: 'tok-b',
        prefix: 'p',
        expiresAt: null,
      });
      assert.equal(await store.users.delete(b.id), true);
      assert.equal(await store.sessions.findValid('sess-b'), undefined);
      assert.equal(await store.tokens.findActiveByHash('tok-b'), undefined);
      await store.users.delete(a.id);
    });

    it('sessions: valid until expiry, purge, per-user logout keeping one', async () => {
      const u = await store.users.create({ username: 'sess-user', role: 'viewer', passwordHash: 'h' });
      await store.sessions.create({ idHash: 's1', userId: u.id, expiresAt: new Date(Date.now() + 60_000) });
      await store.sessions.create({ idHash: 's2', userId: u.id, expiresAt: new Date(Date.now() + 60_000) });
      await store.sessions.create({ idHash: 's-old', userId: u.id, expiresAt: new Date(Date.now() - 1000) });
      assert.equal((await store.sessions.findValid('s1'))?.user.username, 'sess-user');
      assert.equal(await store.sessions.findValid('s-old'), undefined);
      assert.equal(await store.sessions.purgeExpired(), 1);
      assert.equal(await store.sessions.deleteForUser(u.id, 's1'), 1);
      assert.ok(await store.sessions.findValid('s1'));
      assert.equal(await store.sessions.findValid('s2'), undefined);
      await store.users.delete(u.id);
    });

    it('tokens: active only while neither revoked nor expired', async () => {
      const u = await store.users.create({ username: 'tok-user', role: 'operator', passwordHash: 'h' });
      const t = await store.tokens.create({
        userId: u.id,
        name: 'ci',
        role: 'operator',
        tokenHash: 'th1',
        prefix: 'abc',
        expiresAt: null,
      });
      await store.tokens.create({
        userId: u.id,
        name: 'old',
        role: 'viewer',
        tokenHash: 'th2',
        prefix: 'def',
        expiresAt: new Date(Date.now() - 1),
      });
      assert.equal((await store.tokens.findActiveByHash('th1'))?.token.id, t.id);
      assert.equal(await store.tokens.findActiveByHash('th2'), undefined);
      assert.equal((await store.tokens.list(u.id)).length, 2);
      assert.equal(await store.tokens.revoke(t.id), true);
      assert.equal(await store.tokens.revoke(t.id), false);
      assert.equal(await store.tokens.findActiveByHash('th1'), undefined);
      await store.users.delete(u.id);
    });

    it('devices: create, lookups, conflicts, agent codes never reused, secrets round-trip', async () => {
      const d = await devices.create(
        actor,
        dev(1, { login: { username: 'root', password: 'pw-1', private_key: PEM, passphrase: 'pp' } }),
      );
      assert.match(d.agent_code, /^agt-[a-z2-7]{12}$/);
      assert.deepEqual(d.login, {
        port: 22,
        username: 'root',
        has_password: true,
        has_private_key: true,
        has_passphrase: true,
      });
      assert.equal(d.status, 'new');
      assert.equal((await store.devices.getByName(d.name))?.id, d.id);
      assert.equal((await store.devices.getByAgentCode(d.agent_code))?.id, d.id);
      await assert.rejects(devices.create(actor, dev(1)), ConflictError);
      const secrets = await store.devices.loginSecrets(d.id);
      assert.deepEqual(secrets, {
        method: 'ssh',
        host: d.ip,
        port: 22,
        username: 'root',
        password: 'pw-1',
        private_key: PEM,
        passphrase: 'pp',
      });
      const areas = await store.devices.areasOfAgents([d.agent_code, 'agt-unknown']);
      assert.equal(areas.get(d.agent_code)?.area, d.function_area);
      assert.equal(areas.size, 1);
      // Delete: the code stays reserved; a new device never gets it.
      assert.equal((await store.transaction((tx) => tx.devices.delete(d.id)))?.id, d.id);
      const codes = await queryRows<{ code: string }>(
        database.db,
        sql`SELECT code FROM agent_codes WHERE code = ${d.agent_code}`,
      );
      assert.equal(codes.length, 1);
      const again = await devices.create(actor, dev(1));
      assert.notEqual(again.agent_code, d.agent_code);
      await store.transaction((tx) => tx.devices.delete(again.id));
    });

    it('devices: partial update merges, checks cross-field rules, keeps or clears secrets', async () => {
      const d = await devices.create(
        actor,
        dev(2, { os: 'windows', login: { username: 'Administrator', password: 'w' } }),
      );
      assert.equal(d.login_method, 'winrm');
      assert.equal(d.login.port, 5985);
      await assert.rejects(devices.update(actor, d.id, { login: { private_key: PEM } }), ValidationError);
      await assert.rejects(devices.update(actor, d.id, { os: 'linux' }), ValidationError, 'linux + winrm');
      const r = await devices.update(actor, d.id, {
        os: 'linux',
        login_method: 'ssh',
        login: { private_key: PEM, password: null },
      });
      assert.equal(r.login.port, 22, 'default port follows the method');
      assert.equal(r.login.has_password, false);
      assert.equal(r.login.has_private_key, true);
      const [audited] = (
        await store.audit.list({ page: 1, pageSize: 1, action: 'device.update', target_id: d.id })
      ).rows;
      assert.deepEqual(
        (audited?.details.changed as string[]).sort(),
        ['login.password', 'login.port', 'login.private_key', 'login_method', 'os'].sort(),
      );
      const r2 = await devices.update(actor, d.id, {
        metadata: { rack: 'r1' },
        status: 'online',
        agent_version: '1.2.3',
      });
      assert.deepEqual(r2.metadata, { rack: 'r1' });
      assert.equal(r2.login.has_private_key, true, 'absent secrets are kept');
      await assert.rejects(
        devices.update(actor, '00000000-0000-4000-8000-000000000000', { ip: '1.2.3.4' }),
        NotFoundError,
      );
      const other = await devices.create(actor, dev(3));
      await assert.rejects(devices.update(actor, other.id, { name: d.name }), ConflictError);
      await store.devices.delete(d.id);
      await store.devices.delete(other.id);
    });

    it('devices: list filters, free text, sort and pagination', async () => {
      const rows = Array.from({ length: 30 }, (_, i) =>
        dev(100 + i, i % 5 === 0 ? { os: 'windows', login: { username: 'Administrator' } } : {}),
      );
      const res = await store.transaction((tx) => tx.devices.upsertMany(rows.map(deviceInput)));
      assert.deepEqual(res, { created: 30, updated: 0, secretsDropped: [] });
      const base = { page: 1, pageSize: 50, sort: 'name' as const, order: 'asc' as const };
      const all = await devices.list(base);
      assert.equal(all.total, 30);
      assert.equal(all.devices[0]?.name, 'node-100');
      const desc = await devices.list({ ...base, order: 'desc', pageSize: 7, page: 2 });
      assert.equal(desc.total, 30);
      assert.deepEqual(
        desc.devices.map((x) => x.name),
        Array.from({ length: 7 }, (_, i) => `node-${122 - i}`),
      );
      assert.equal((await devices.list({ ...base, os: 'windows' })).total, 6);
      assert.equal((await devices.list({ ...base, function_area: 'area-odd' })).total, 15);
      assert.equal((await devices.list({ ...base, q: 'NODE-11' })).total, 10, 'q is case-insensitive');
      assert.equal((await devices.list({ ...base, q: '%' })).total, 0, 'LIKE wildcards are literal');
      assert.equal((await devices.list({ ...base, ip: '192.168.0.11' })).total, 10);
      await store.devices.setStatus(all.devices[0]!.id, 'online');
      assert.equal((await devices.list({ ...base, status: ['online', 'failed'] })).total, 1);
      assert.deepEqual(await store.devices.countByStatus(), { new: 29, online: 1 });
      // Re-import keeps ids, codes and status; updates fields. An empty secret keeps the stored
      // one while the target stays; a row that re-points the device drops it (issue 15, F2).
      const same = await store.transaction((tx) =>
        tx.devices.upsertMany(
          rows.map((r) =>
            deviceInput({ ...r, agent_version: '9.9.9', login: { ...r.login, password: undefined } }),
          ),
        ),
      );
      assert.deepEqual(same, { created: 0, updated: 30, secretsDropped: [] });
      assert.equal((await store.devices.loginSecrets(all.devices[1]!.id)).password, 'secret-101');
      const again = await store.transaction((tx) =>
        tx.devices.upsertMany(
          rows.map((r) => deviceInput({ ...r, ip: '10.9.9.9', login: { ...r.login, password: undefined } })),
        ),
      );
      assert.equal(again.updated, 30);
      assert.deepEqual(
        again.secretsDropped.find((d) => d.name === 'node-101'),
        { name: 'node-101', fields: ['password'], because: ['ip'] },
      );
      const after = await devices.list(base);
      assert.deepEqual(
        after.devices.map((x) => [x.id, x.agent_code]),
        all.devices.map((x) => [x.id, x.agent_code]),
      );
      assert.equal(after.devices[0]?.status, 'online');
      assert.ok(after.devices.every((x) => x.ip === '10.9.9.9'));
      assert.equal(
        (await store.devices.loginSecrets(after.devices[1]!.id)).password,
        undefined,
        'a re-pointed device keeps no secret it was not given again',
      );
    });

    it('writes are atomic: a failure inside a transaction leaves no rows and no audit', async () => {
      const before = await store.devices.count();
      await assert.rejects(
        store.transaction(async (tx) => {
          await tx.devices.upsertMany(Array.from({ length: 600 }, (_, i) => deviceInput(dev(1000 + i))));
          await tx.audit.record({ actor: 'x', action: 'device.import', result: 'success' });
          throw new Error('boom');
        }),
        /boom/,
      );
      assert.equal(await store.devices.count(), before);
      assert.equal((await store.audit.list({ page: 1, pageSize: 10, actor: 'x' })).total, 0);
    });

    it('audit: redacts secrets, filters and paginates', async () => {
      const t0 = new Date(Date.now() - 1000).toISOString();
      await store.audit.record({
        actor: 'carol',
        action: 'device.create',
        targetType: 'device',
        targetId: 'd1',
        result: 'success',
        details: { name: 'x', login: { password: 'p4ss', has_password: true }, token: 'opsp_x' },
      });
      await store.audit.record({
        actor: 'carol',
        action: 'device.delete',
        targetType: 'device',
        targetId: 'd1',
        result: 'failure',
      });
      await store.audit.record({ actor: 'dave', action: 'auth.login', result: 'failure', ip: '10.0.0.1' });
      const base = { page: 1, pageSize: 10 };
      const created = await store.audit.list({ ...base, action: 'device.create', actor: 'carol' });
      assert.equal(created.total, 1);
      assert.deepEqual(created.rows[0]?.details, {
        name: 'x',
        login: { password: '[redacted]', has_password: true },
        token: '[redacted]',
      });
      assert.equal((await store.audit.list({ ...base, action: 'device.*', actor: 'carol' })).total, 2);
      assert.equal((await store.audit.list({ ...base, action: 'device.', actor: 'carol' })).total, 2);
      assert.equal((await store.audit.list({ ...base, actor: 'carol', result: 'failure' })).total, 1);
      assert.equal((await store.audit.list({ ...base, target_type: 'device', target_id: 'd1' })).total, 2);
      assert.equal((await store.audit.list({ ...base, actor: 'dave', since: t0 })).total, 1);
      assert.equal((await store.audit.list({ ...base, actor: 'dave', until: t0 })).total, 0);
      const p2 = await store.audit.list({ page: 2, pageSize: 1, actor: 'carol' });
      assert.equal(p2.rows[0]?.action, 'device.create', 'newest first');
    });

    it('secrets and settings: encrypted at rest, bound to their name, stable per area', async () => {
      await store.secrets.put('area/a1', 'controller_token', 'ctl-token-123');
      assert.equal(await store.secrets.get('area/a1', 'controller_token'), 'ctl-token-123');
      const raw = await queryRows<{ ciphertext: string }>(database.db, sql`SELECT ciphertext FROM secrets`);
      assert.ok(raw.every((r) => r.ciphertext.startsWith(`v1:${store.box.keyId}:`)));
      assert.ok(!JSON.stringify(raw).includes('ctl-token-123'));
      // Moving a ciphertext to another name makes it undecryptable (AAD).
      await database.db.execute(
        sql`INSERT INTO secrets (scope, name, ciphertext) SELECT 'area/a2', name, ciphertext FROM secrets WHERE scope = 'area/a1'`,
      );
      await assert.rejects(store.secrets.get('area/a2', 'controller_token'), /authentication/);
      const s1 = await store.secrets.ensureAreaSecret('a3', 'agent_secret');
      assert.equal(await store.secrets.ensureAreaSecret('a3', 'agent_secret'), s1);
      assert.deepEqual(
        (await store.secrets.list('area/a3')).map((x) => x.name),
        ['agent_secret'],
      );
      await store.settings.put('ui', { theme: 'dark' });
      assert.deepEqual(await store.settings.get('ui'), { theme: 'dark' });
    });

    it('controllers history and batch jobs', async () => {
      await store.controllersHistory.seen({ area: 'a1', id: 'c1', address: '10.0.0.1:8081', version: '1' });
      await store.controllersHistory.seen({ area: 'a1', id: 'c1', address: '10.0.0.1:8082', version: '2' });
      assert.equal(await store.controllersHistory.gone('a1', 'c1'), true);
      assert.equal(await store.controllersHistory.gone('a1', 'c1'), false);
      await store.controllersHistory.seen({ area: 'a1', id: 'c1', address: '10.0.0.1:8082' });
      const h = await store.controllersHistory.list({ area: 'a1' });
      assert.equal(h.length, 2);
      assert.equal(h[0]?.wentAt, null);
      assert.ok(h[1]?.wentAt instanceof Date);
      assert.equal(h[1]?.address, '10.0.0.1:8082');

      const job = await store.batches.create({
        action: 'restart',
        requestedBy: 'alice',
        request: { agents: ['a', 'b'], packages: [] },
        deadlineAt: new Date(Date.now() + 60_000),
        targets: [
          { agentCode: 'a', area: 'a1' },
          { agentCode: 'b', area: 'a1' },
        ],
      });
      const result = (pkg: string, success: boolean, reason: string) => ({
        agentCode: 'a',
        package: pkg,
        area: 'a1',
        success,
        reason,
        error: success ? null : 'agent_offline: gone',
        message: null,
        details: success ? { old_pid: 10, new_pid: 11 } : {},
      });
      await store.batches.upsertResults(job.id, [
        result('p1', true, 'done'),
        result('p2', false, 'outcome_unknown'),
      ]);
      assert.deepEqual(
        (await store.batches.targetsWithoutResults(job.id)).map((t) => t.agentCode),
        ['b'],
        'a target without any result yet',
      );
      // A later result for the same pair replaces the earlier one (reconciliation learns the truth).
      await store.batches.upsertResults(job.id, [result('p2', true, 'done')]);
      await store.batches.refreshCounts(job.id);
      assert.equal((await store.batches.job(job.id))?.total, 2, 'counts follow the results while it runs');
      assert.deepEqual(
        (await store.batches.running()).map((j) => j.id),
        [job.id],
      );
      await store.batches.finish(job.id, 'done', 12);
      assert.equal(await store.batches.finish(job.id, 'interrupted', null), undefined, 'finished once');
      const got = await store.batches.get(job.id);
      assert.equal(got?.job.status, 'done');
      assert.equal(got?.job.success, 2);
      assert.deepEqual(
        got?.results.map((r) => [r.package, r.success, r.reason, r.details]),
        [
          ['p1', true, 'done', { old_pid: 10, new_pid: 11 }],
          ['p2', true, 'done', { old_pid: 10, new_pid: 11 }],
        ],
      );
      assert.equal(await store.batches.countTargets(job.id), 2);
      assert.equal(
        (await store.batches.results(job.id, got!.results[0]!.id)).length,
        1,
        'results after an id',
      );
    });
  });
}

for (const driver of DRIVERS) storageSuite(driver);
