/** Config updates with a real HTTP service: atomic write + restart, rollback on failed health, refusals. */
import assert from 'node:assert/strict';
import { mkdir, readdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createLogger } from '@opsplane/kit';
import { freePort } from '@opsplane/test-support';
import { applyConfigUpdate, HISTORY_DIR, Supervisor } from '../src/index.js';
import {
  HTTP_SERVICE,
  PidTracker,
  SLEEPER,
  waitStatus,
  workspace,
  writePackage,
  type Workspace,
} from './helpers.js';

const logger = createLogger('test');

describe('config updates', () => {
  let ws: Workspace;
  let sup: Supervisor;
  let cfgDir: string;
  const pids = new PidTracker();

  before(async () => {
    ws = await workspace();
    const port = await freePort();
    const dir = await writePackage(
      ws,
      'api',
      HTTP_SERVICE,
      {
        env: { PORT: port },
        health_check: {
          type: 'http',
          url: `http://127.0.0.1:${port}/health`,
          interval: '200ms',
          timeout: '1s',
          start_period: '3s', // generous: under load the service may start slowly
          retries: 2,
        },
      },
      { 'app.json': JSON.stringify({ healthy: true, v: 1 }) },
    );
    cfgDir = join(dir, 'config');
    await writePackage(ws, 'idle', SLEEPER, { autostart: false });
    sup = await Supervisor.create({ packagesDir: ws.packagesDir, dataDir: ws.dataDir });
    await sup.start();
    pids.noteSupervisor(sup);
    await waitStatus(sup, 'api', (s) => s.health_status === 'healthy', 'healthy');
  });

  after(async () => {
    pids.noteSupervisor(sup);
    await sup.shutdown({ stopPackages: true });
    pids.killAll();
    await ws.cleanup();
  });

  it('writes the files atomically, keeps the previous version, restarts and waits for health', async () => {
    const before = sup.statusOf('api');
    const content = JSON.stringify({ healthy: true, v: 2 });
    const r = await applyConfigUpdate(
      sup,
      {
        package: 'api',
        configs: [
          { file_name: 'app.json', content },
          { file_name: 'extra.conf', content: 'x=1\n' },
        ],
      },
      { logger },
    );
    assert.equal(r.success, true, JSON.stringify(r));
    assert.match(r.message ?? '', /restarted; healthy/);
    assert.equal(await readFile(join(cfgDir, 'app.json'), 'utf8'), content);
    assert.equal(await readFile(join(cfgDir, 'extra.conf'), 'utf8'), 'x=1\n');
    const after = pids.note(sup.statusOf('api'));
    assert.notEqual(after?.pid, before?.pid, 'restarted');
    assert.equal(after?.health_status, 'healthy');
    // previous app.json kept; no temp files left behind
    const hist = await readdir(join(cfgDir, HISTORY_DIR));
    assert.equal(hist.filter((n) => n.startsWith('app.json.')).length, 1);
    const old = await readFile(
      join(cfgDir, HISTORY_DIR, hist.find((n) => n.startsWith('app.json.')) ?? ''),
      'utf8',
    );
    assert.equal(JSON.parse(old).v, 1);
    assert.deepEqual((await readdir(cfgDir)).sort(), ['.history', 'app.json', 'extra.conf']);
  });

  it('does not restart when nothing changed', async () => {
    const pid = sup.statusOf('api')?.pid;
    const r = await applyConfigUpdate(
      sup,
      { package: 'api', configs: [{ file_name: 'extra.conf', content: 'x=1\n' }] },
      { logger },
    );
    assert.equal(r.success, true);
    assert.match(r.message ?? '', /unchanged/);
    assert.equal(sup.statusOf('api')?.pid, pid);
  });

  it('rolls back a config that makes the health check fail', async () => {
    const good = await readFile(join(cfgDir, 'app.json'), 'utf8');
    const t0 = Date.now();
    const r = await applyConfigUpdate(
      sup,
      {
        package: 'api',
        configs: [
          { file_name: 'app.json', content: JSON.stringify({ healthy: false, v: 3 }) },
          { file_name: 'new-file.conf', content: 'y=2\n' },
        ],
        config_file: 'app.json',
      },
      { logger },
    );
    assert.equal(r.success, false);
    assert.match(r.error ?? '', /^rolled_back: health check failed after config update: HTTP 500/);
    assert.equal(r.message, 'previous config restored; package healthy again');
    assert.ok(Date.now() - t0 < 15_000);
    assert.equal(await readFile(join(cfgDir, 'app.json'), 'utf8'), good, 'old content back');
    assert.equal(
      (await readdir(cfgDir)).includes('new-file.conf'),
      false,
      'file that did not exist before is removed',
    );
    const s = pids.note(sup.statusOf('api'));
    assert.equal(s?.is_running, true);
    assert.equal(s?.health_status, 'healthy');
  });

  it('refuses unsafe file names and writes nothing', async () => {
    const beforeList = (await readdir(cfgDir)).sort();
    const pid = sup.statusOf('api')?.pid;
    for (const bad of ['../x', '/etc/passwd', 'a/b', '.env', '..', 'a\0b', '']) {
      const r = await applyConfigUpdate(
        sup,
        {
          package: 'api',
          configs: [
            { file_name: 'ok.conf', content: 'fine' },
            { file_name: bad, content: 'evil' },
          ],
        },
        { logger },
      );
      assert.equal(r.success, false, bad);
      assert.match(r.error ?? '', /^invalid_file_name: /, bad);
    }
    assert.deepEqual((await readdir(cfgDir)).sort(), beforeList);
    assert.deepEqual((await readdir(join(ws.packagesDir, 'api'))).includes('x'), false);
    assert.equal(sup.statusOf('api')?.pid, pid, 'not restarted');
  });

  it('refuses a symlink leading out of the config dir', async () => {
    const outside = join(ws.root, 'outside.txt');
    await writeFile(outside, 'precious');
    await symlink(outside, join(cfgDir, 'link.conf'));
    const r = await applyConfigUpdate(
      sup,
      { package: 'api', configs: [{ file_name: 'link.conf', content: 'pwned' }] },
      { logger },
    );
    assert.equal(r.success, false);
    assert.match(r.error ?? '', /^invalid_file_name: 'link.conf' is a symlink leading outside/);
    assert.equal(await readFile(outside, 'utf8'), 'precious');
  });

  it('refuses a config_dir that is a symlink out of the package', async () => {
    const elsewhere = join(ws.root, 'elsewhere');
    await mkdir(elsewhere);
    const dir = await writePackage(ws, 'sneaky', SLEEPER, { autostart: false, config_dir: 'conf' });
    await symlink(elsewhere, join(dir, 'conf'));
    const s2 = await Supervisor.create({ packagesDir: ws.packagesDir, dataDir: join(ws.root, 'data2') });
    assert.match(
      s2.statusOf('sneaky')?.last_error ?? '',
      /config_dir: 'conf' resolves outside the package dir/,
    );
  });

  it('writes without restarting a stopped package; unknown package is reported', async () => {
    const r = await applyConfigUpdate(
      sup,
      { package: 'idle', configs: [{ file_name: 'a.yaml', content: 'a: 1\n' }] },
      { logger },
    );
    assert.equal(r.success, true);
    assert.match(r.message ?? '', /not running, not restarted/);
    assert.equal(await readFile(join(ws.packagesDir, 'idle', 'config', 'a.yaml'), 'utf8'), 'a: 1\n');
    assert.equal(sup.statusOf('idle')?.is_running, false);
    const u = await applyConfigUpdate(
      sup,
      { package: 'ghost', configs: [{ file_name: 'a.yaml', content: '' }] },
      { logger },
    );
    assert.equal(u.success, false);
    assert.match(u.error ?? '', /^package_not_found: /);
  });
});
