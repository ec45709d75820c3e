/**
 * The embedded database (PGlite) is single-process: a second `opsplane server` on the same data
 * directory must refuse with a clear message — and leave the first one's data alone — while a
 * server that was SIGKILLed (its lock left behind) must not keep the next start out.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import {
  defaultCliMain,
  spawnTracked,
  startServerProcess,
  tempDir,
  type ServerProcess,
} from '@opsplane/test-support';
import type { DeviceListResponse } from '@opsplane/api';

const NO_ETCD = ['http://127.0.0.1:1'];
const PASSWORD = 'embedded-lock-password';

describe('embedded database: one server per directory', { timeout: 180_000 }, () => {
  let dir: Awaited<ReturnType<typeof tempDir>> | undefined;
  let first: ServerProcess | undefined;

  after(async () => {
    await first?.stop().catch(() => undefined);
    await dir?.cleanup();
  });

  it('a second server on the same directory refuses with a clear message; a SIGKILLed one does not lock the next start out', async () => {
    dir = await tempDir('opsplane-lock-');
    first = await startServerProcess({ dir: dir.path, etcdEndpoints: NO_ETCD, adminPassword: PASSWORD });
    const cookie = await first.login();
    const created = await first.call(cookie, 'POST', '/devices', {
      name: 'kept-device',
      ip: '10.1.1.1',
      function_area: 'area-1',
      os: 'linux',
      login: { username: 'ops', password: 'secret-password' },
    });
    assert.equal(created.status, 201, JSON.stringify(created.json));

    const second = spawnTracked('second-server', process.execPath, [
      defaultCliMain(),
      'server',
      '--config',
      first.configPath,
    ]);
    const exit = await second.exited;
    assert.notEqual(exit.code, 0, 'the second server exits with an error');
    assert.match(second.output(), /in use by another Opsplane server \(pid \d+\)/);
    assert.match(second.output(), /database_url/, 'it says how to run several servers');

    // The first is untouched and still serves.
    const list = await first.call<DeviceListResponse>(cookie, 'GET', '/devices?name=kept-device');
    assert.equal(list.json.total, 1);

    // kill -9 leaves the lock file behind; the next start takes it over and finds the data.
    await first.kill();
    await first.restart();
    const again = await first.login();
    const after = await first.call<DeviceListResponse>(again, 'GET', '/devices?name=kept-device');
    assert.equal(after.json.total, 1);
  });
});
