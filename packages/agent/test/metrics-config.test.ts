/** Host and service metrics from /proc, the Prometheus endpoint, and agent.yaml / package.yaml parsing. */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ServiceMetricsSchema, SystemMetricsSchema } from '@opsplane/models';
import { freePort } from '@opsplane/test-support';
import {
  AgentConfigError,
  loadAgentConfig,
  loadManifest,
  ServiceMetricsCollector,
  startAgent,
  Supervisor,
  SystemMetricsCollector,
  type RunningAgent,
} from '../src/index.js';
import { PidTracker, SLEEPER, waitStatus, workspace, writePackage, type Workspace } from './helpers.js';

const examples = new URL('../../examples/', import.meta.url).pathname;

describe('system metrics', () => {
  it('collects sane host values', async () => {
    const c = new SystemMetricsCollector('agent-m');
    const m = SystemMetricsSchema.parse(await c.collect());
    assert.equal(m.agent_id, 'agent-m');
    assert.ok(m.memory.total_bytes > 0);
    assert.ok(m.memory.used_bytes > 0 && m.memory.used_bytes <= m.memory.total_bytes);
    assert.ok((m.uptime_seconds ?? 0) > 0);
    assert.ok(m.cpu_percent >= 0 && m.cpu_percent <= 100);
    assert.ok((m.cpu_count ?? 0) >= 1);
    assert.ok(m.load_average.load1 >= 0);
    assert.ok(m.disks.length >= 1, 'at least one real file system');
    for (const d of m.disks) assert.ok(d.total_bytes > 0 && d.used_bytes <= d.total_bytes, JSON.stringify(d));
    assert.ok(!m.network.interfaces?.some((i) => i.name === 'lo'));
    // a second collection diffs against the first
    const m2 = await c.collect();
    assert.ok(m2.cpu_percent >= 0 && m2.cpu_percent <= 100);
  });
});

describe('service metrics and the metrics endpoint', () => {
  let ws: Workspace;
  let agent: RunningAgent;
  const pids = new PidTracker();

  before(async () => {
    ws = await workspace();
    // A package that forks a busy child: its CPU shows up in the group's total.
    await writePackage(
      ws,
      'busy',
      `const { spawn } = require('child_process');
       spawn(process.execPath, ['-e', 'for(;;){}'], { stdio: 'ignore' });
       setInterval(() => {}, 1000); process.on('SIGTERM', () => process.exit(0));`,
    );
    await writePackage(ws, 'idle', SLEEPER, { autostart: false });
    await writeFile(
      join(ws.root, 'agent.yaml'),
      [
        'agent_code: agent-m',
        'area: area-1',
        'token: t',
        `controllers: ["http://127.0.0.1:${await freePort()}"]`,
        'packages_dir: packages',
        'data_dir: data',
        'metrics_listen: 127.0.0.1:0',
      ].join('\n'),
    );
    agent = await startAgent(await loadAgentConfig(join(ws.root, 'agent.yaml'), {}));
    pids.note(await waitStatus(agent.supervisor, 'busy', (s) => s.is_running, 'running'));
  });

  after(async () => {
    pids.noteSupervisor(agent.supervisor);
    await agent.stop({ stopPackages: true });
    pids.killAll();
    await ws.cleanup();
  });

  it('sums CPU and RSS over the package process group', async () => {
    const c = new ServiceMetricsCollector('agent-m', agent.supervisor);
    const all = ServiceMetricsSchema.parse(await c.collect());
    assert.deepEqual(all.services.map((s) => s.name).sort(), ['busy', 'idle']);
    const busy = all.services.find((s) => s.name === 'busy');
    assert.equal(busy?.is_running, true);
    assert.ok((busy?.rss_bytes ?? 0) > 10 * 1024 * 1024, `rss ${busy?.rss_bytes}`);
    // The busy loop runs in a child of the package process: a parent-only reading would be ~0.
    // Under a loaded machine the loop gets far less than a core, so the bar is low.
    assert.ok((busy?.cpu_percent ?? 0) > 2, `cpu ${busy?.cpu_percent} (busy child counted)`);
    const idle = all.services.find((s) => s.name === 'idle');
    assert.deepEqual([idle?.is_running, idle?.cpu_percent, idle?.rss_bytes], [false, 0, 0]);
    const running = await c.collect({ runningOnly: true });
    assert.deepEqual(
      running.services.map((s) => s.name),
      ['busy'],
    );
    const one = await c.collect({ package: 'idle' });
    assert.deepEqual(
      one.services.map((s) => s.name),
      ['idle'],
    );
  });

  it('serves /metrics and /healthz', async () => {
    const addr = agent.metricsAddress;
    assert.ok(addr && addr.port > 0);
    const base = `http://127.0.0.1:${addr.port}`;
    const m = await fetch(`${base}/metrics`, { headers: { connection: 'close' } });
    assert.equal(m.status, 200);
    const text = await m.text();
    assert.match(text, /opsplane_agent_package_up\{package="busy"\} 1/);
    assert.match(text, /opsplane_agent_package_up\{package="idle"\} 0/);
    assert.match(text, /opsplane_agent_connected 0/);
    const h = await fetch(`${base}/healthz`, { headers: { connection: 'close' } });
    assert.equal(h.status, 200);
    const body = (await h.json()) as { status: string; connected: boolean };
    assert.equal(body.status, 'ok');
    assert.equal(body.connected, false);
    assert.equal((await fetch(`${base}/nope`, { headers: { connection: 'close' } })).status, 404);
  });
});

describe('agent.yaml', () => {
  let ws: Workspace;
  before(async () => {
    ws = await workspace();
  });
  after(async () => {
    await ws.cleanup();
  });

  const load = async (text: string, env: NodeJS.ProcessEnv = {}) => {
    const p = join(ws.root, 'agent.yaml');
    await writeFile(p, text);
    return loadAgentConfig(p, env);
  };
  const base = 'agent_code: a1\narea: area-1\ncontrollers: [http://c1:8080]\npackages_dir: pk\ndata_dir: d\n';

  it('parses the shipped example with defaults applied', async () => {
    const c = await loadAgentConfig(join(examples, 'agent.yaml'), {});
    assert.equal(c.agentCode, 'dev-7f3a9c21');
    assert.deepEqual(c.controllers.length, 2);
    assert.equal(c.heartbeatIntervalMs, 10_000);
    assert.deepEqual(c.reconnect, { initialMs: 500, maxMs: 30_000 });
    assert.deepEqual(c.metricsListen, { host: '127.0.0.1', port: 9464 });
    assert.equal(c.labels.role, 'web');
  });

  it('resolves relative paths against the file and lets OPSPLANE_AGENT_TOKEN win', async () => {
    const c = await load(`${base}token: from-file\n`, { OPSPLANE_AGENT_TOKEN: 'from-env' });
    assert.equal(c.token, 'from-env');
    assert.equal(c.packagesDir, join(ws.root, 'pk'));
    assert.equal(c.dataDir, join(ws.root, 'd'));
    assert.equal(c.heartbeatIntervalMs, 10_000);
    assert.ok(c.address.length > 0);
    const c2 = await load(`${base}token: from-file\nheartbeat_interval: 2m\nreconnect: { initial: 250ms }\n`);
    assert.equal(c2.token, 'from-file');
    assert.equal(c2.heartbeatIntervalMs, 120_000);
    assert.deepEqual(c2.reconnect, { initialMs: 250, maxMs: 30_000 });
  });

  it('names the field in errors', async () => {
    const cases: [string, RegExp][] = [
      [base, /token: required/],
      [`${base}token: t\nheartbeat_interval: 10\n`, /heartbeat_interval: must be a duration with a unit/],
      [
        `${base}token: t\nreconnect: { initial: 5s, max: 1s }\n`,
        /reconnect\.max must be at least reconnect\.initial/,
      ],
      [`${base}token: t\nmetrics_listen: nope\n`, /metrics_listen: must be host:port/],
      [`${base}token: t\nheartbeat_intervall: 5s\n`, /Unrecognized key.*heartbeat_intervall/],
      [base.replace('a1', '../evil') + 'token: t\n', /agent_code: /],
      [
        base.replace('[http://c1:8080]', '[ftp://x]') + 'token: t\n',
        /controllers\.0: must be an http\(s\):\/\/ or ws\(s\):\/\/ URL/,
      ],
      ['agent_code: [unclosed\n', /invalid YAML/],
    ];
    for (const [text, re] of cases) {
      await assert.rejects(load(text), (e: unknown) => {
        assert.ok(e instanceof AgentConfigError, String(e));
        assert.match(e.message, re);
        assert.ok(e.message.startsWith(join(ws.root, 'agent.yaml')));
        return true;
      });
    }
    await assert.rejects(loadAgentConfig(join(ws.root, 'missing.yaml'), {}), /cannot read: ENOENT/);
  });
});

describe('package.yaml', () => {
  let ws: Workspace;
  before(async () => {
    ws = await workspace();
  });
  after(async () => {
    await ws.cleanup();
  });

  it('parses the shipped example', async () => {
    const m = await loadManifest(join(examples, 'packages', 'node-exporter'));
    assert.equal(m.name, 'node-exporter');
    assert.equal(m.command, join(m.packageDir, 'bin', 'node_exporter'));
    assert.deepEqual(m.env, { GOMAXPROCS: '2' });
    assert.equal(m.healthCheck.type, 'http');
    assert.equal(m.healthCheck.startPeriodMs, 15_000);
    assert.deepEqual(m.restartPolicy, {
      policy: 'always',
      maxRetries: 5,
      backoffInitialMs: 1000,
      backoffMaxMs: 30_000,
      resetAfterMs: 60_000,
    });
  });

  it('applies defaults and reports problems per package', async () => {
    await writePackage(ws, 'plain', SLEEPER);
    const m = await loadManifest(join(ws.packagesDir, 'plain'));
    assert.equal(m.autostart, true);
    assert.equal(m.healthCheck.type, 'process');
    assert.equal(m.configDir, join(m.packageDir, 'config'));
    assert.equal(m.restartPolicy.policy, 'always');

    await writePackage(ws, 'escape', SLEEPER, { working_dir: '../..' });
    await writePackage(ws, 'misnamed', SLEEPER, { name: 'other' });
    await writePackage(ws, 'badcheck', SLEEPER, { health_check: { type: 'http' } });
    await writePackage(ws, 'badtype', SLEEPER, { health_check: { type: 'ping' } });
    const sup = await Supervisor.create({ packagesDir: ws.packagesDir, dataDir: join(ws.root, 'data') });
    const err = (n: string) => sup.statusOf(n)?.last_error ?? '';
    assert.match(err('escape'), /working_dir: '\.\.\/\.\.' leaves the package dir/);
    assert.match(err('misnamed'), /name 'other' must equal the directory name 'misnamed'/);
    assert.match(err('badcheck'), /health_check\.url/);
    assert.match(err('badtype'), /health_check\.type: type must be one of/);
    assert.equal(sup.statusOf('plain')?.last_error, undefined);
  });
});
