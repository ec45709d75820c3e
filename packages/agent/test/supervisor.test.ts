/** Package supervision with real processes: operations, crash restarts, give-up, grace, broken manifests. */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { sleep, waitFor } from '@opsplane/test-support';
import { Supervisor } from '../src/index.js';
import {
  alive,
  CRASHER,
  FAST_RESTARTS,
  PidTracker,
  SLEEPER,
  STUBBORN,
  waitStatus,
  workspace,
  writePackage,
  type Workspace,
} from './helpers.js';

describe('supervisor', () => {
  let ws: Workspace;
  let sup: Supervisor;
  const pids = new PidTracker();

  before(async () => {
    ws = await workspace();
    await writePackage(ws, 'web', SLEEPER, { restart_policy: FAST_RESTARTS });
    await writePackage(ws, 'manual', SLEEPER, { autostart: false });
    await writePackage(ws, 'crasher', CRASHER, { restart_policy: FAST_RESTARTS });
    await writePackage(ws, 'stubborn', STUBBORN, { autostart: false, stop_grace: '500ms' });
    await writePackage(ws, 'broken', SLEEPER, { restart_policy: { policy: 'sometimes' } });
    await writePackage(ws, 'onfail', `setTimeout(() => process.exit(0), 100);`, {
      restart_policy: { ...FAST_RESTARTS, policy: 'on-failure' },
    });
    sup = await Supervisor.create({ packagesDir: ws.packagesDir, dataDir: ws.dataDir });
    await sup.start();
    pids.noteSupervisor(sup);
  });

  after(async () => {
    pids.noteSupervisor(sup);
    await sup.shutdown({ stopPackages: true });
    pids.killAll();
    await ws.cleanup();
  });

  it('starts autostart packages and leaves the others stopped', async () => {
    const web = await waitStatus(sup, 'web', (s) => s.status === 'running', 'running');
    assert.equal(web.is_running, true);
    assert.ok(web.pid && alive(web.pid));
    assert.equal(web.version, '1.0.0');
    const manual = sup.statusOf('manual');
    assert.equal(manual?.status, 'stopped');
    assert.equal(manual?.is_running, false);
    assert.equal(manual?.health_status, 'unknown');
  });

  it('start/stop/restart return one result per package; idempotent stop and start', async () => {
    const started = await sup.action('start', ['manual', 'web']);
    assert.deepEqual(
      started.map((r) => [r.package, r.success]),
      [
        ['manual', true],
        ['web', true],
      ],
    );
    assert.match(started[0]?.message ?? '', /^started \(pid \d+\)$/);
    assert.match(started[1]?.message ?? '', /already running/);
    const manualPid = pids.note(sup.statusOf('manual'))?.pid;
    assert.ok(manualPid);

    const restarted = await sup.action('restart', ['manual']);
    assert.equal(restarted[0]?.success, true, JSON.stringify(restarted));
    const after = pids.note(sup.statusOf('manual'));
    assert.notEqual(after?.pid, manualPid);
    assert.equal(after?.restarts, 1);
    assert.equal(alive(manualPid), false);

    const stopped = await sup.action('stop', ['manual']);
    assert.equal(stopped[0]?.success, true);
    assert.match(stopped[0]?.message ?? '', /^stopped \(pid \d+, /);
    const again = await sup.action('stop', ['manual']);
    assert.deepEqual(again[0], { package: 'manual', success: true, message: 'already stopped' });
    assert.equal(sup.statusOf('manual')?.status, 'stopped');
  });

  it('reports unknown packages per name without failing the others', async () => {
    const res = await sup.action('stop', ['nope', '../etc', 'manual']);
    assert.equal(res.length, 3);
    assert.equal(res[0]?.success, false);
    assert.match(res[0]?.error ?? '', /^package_not_found: /);
    assert.match(res[1]?.error ?? '', /^package_not_found: /);
    assert.equal(res[2]?.success, true);
  });

  it('restarts a package killed with SIGKILL', async () => {
    const before = await waitStatus(sup, 'web', (s) => s.status === 'running', 'running');
    const pid = before.pid ?? 0;
    process.kill(pid, 'SIGKILL');
    const after = await waitStatus(
      sup,
      'web',
      (s) => s.is_running && s.pid !== pid,
      'restarted with a new pid',
    );
    pids.note(after);
    assert.equal(after.restarts, (before.restarts ?? 0) + 1);
    assert.equal(after.last_error, 'killed by signal SIGKILL');
  });

  it('restarts a crashing package with backoff, then gives up after max_retries fast crashes', async () => {
    const failed = await waitStatus(sup, 'crasher', (s) => s.status === 'failed', 'failed', 15_000);
    assert.equal(failed.is_running, false);
    assert.equal(failed.restarts, 4, 'five runs: the first plus four restarts');
    assert.equal(failed.last_error, 'exited with code 3 (5 crashes in a row)');
    assert.equal(failed.health_status, 'unhealthy');
    // Not restarted any more…
    await sleep(600);
    assert.equal(sup.statusOf('crasher')?.status, 'failed');
    assert.equal(sup.statusOf('crasher')?.restarts, 4);
    // …until an explicit start, which resets the crash counter.
    const res = await sup.action('start', ['crasher']);
    assert.equal(res[0]?.success, true);
    await waitStatus(
      sup,
      'crasher',
      (s) => s.status === 'starting' || s.status === 'running' || s.status === 'failed',
      'retrying',
    );
    await waitStatus(
      sup,
      'crasher',
      (s) => s.status === 'failed' && (s.restarts ?? 0) >= 8,
      'failed again',
      15_000,
    );
    // Health of a failed package counts: overall is degraded, not healthy.
    assert.equal(sup.health('agent-x').services.crasher?.status, 'unhealthy');
    assert.notEqual(sup.overallStatus(), 'healthy');
    await sup.action('stop', ['crasher']);
  });

  it('on-failure does not restart a clean exit', async () => {
    const s = await waitStatus(sup, 'onfail', (x) => x.status === 'stopped', 'stopped after clean exit');
    assert.equal(s.restarts, 0);
    assert.equal(s.last_error, undefined);
  });

  it('stops a process that ignores SIGTERM with SIGKILL after stop_grace', async () => {
    const r = await sup.action('start', ['stubborn']);
    assert.equal(r[0]?.success, true);
    const s = await waitStatus(sup, 'stubborn', (x) => x.is_running, 'running');
    pids.note(s);
    const log = join(ws.dataDir, 'logs', 'stubborn.log');
    await waitFor(async () => (await readFile(log, 'utf8')).includes('stubborn up'), {
      what: 'program output in its log',
    });
    const t0 = Date.now();
    const stopped = await sup.action('stop', ['stubborn']);
    const took = Date.now() - t0;
    assert.equal(stopped[0]?.success, true);
    assert.match(stopped[0]?.message ?? '', /killed by signal SIGKILL, SIGKILL after stop_grace/);
    assert.ok(took >= 450 && took < 5000, `stop took ${took} ms`);
    assert.equal(alive(s.pid ?? 0), false);
    assert.match(await readFile(log, 'utf8'), /ignoring SIGTERM/);
  });

  it('shows a broken manifest as failed and refuses to start it; others are unaffected', async () => {
    const b = sup.statusOf('broken');
    assert.equal(b?.status, 'failed');
    assert.equal(b?.is_running, false);
    assert.match(b?.last_error ?? '', /invalid manifest: package\.yaml: restart_policy\.policy: /);
    const r = await sup.action('start', ['broken']);
    assert.equal(r[0]?.success, false);
    assert.match(r[0]?.error ?? '', /^invalid_manifest: /);
    assert.equal(sup.statusOf('web')?.is_running, true);
    assert.equal(sup.packageHealth('broken')?.status, 'unhealthy');
  });

  it('leaves operator-stopped packages out of the overall health', async () => {
    const h = sup.health('agent-x');
    assert.equal(h.services.manual?.status, 'unknown');
    assert.equal(h.services.manual?.message, 'stopped');
    // broken + crasher(stopped now) + web: broken is unhealthy, web healthy → degraded.
    assert.equal(h.overall_status, 'degraded');
  });
});

describe('package environment and logs', () => {
  let ws: Workspace;
  let sup: Supervisor;
  const pids = new PidTracker();
  const saved = process.env.OPSPLANE_AGENT_TOKEN;

  before(async () => {
    ws = await workspace();
    process.env.OPSPLANE_AGENT_TOKEN = 'super-secret-token';
    await writePackage(
      ws,
      'envdump',
      `console.log('TOKEN=' + process.env.OPSPLANE_AGENT_TOKEN + ' PKG=' + process.env.OPSPLANE_PACKAGE + ' CFG=' + process.env.OPSPLANE_CONFIG_DIR + ' MINE=' + process.env.MINE);
       console.log('x'.repeat(3000)); setInterval(() => {}, 1000); process.on('SIGTERM', () => process.exit(0));`,
      { env: { MINE: 42 } },
    );
    sup = await Supervisor.create({
      packagesDir: ws.packagesDir,
      dataDir: ws.dataDir,
      logMaxBytes: 2048,
      logKeep: 1,
    });
    await sup.start();
    pids.noteSupervisor(sup);
  });

  after(async () => {
    if (saved === undefined) delete process.env.OPSPLANE_AGENT_TOKEN;
    else process.env.OPSPLANE_AGENT_TOKEN = saved;
    pids.noteSupervisor(sup);
    await sup.shutdown({ stopPackages: true });
    pids.killAll();
    await ws.cleanup();
  });

  it('never passes the agent token to packages; sets the package variables', async () => {
    const log = join(ws.dataDir, 'logs', 'envdump.log');
    const text = await waitFor(async () => {
      const t = await readFile(log, 'utf8');
      return t.includes('TOKEN=') ? t : undefined;
    });
    assert.match(text, /TOKEN=undefined PKG=envdump CFG=\/.*\/envdump\/config MINE=42/);
    assert.doesNotMatch(text, /super-secret-token/);
  });

  it('rotates the log when it exceeds the size cap', async () => {
    await waitFor(
      async () => (await readFile(join(ws.dataDir, 'logs', 'envdump.log'), 'utf8')).length > 2048,
    );
    const r = await sup.action('restart', ['envdump']);
    assert.equal(r[0]?.success, true);
    pids.noteSupervisor(sup);
    const rotated = await readFile(join(ws.dataDir, 'logs', 'envdump.log.1'), 'utf8');
    assert.match(rotated, /TOKEN=/);
    const current = await waitFor(async () => {
      const t = await readFile(join(ws.dataDir, 'logs', 'envdump.log'), 'utf8');
      return t.includes('PKG=') ? t : undefined;
    });
    assert.ok(current.length < rotated.length + 4096);
  });
});
