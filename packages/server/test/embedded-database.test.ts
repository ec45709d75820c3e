/**
 * The embedded database (PGlite), as a real `opsplane server` process:
 * - it is single-process: a second server on the same data directory must refuse with a clear
 *   message — and leave the first one's data alone — while a server that was SIGKILLed (its
 *   lock left behind) must not keep the next start out;
 * - a full disk (a small tmpfs, filled up) is the database being unavailable: 503
 *   `database_unavailable`, never a 500 or a crash, and service resumes once there is space.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import {
  defaultCliMain,
  rootDependency,
  skipUnlessAvailable,
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

describe(
  'embedded database: a full disk',
  {
    timeout: 180_000,
    skip: skipUnlessAvailable(rootDependency('mounts a small tmpfs to fill up')),
  },
  () => {
    let dir: Awaited<ReturnType<typeof tempDir>> | undefined;
    let mounted = '';
    let server: ServerProcess | undefined;

    after(async () => {
      await server?.stop().catch(() => undefined);
      if (mounted) execFileSync('umount', ['-l', mounted]);
      await dir?.cleanup();
    });

    it('answers 503 database_unavailable while the disk is full, then serves again; the process lives', async () => {
      dir = await tempDir('opsplane-diskfull-');
      mounted = join(dir.path, 'small');
      execFileSync('mkdir', ['-p', mounted]);
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=96m', 'tmpfs', mounted]);
      server = await startServerProcess({ dir: mounted, etcdEndpoints: NO_ETCD, adminPassword: PASSWORD });
      const cookie = await server.login();
      const device = (name: string) => ({
        name,
        ip: '10.1.1.2',
        function_area: 'area-1',
        os: 'linux',
        login: { username: 'ops', password: 'secret-password' },
        metadata: { a: 'x'.repeat(1000), b: 'y'.repeat(1000), c: 'z'.repeat(1000) },
      });
      // Fill the file system to the last byte.
      const filler = join(mounted, 'filler');
      try {
        execFileSync('dd', ['if=/dev/zero', `of=${filler}`, 'bs=1M', 'count=200'], { stdio: 'ignore' });
      } catch {
        // dd fails when the disk is full: that is the point
      }
      let full: { status: number; json: unknown } | undefined;
      for (let i = 0; i < 200 && full?.status !== 503; i++) {
        full = await server.call(cookie, 'POST', '/devices', device(`full-${i}`));
        assert.ok(
          full.status === 201 || full.status === 503,
          `answered ${full.status} ${JSON.stringify(full.json)}`,
        );
      }
      assert.equal(full?.status, 503, 'a write on a full disk is refused');
      assert.equal((full?.json as { error: { code: string } }).error.code, 'database_unavailable');
      assert.ok(server.process.running, 'the server lives');
      await rm(filler);
      await writeFile(join(mounted, 'probe'), 'space again');
      const ok = await server.call(cookie, 'POST', '/devices', device('after-full'));
      assert.equal(ok.status, 201, JSON.stringify(ok.json));
    });
  },
);
