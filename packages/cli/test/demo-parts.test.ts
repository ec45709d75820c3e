/**
 * The pieces of `opsplane demo`, fast and without starting the system: log line rendering, the
 * generated config files (run through the real server, controller and agent loaders), the
 * sample packages of @opsplane/fleet (installed, validated as manifests, and run as the real
 * programs they are), the lock and the secrets file.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { appendFileSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { loadAgentConfig, loadManifest } from '@opsplane/agent';
import { loadControllerConfig } from '@opsplane/controller';
import {
  agentConfig,
  controllerConfig,
  DEMO_TIMING,
  FAST_TIMING,
  installSamplePackage,
  toYaml,
} from '@opsplane/fleet';
import { loadServerConfig } from '@opsplane/server';
import { ChildLogs, formatLogLine } from '../src/demo/child-logs.js';
import { agentHeader, controllerHeader, demoAgentIdentity, platformYaml } from '../src/demo/configs.js';
import { acquireLock, generatePassword, loadOrCreateSecrets } from '../src/demo/demo-state.js';

const dirs: string[] = [];
const tmp = () => {
  const d = mkdtempSync(join(tmpdir(), 'opsplane-demo-parts-'));
  dirs.push(d);
  return d;
};
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => resolve(typeof a === 'object' && a ? a.port : 0));
    });
  });
}

describe('demo log lines', () => {
  it('renders pino lines as time, level, message and the remaining fields', () => {
    const f = formatLogLine(
      JSON.stringify({
        level: 40,
        time: '2024-05-01T10:11:12.000Z',
        pid: 1,
        component: 'controller',
        msg: 'agent refused',
        agent: 'agt-1',
        reason: 'bad token',
      }),
    );
    assert.equal(f.level, 'WARN');
    assert.match(f.time ?? '', /^\d\d:\d\d:\d\d$/);
    assert.equal(f.text, 'agent refused  agent=agt-1 reason="bad token"');
    assert.equal(f.noise, false);
  });

  it("renders etcd's zap lines and passes other text through", () => {
    const z = formatLogLine(
      '{"level":"warn","ts":"2024-05-01T10:11:12.000Z","caller":"etcdserver/x.go:1","msg":"slow fdatasync","took":"1.2s"}',
    );
    assert.equal(z.level, 'WARN');
    assert.equal(z.text, 'slow fdatasync  took=1.2s');
    assert.deepEqual(formatLogLine('opsplane agent: SIGTERM received; shutting down  '), {
      text: 'opsplane agent: SIGTERM received; shutting down',
      noise: false,
    });
    assert.equal(formatLogLine('{"level":30,"msg":"request completed","responseTime":3}').noise, true);
  });

  it('prefixes each line with the padded process name, colors only when asked', () => {
    const out: string[] = [];
    const logs = new ChildLogs({ write: (t) => out.push(t), color: false });
    logs.reserve(['ctrl-1a', 'demo-a1-1']);
    logs.childLine('etcd', '{"level":"info","ts":1714558272.5,"msg":"ready"}');
    logs.childLine('server', '{"level":30,"msg":"incoming request"}'); // noise: dropped
    logs.line('ctrl-1a', 'plain');
    assert.equal(out.length, 2);
    assert.match(out[0] as string, /^\[etcd\] {6}\d\d:\d\d:\d\d INFO {2}ready\n$/);
    assert.equal(out[1], '[ctrl-1a]   plain\n');
    const colored: string[] = [];
    new ChildLogs({ write: (t) => colored.push(t), color: true }).line('etcd', 'x');
    assert.ok(colored[0]?.startsWith('\u001b['), JSON.stringify(colored));
  });
});

describe('demo config files', () => {
  it('toYaml writes what a YAML parser reads back', async () => {
    const dir = tmp();
    const doc = {
      plain: 'area-1',
      tricky: ['yes', '0123', 'a: b', '', 'http://127.0.0.1:8080', '#x'],
      nested: { empty: {}, n: 3, b: false, nil: null },
      list: [{ a: 1, b: 'two' }, { a: 2 }],
    };
    writeFileSync(join(dir, 'x.yaml'), toYaml(doc, 'header\n\nline'));
    const { parse } = await import('yaml');
    assert.deepEqual(parse(readFileSync(join(dir, 'x.yaml'), 'utf8')), doc);
  });

  it('platform.yaml loads in the server with both areas and the listen address', async () => {
    const dir = tmp();
    const areas = {
      'area-1': { agent_secret: 's'.repeat(32), controller_token: 'tok-1' },
      'area-2': { agent_secret: 't'.repeat(32), controller_token: 'tok-2' },
    };
    const file = join(dir, 'platform.yaml');
    writeFileSync(
      file,
      platformYaml({
        etcdUrl: 'http://127.0.0.1:2399',
        port: 8123,
        serverDataDir: join(dir, 'server'),
        areas,
      }),
    );
    const c = await loadServerConfig(file, {}, {});
    assert.equal(c.server.listen, '127.0.0.1:8123');
    assert.equal(c.server.data_dir, join(dir, 'server'));
    assert.deepEqual(c.etcd.endpoints, ['http://127.0.0.1:2399']);
    assert.equal(c.areas['area-1']?.agent_secret?.reveal(), areas['area-1'].agent_secret);
    assert.equal(c.areas['area-2']?.controller_token?.reveal(), 'tok-2');
  });

  it('controller.yaml loads in the controller (secrets from the environment)', async () => {
    const dir = tmp();
    const file = join(dir, 'controller.yaml');
    const doc = controllerConfig({
      id: 'ctrl-1a',
      area: 'area-1',
      listen: '127.0.0.1:9001',
      etcdEndpoints: ['http://127.0.0.1:2399'],
      prefix: 'controllers/',
      timing: DEMO_TIMING,
    });
    writeFileSync(file, toYaml(doc, controllerHeader({ area: 'area-1', configPath: file })));
    const c = await loadControllerConfig({
      file,
      env: { OPSPLANE_AGENT_SECRET: 'x'.repeat(20), OPSPLANE_CONTROLLER_TOKEN: 'tok' },
    });
    assert.equal(c.id, 'ctrl-1a');
    assert.deepEqual(c.listen, { host: '127.0.0.1', port: 9001 });
    assert.equal(c.apiToken, 'tok');
    assert.equal(c.agents.heartbeatIntervalMs, 2000);
    assert.ok(c.leaseTtlSeconds <= 10);
  });

  it('agent.yaml loads in the agent, stops packages on exit, paths next to the file', async () => {
    const dir = tmp();
    const file = join(dir, 'agent.yaml');
    const doc = agentConfig({
      code: 'agt-abcdefgh2345',
      area: 'area-1',
      controllerUrls: ['http://127.0.0.1:1', 'http://127.0.0.1:2'],
      ...demoAgentIdentity('demo-a1-1', 'area-1'),
      timing: DEMO_TIMING,
      stopPackagesOnExit: true,
    });
    writeFileSync(
      file,
      toYaml(doc, agentHeader({ code: 'agt-abcdefgh2345', name: 'demo-a1-1', area: 'area-1' })),
    );
    const c = await loadAgentConfig(file, { OPSPLANE_AGENT_TOKEN: 'f'.repeat(64) });
    assert.equal(c.agentCode, 'agt-abcdefgh2345');
    assert.equal(c.stopPackagesOnExit, true);
    assert.deepEqual(c.controllers, ['http://127.0.0.1:1', 'http://127.0.0.1:2']);
    assert.equal(c.packagesDir, join(dir, 'packages'));
    assert.equal(c.dataDir, join(dir, 'data'));
    assert.equal(c.hostname, 'demo-a1-1');
  });
});

describe('sample packages (@opsplane/fleet)', () => {
  it('install as valid manifests with the placeholders filled; configs survive a re-install', async () => {
    const dir = tmp();
    const webDir = await installSamplePackage('web', dir, { NODE: process.execPath, WEB_PORT: 18080 });
    const colDir = await installSamplePackage('collector', dir, { NODE: process.execPath, WEB_PORT: 18080 });
    const web = await loadManifest(webDir);
    assert.equal(web.command, process.execPath);
    assert.deepEqual(web.args, [join(webDir, 'web.mjs')]);
    assert.equal(web.env.WEB_PORT, '18080');
    assert.deepEqual(web.healthCheck.type === 'http' && web.healthCheck.url, 'http://127.0.0.1:18080/health');
    assert.equal(web.restartPolicy.policy, 'on-failure');
    const col = await loadManifest(colDir);
    assert.equal(col.healthCheck.type, 'exec');
    assert.doesNotMatch(readFileSync(join(colDir, 'package.yaml'), 'utf8'), /\{\{/);
    // An operator's (or a config push's) change to a config file is kept; the manifest follows the new port.
    writeFileSync(join(webDir, 'config', 'web.yaml'), 'message: changed\n');
    await installSamplePackage('web', dir, { NODE: process.execPath, WEB_PORT: 18081 });
    assert.equal(readFileSync(join(webDir, 'config', 'web.yaml'), 'utf8'), 'message: changed\n');
    assert.equal((await loadManifest(webDir)).env.WEB_PORT, '18081');
    assert.ok(statSync(join(webDir, 'web.mjs')).mode & 0o100, 'programs stay executable');
  });

  it("a test fleet's overrides: FAST_TIMING merged in, a health check of another type replaced", async () => {
    const dir = tmp();
    const values = { NODE: process.execPath, WEB_PORT: 18082 };
    const web = await loadManifest(
      await installSamplePackage('web', dir, values, {
        manifest: { ...FAST_TIMING.packages?.web, env: { FLEET_TAG: 't1' } },
        config: { healthy: false, message: 'a: b' },
      }),
    );
    assert.deepEqual(web.healthCheck.type === 'http' && web.healthCheck.url, 'http://127.0.0.1:18082/health');
    assert.equal(web.healthCheck.intervalMs, 200);
    assert.equal(web.restartPolicy.policy, 'always');
    assert.deepEqual(web.env, { WEB_PORT: '18082', FLEET_TAG: 't1' });
    assert.equal(
      readFileSync(join(dir, 'web', 'config', 'web.yaml'), 'utf8'),
      'healthy: false\nmessage: "a: b"\n',
    );
    const col = await loadManifest(
      await installSamplePackage('collector', dir, values, {
        name: 'col2',
        manifest: FAST_TIMING.packages?.collector,
      }),
    );
    assert.equal(col.name, 'col2');
    assert.equal(col.healthCheck.type, 'process');
    assert.equal(col.restartPolicy.backoffInitialMs, 100);
  });

  it('web serves /health (503 when its config says healthy: false) and logs requests', async () => {
    const dir = tmp();
    const webDir = await installSamplePackage('web', dir, { NODE: process.execPath, WEB_PORT: 1 });
    const run = async (config: string) => {
      writeFileSync(join(webDir, 'config', 'web.yaml'), config);
      const port = await freePort();
      const child = spawn(process.execPath, [join(webDir, 'web.mjs')], {
        env: {
          ...process.env,
          WEB_PORT: String(port),
          OPSPLANE_PACKAGE_DIR: webDir,
          OPSPLANE_CONFIG_DIR: join(webDir, 'config'),
        },
        stdio: 'ignore',
      });
      try {
        for (let i = 0; ; i++) {
          try {
            const health = await fetch(`http://127.0.0.1:${port}/health`);
            const root = (await (await fetch(`http://127.0.0.1:${port}/`)).json()) as {
              message: string;
              pid: number;
            };
            return { health: health.status, root };
          } catch (e) {
            if (i > 100) throw e;
            await sleep(50);
          }
        }
      } finally {
        child.kill('SIGTERM');
        await new Promise((r) => child.once('exit', r));
      }
    };
    const ok = await run('message: "hi there"  # comment\nhealthy: true\naccess_log: access.log\n');
    assert.equal(ok.health, 200);
    assert.equal(ok.root.message, 'hi there');
    assert.match(readFileSync(join(webDir, 'access.log'), 'utf8'), /GET \/health 200/);
    const bad = await run('healthy: false\n');
    assert.equal(bad.health, 503);
    // JSON is YAML too.
    const json = await run('{"healthy": true, "message": "from json"}\n');
    assert.equal(json.health, 200);
    assert.equal(json.root.message, 'from json');
  });

  it('collector counts new lines of the tailed file; check.mjs says whether it is alive', async () => {
    const dir = tmp();
    const colDir = await installSamplePackage('collector', dir, { NODE: process.execPath, WEB_PORT: 1 });
    const log = join(dir, 'some.log');
    writeFileSync(log, 'old line\n');
    writeFileSync(join(colDir, 'config', 'collector.yaml'), `path: ${log}\ninterval: 100ms\nlabel: t\n`);
    const env = { ...process.env, OPSPLANE_PACKAGE_DIR: colDir, OPSPLANE_CONFIG_DIR: join(colDir, 'config') };
    const check = () => spawnSync(process.execPath, [join(colDir, 'check.mjs')], { env, encoding: 'utf8' });
    assert.equal(check().status, 1, 'no state yet → unhealthy');
    const child = spawn(process.execPath, [join(colDir, 'collector.mjs')], { env, stdio: 'ignore' });
    try {
      const state = () => {
        try {
          return JSON.parse(readFileSync(join(colDir, 'collector-state.json'), 'utf8')) as {
            lines_total: number;
            label: string;
            config: Record<string, unknown>;
          };
        } catch {
          return undefined;
        }
      };
      for (let i = 0; !state() && i < 100; i++) await sleep(50);
      appendFileSync(log, 'one\ntwo\nthree\n');
      for (let i = 0; (state()?.lines_total ?? 0) < 3 && i < 100; i++) await sleep(50);
      assert.equal(state()?.lines_total, 3, 'counts only lines written after it started');
      assert.equal(state()?.label, 't');
      assert.equal(check().status, 0);
      // It tails its config file too: the state says what is on disk now.
      writeFileSync(join(colDir, 'config', 'collector.yaml'), `path: ${log}\ninterval: 100ms\nlabel: t2\n`);
      for (let i = 0; state()?.config.label !== 't2' && i < 100; i++) await sleep(50);
      assert.equal(state()?.config.label, 't2');
    } finally {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    }
    writeFileSync(join(colDir, 'config', 'collector.yaml'), 'exit_code: 3\n');
    assert.equal(spawnSync(process.execPath, [join(colDir, 'collector.mjs')], { env }).status, 3);
  });
});

describe('demo lock and secrets', () => {
  it('one demo per data dir: a live holder refuses, a dead one is taken over', () => {
    const dir = tmp();
    const first = acquireLock(dir);
    assert.ok(first.ok);
    first.lock.update({ api_url: 'http://127.0.0.1:8080' });
    const second = acquireLock(dir);
    assert.equal(second.ok, false);
    assert.equal(!second.ok && second.holder.pid, process.pid);
    assert.equal(!second.ok && second.holder.api_url, 'http://127.0.0.1:8080');
    first.lock.release();
    const third = acquireLock(dir);
    assert.ok(third.ok);
    third.lock.release();
    // A lock left by a process that is gone (a demo killed hard).
    const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], {
      encoding: 'utf8',
    });
    writeFileSync(join(dir, 'demo.lock'), JSON.stringify({ pid: Number(dead.stdout), started_at: 'then' }));
    const taken = acquireLock(dir);
    assert.ok(taken.ok);
    assert.equal(taken.ok && taken.tookOver?.pid, Number(dead.stdout));
    taken.lock.release();
  });

  it('secrets.json is created 0600 and reused; OPSPLANE_ADMIN_PASSWORD is never written down', () => {
    const dir = tmp();
    const a = loadOrCreateSecrets(dir, ['area-1', 'area-2'], { adminFromEnv: false });
    assert.equal(statSync(join(dir, 'secrets.json')).mode & 0o777, 0o600);
    assert.match(a.admin_password ?? '', /^[A-Za-z0-9]{5}(-[A-Za-z0-9]{5}){3}$/);
    assert.ok((a.areas['area-1']?.agent_secret.length ?? 0) >= 16);
    assert.notEqual(a.areas['area-1']?.agent_secret, a.areas['area-2']?.agent_secret);
    const b = loadOrCreateSecrets(dir, ['area-1', 'area-2', 'area-3'], { adminFromEnv: true });
    assert.equal(b.admin_password, a.admin_password);
    assert.deepEqual(b.areas['area-1'], a.areas['area-1']);
    assert.ok(b.areas['area-3']);
    const other = tmp();
    assert.equal(loadOrCreateSecrets(other, ['area-1'], { adminFromEnv: true }).admin_password, undefined);
    assert.notEqual(generatePassword(), generatePassword());
  });
});
