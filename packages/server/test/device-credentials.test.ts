/**
 * F2 of issue 15 (credential re-point), reproduced as found: a device's password is stored by an
 * admin; an operator — who may not read it — changes the device's `ip` (PATCH, or an import row)
 * to an address where a fake SSH server captures passwords, then runs a `restart` deployment.
 *
 * Refused twice over: the PATCH drops the stored secrets (the answer shows has_password false,
 * the audit record says which and why), and the device's SSH host key is pinned to the device —
 * the fake server's key is a changed key, refused before any authentication; even once the
 * operator accepts it, nothing stored is sent. Real SSH servers (ssh2) on real sockets, the real
 * deployment queue of a real server.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Device, ImportReport, Rollout } from '@opsplane/api';
import { startCaptureSshServer, waitFor, type CaptureSshServer } from '@opsplane/test-support';
import { deviceChanges } from '../src/services/devices.js';
import { startTestServer, type TestServer } from './helpers.js';

const PASSWORD = 'root-password-only-admins-know';

describe('device credentials are bound to their target', { timeout: 120_000 }, () => {
  let t: TestServer;
  let real: CaptureSshServer;
  let fake: CaptureSshServer;
  const admin = () => ({ auth: t.users.admin.token });
  const operator = () => ({ auth: t.users.operator.token });

  before(async () => {
    t = await startTestServer('pglite', { server: { deploy: { connect_timeout: '5s' } } });
    // The device's real host, and the attacker's server at another address on the same port.
    real = await startCaptureSshServer({ host: '127.0.0.1' });
    fake = await startCaptureSshServer({ host: '127.0.0.2', port: real.port });
  });
  after(async () => {
    await t?.stop();
    await real?.stop();
    await fake?.stop();
  });

  async function createDevice(name: string, password = PASSWORD): Promise<Device> {
    const r = await t.call<Device>('POST', '/api/v1/devices', {
      ...admin(),
      body: {
        name,
        ip: real.host,
        function_area: 'area-1',
        os: 'linux',
        login: { port: real.port, username: 'root', password },
      },
    });
    assert.equal(r.status, 201, r.text);
    return r.json;
  }

  async function restart(device: string, accept = false): Promise<Rollout['deployments'][number]> {
    const r = await t.call<Rollout>('POST', '/api/v1/deployments', {
      ...operator(),
      body: { type: 'restart', devices: [device], ...(accept ? { accept_changed_host_key: true } : {}) },
    });
    assert.equal(r.status, 202, r.text);
    let last: Rollout | undefined;
    await waitFor(
      async () => {
        last = (await t.call<Rollout>('GET', `/api/v1/rollouts/${r.json.id}`, operator())).json;
        return last.status !== 'running';
      },
      { timeoutMs: 30_000, intervalMs: 100, what: `the restart of ${device}` },
    );
    return last!.deployments[0]!;
  }

  async function lastAudit(action: string) {
    const r = await t.call<{ entries: { details: Record<string, unknown>; actor: string }[] }>(
      'GET',
      `/api/v1/audit?action=${action}&pageSize=1`,
      admin(),
    );
    return r.json.entries[0];
  }

  it('a PATCH of the ip by an operator drops the password; the next restart sends nothing to the new address', async () => {
    const dev = await createDevice('web-1');
    // Baseline: the real host gets the password, and the device's host key is pinned.
    const first = await restart('web-1');
    assert.equal(first.status, 'failed');
    assert.deepEqual(real.passwords(), [PASSWORD]);
    assert.equal(await t.server.store.hostKeys.get(`device:${dev.id}`), real.fingerprint);

    const patched = await t.call<Device>('PATCH', `/api/v1/devices/${dev.id}`, {
      ...operator(),
      body: { ip: fake.host },
    });
    assert.equal(patched.status, 200, patched.text);
    assert.equal(patched.json.ip, fake.host);
    assert.equal(patched.json.login.has_password, false, 'the answer says the password is gone');
    const audit = await lastAudit('device.update');
    assert.equal(audit?.actor, 'operator-user');
    assert.deepEqual(audit?.details.dropped, ['password']);
    assert.deepEqual(audit?.details.because, ['ip']);

    // The pinned key is checked for this device at its new address: refused before any login.
    const second = await restart('web-1');
    assert.equal(second.status, 'failed');
    assert.equal(second.error_code, 'ssh_host_key_changed', second.error ?? '');
    assert.deepEqual(fake.attempts, []);

    // Even when the operator accepts the new key, there is no stored password left to send.
    const third = await restart('web-1', true);
    assert.equal(third.status, 'failed');
    assert.equal(third.error_code, 'ssh_auth_failed', third.error ?? '');
    assert.ok(fake.attempts.length > 0, 'the fake server was reached');
    assert.deepEqual(fake.passwords(), []);
    assert.equal(await t.server.store.hostKeys.get(`device:${dev.id}`), fake.fingerprint);
  });

  it('an import row re-pointing a device drops its password too, and the report says so', async () => {
    const dev = await createDevice('web-2', 'second-device-password');
    const csv =
      'name,ip,function_area,os,username,port,password\n' +
      `web-2,${fake.host},area-1,linux,root,${fake.port},\n` +
      `web-new,${fake.host},area-1,linux,root,${fake.port},\n`;
    const r = await t.call<ImportReport>('POST', '/api/v1/devices/import', {
      ...operator(),
      body: csv,
      contentType: 'text/csv',
    });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.updated, 1);
    assert.deepEqual(r.json.secrets_dropped, [{ name: 'web-2', fields: ['password'], because: ['ip'] }]);
    const after = (await t.call<Device>('GET', `/api/v1/devices/${dev.id}`, operator())).json;
    assert.equal(after.login.has_password, false);
    const audit = await lastAudit('device.import');
    assert.deepEqual(audit?.details.dropped, [{ name: 'web-2', fields: ['password'], because: ['ip'] }]);

    const d = await restart('web-2', true);
    assert.equal(d.status, 'failed');
    assert.ok(!fake.passwords().includes('second-device-password'));
  });

  it('keeps secrets the same request gives again, and those of changes that do not re-point', async () => {
    const dev = await createDevice('web-3');
    const keep = await t.call<Device>('PATCH', `/api/v1/devices/${dev.id}`, {
      ...operator(),
      body: { name: 'web-3b', function_area: 'area-2', metadata: { rack: 'r1' }, status: 'offline' },
    });
    assert.equal(keep.json.login.has_password, true);
    const moved = await t.call<Device>('PATCH', `/api/v1/devices/${dev.id}`, {
      ...operator(),
      body: { ip: fake.host, login: { password: 'a-new-password-for-the-new-host' } },
    });
    assert.equal(moved.status, 200, moved.text);
    assert.equal(moved.json.login.has_password, true);
    assert.equal((await lastAudit('device.update'))?.details.dropped, undefined);
  });

  it('host keys are pinned per device: a new device at an address does not inherit its trust', async () => {
    // An address-keyed pin (as recorded before pins were per device) is not consulted.
    await t.server.store.hostKeys.record(`${fake.host}:${fake.port}`, 'SHA256:c29tZS1vdGhlci1rZXk');
    const dev = await t.call<Device>('POST', '/api/v1/devices', {
      ...admin(),
      body: {
        name: 'web-4',
        ip: fake.host,
        function_area: 'area-1',
        os: 'linux',
        login: { port: fake.port, username: 'deploy' },
      },
    });
    const d = await restart('web-4');
    assert.equal(d.error_code, 'ssh_auth_failed', d.error ?? '');
    assert.equal(await t.server.store.hostKeys.get(`device:${dev.json.id}`), fake.fingerprint);
    // Deleting the device forgets its pin.
    assert.equal((await t.call('DELETE', `/api/v1/devices/${dev.json.id}`, operator())).status, 204);
    assert.equal(await t.server.store.hostKeys.get(`device:${dev.json.id}`), undefined);
  });

  it('each re-pointing field drops the secrets (deviceChanges)', async () => {
    const dev = await t.server.store.devices.get((await createDevice('web-5')).id);
    assert.ok(dev);
    const cases: [Parameters<typeof deviceChanges>[1], string[]][] = [
      [{ ip: '10.1.1.1' }, ['ip']],
      [{ login: { port: 2222 } }, ['login.port']],
      [{ login: { username: 'admin' } }, ['login.username']],
      [{ metadata: { jump_host: 'bastion' } }, ['metadata.jump_host']],
      [{ ip: '10.1.1.1', login: { port: 2200 } }, ['ip', 'login.port']],
      [{ name: 'renamed', function_area: 'area-9', agent_version: '1.2.3' }, []],
      [{ ip: dev.ip, login: { port: dev.loginPort, username: dev.loginUsername } }, []],
    ];
    for (const [patch, because] of cases) {
      const r = deviceChanges(dev, patch);
      assert.deepEqual(r.because, because, JSON.stringify(patch));
      assert.deepEqual(r.secretsDropped, because.length ? ['password'] : [], JSON.stringify(patch));
      if (because.length) assert.equal(r.changes.secrets?.password, null);
    }
    const winrm = deviceChanges(
      { ...dev, os: 'windows', loginMethod: 'winrm', loginPort: 5986 },
      { metadata: { winrm_allow_unencrypted: 'true' } },
    );
    assert.deepEqual(winrm.because, ['metadata.winrm_allow_unencrypted']);
  });
});
