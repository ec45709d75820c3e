/**
 * The agent side of the protocol against a real WebSocket peer: authentication headers,
 * hello/welcome/heartbeat, every request op, invalid frames, failover, refusal on a bad token.
 */
import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  AGENT_AREA_HEADER,
  AGENT_CODE_HEADER,
  AgentHealthSchema,
  AgentResultSchemas,
  HelloMessageSchema,
  ServiceMetricsSchema,
  SystemMetricsSchema,
} from '@opsplane/models';
import { freePort, sleep, waitFor } from '@opsplane/test-support';
import {
  connectUrl,
  parseAgentConfig,
  startAgent,
  type AgentConfig,
  type RunningAgent,
} from '../src/index.js';
import { ControllerPeer, tokenFor } from './controller-peer.js';
import { PidTracker, SLEEPER, workspace, writePackage, type Workspace } from './helpers.js';

const AREA = 'area-1';
const CODE = 'agent-link-1';

function config(ws: Workspace, controllers: string[], token = tokenFor(AREA, CODE)): AgentConfig {
  return parseAgentConfig(
    {
      agent_code: CODE,
      area: AREA,
      token,
      controllers,
      packages_dir: ws.packagesDir,
      data_dir: ws.dataDir,
      hostname: 'host-1',
      address: '10.0.0.7',
      labels: { rack: 'r1' },
      zone: 'z1',
      heartbeat_interval: '5s',
      reconnect: { initial: '50ms', max: '300ms' },
    },
    { env: {} },
  );
}

describe('controller link', () => {
  let ws: Workspace;
  let a: ControllerPeer;
  let b: ControllerPeer;
  let agent: RunningAgent | undefined;
  const pids = new PidTracker();

  before(async () => {
    ws = await workspace();
    await writePackage(ws, 'web', SLEEPER);
    await writePackage(ws, 'idle', SLEEPER, { autostart: false });
    a = await new ControllerPeer('ctl-a', AREA).start();
    b = await new ControllerPeer('ctl-b', AREA).start();
  });

  after(async () => {
    if (agent) {
      pids.noteSupervisor(agent.supervisor);
      await agent.stop({ stopPackages: true });
    }
    pids.killAll();
    await a.stop();
    await b.stop();
    await ws.cleanup();
  });

  it('maps controller URLs to the connect endpoint', () => {
    assert.equal(connectUrl('http://c1:8080'), 'ws://c1:8080/api/v1/agents/connect');
    assert.equal(connectUrl('https://c1/'), 'wss://c1/api/v1/agents/connect');
    assert.equal(connectUrl('c1:9000'), 'ws://c1:9000/api/v1/agents/connect');
    assert.equal(connectUrl('ws://c1/api/v1/agents/connect'), 'ws://c1/api/v1/agents/connect');
  });

  it('connects with the auth headers, says hello and heartbeats at the welcome interval', async () => {
    agent = await startAgent(config(ws, [a.url, b.url]));
    pids.noteSupervisor(agent.supervisor);
    const connected = new Promise<string>((r) => agent?.link.once('connected', (url) => r(url)));
    assert.equal(await connected, a.url);
    const h = a.upgrades[0];
    assert.equal(h?.[AGENT_CODE_HEADER], CODE);
    assert.equal(h?.[AGENT_AREA_HEADER], AREA);
    assert.equal(h?.authorization, `Bearer ${tokenFor(AREA, CODE)}`);
    const hello = a.of('hello')[0];
    assert.ok(hello);
    assert.ok(HelloMessageSchema.safeParse(hello).success);
    assert.equal(hello.agent.agent_code, CODE);
    assert.equal(hello.agent.hostname, 'host-1');
    assert.equal(hello.agent.address, '10.0.0.7');
    assert.equal(hello.agent.zone, 'z1');
    assert.deepEqual(hello.agent.labels, { rack: 'r1' });
    assert.ok(['amd64', 'arm64'].includes(hello.agent.arch));
    assert.deepEqual(hello.packages.map((p) => p.name).sort(), ['idle', 'web']);
    // welcome said 200 ms (config says 5 s): several heartbeats within a second
    await waitFor(() => a.of('heartbeat').length >= 3, { timeoutMs: 3000, what: 'heartbeats' });
    const hb = a.of('heartbeat');
    assert.deepEqual(hb.map((x) => x.seq).slice(0, 3), [0, 1, 2]);
    assert.equal(hb.at(-1)?.packages.find((p) => p.name === 'web')?.is_running, true);
    assert.equal(agent.link.connected, true);
    assert.equal(agent.link.controllerId, 'ctl-a');
  });

  it('answers every op with a response of the same id and a valid result', async () => {
    const pk = await a.request({ op: 'packages' });
    assert.equal(pk.ok, true);
    const packages = AgentResultSchemas.packages.parse(pk.result).packages;
    assert.equal(packages.find((p) => p.name === 'web')?.status, 'running');

    const start = await a.request({ op: 'action', action: 'start', packages: ['idle', 'ghost'] });
    assert.equal(start.ok, true);
    const results = AgentResultSchemas.action.parse(start.result).results;
    assert.equal(results[0]?.success, true);
    assert.deepEqual(results[1]?.success, false);
    assert.match(results[1]?.error ?? '', /^package_not_found: /);
    pids.noteSupervisor(agent!.supervisor);

    const stopAll = await a.request({ op: 'action', action: 'stop', packages: [] });
    assert.deepEqual(
      AgentResultSchemas.action.parse(stopAll.result).results.map((r) => [r.package, r.success]),
      [
        ['idle', true],
        ['web', true],
      ],
    );

    const health = await a.request({ op: 'health' });
    const ah = AgentHealthSchema.parse(health.result);
    assert.equal(ah.agent_id, CODE);
    assert.equal(ah.overall_status, 'unknown', 'every package stopped by the operator');

    const hp = await a.request({ op: 'health_package', package: 'web' });
    assert.equal(hp.ok, true);
    const missing = await a.request({ op: 'health_package', package: 'ghost' });
    assert.equal(missing.ok, false);
    assert.equal(missing.error?.code, 'package_not_found');

    const sys = await a.request({ op: 'metrics_system' });
    const sm = SystemMetricsSchema.parse(sys.result);
    assert.ok(sm.memory.total_bytes > 0);

    await a.request({ op: 'action', action: 'start', packages: ['web'] });
    pids.noteSupervisor(agent!.supervisor);
    const svc = await a.request({ op: 'metrics_services', running_only: true });
    const services = ServiceMetricsSchema.parse(svc.result).services;
    assert.deepEqual(
      services.map((s) => s.name),
      ['web'],
    );
    assert.ok((services[0]?.rss_bytes ?? 0) > 0);
    const svcMissing = await a.request({ op: 'metrics_services', package: 'ghost' });
    assert.equal(svcMissing.error?.code, 'package_not_found');

    const cfg = await a.request({
      op: 'configs',
      package: 'idle',
      configs: [{ file_name: 'x.conf', content: 'a=1' }],
    });
    assert.equal(AgentResultSchemas.configs.parse(cfg.result).results[0]?.success, true);
  });

  it('refuses traversal file names in configs as a per-package result, writing nothing', async () => {
    const before = await readdir(join(ws.packagesDir, 'idle', 'config'));
    for (const name of ['../x', '/etc/passwd', 'a/b', '.env']) {
      const r = await a.request({
        op: 'configs',
        package: 'idle',
        configs: [{ file_name: name, content: 'evil' }],
      });
      assert.equal(r.ok, true);
      const res = AgentResultSchemas.configs.parse(r.result).results[0];
      assert.equal(res?.success, false);
      assert.match(res?.error ?? '', /^invalid_file_name: /);
    }
    assert.deepEqual(await readdir(join(ws.packagesDir, 'idle', 'config')), before);
    assert.equal((await readdir(ws.packagesDir)).includes('x'), false);
  });

  it('survives invalid frames and answers those with an id with an error', async () => {
    a.sendRaw('not json at all');
    a.sendRaw(JSON.stringify({ type: 'request', request: { op: 'packages' } })); // no id: nothing to answer
    a.sendRaw(JSON.stringify({ type: 'request', id: 'bad-1', request: { op: 'rm -rf /' } }));
    a.sendRaw(
      JSON.stringify({
        type: 'request',
        id: 'bad-2',
        request: { op: 'action', action: 'explode', packages: [] },
      }),
    );
    a.sendRaw(JSON.stringify({ type: 'shell', id: 'bad-3', command: 'id' }));
    for (const id of ['bad-1', 'bad-2', 'bad-3']) {
      const r = await a.response(id);
      assert.equal(r.ok, false);
      assert.equal(r.error?.code, 'bad_request');
    }
    const ok = await a.request({ op: 'packages' });
    assert.equal(ok.ok, true, 'still serving');
    assert.equal(agent?.link.connected, true);
  });

  it('fails over to the next controller when the connection drops, and back', async () => {
    assert.ok(agent);
    const disconnected = new Promise<string>((r) => agent?.link.once('disconnected', (url) => r(url)));
    const reconnected = new Promise<string>((r) => agent?.link.once('connected', (url) => r(url)));
    a.dropAgent();
    assert.equal(await disconnected, a.url);
    assert.equal(await reconnected, b.url);
    assert.equal(agent.link.controllerId, 'ctl-b');
    const r = await b.request({ op: 'packages' });
    assert.equal(r.ok, true);
    // b goes away entirely: round-robin brings the agent back to a
    const back = new Promise<string>((r2) => agent?.link.once('connected', (url) => r2(url)));
    await b.stop();
    assert.equal(await back, a.url);
  });

  it('closes cleanly (1000) on stop', async () => {
    assert.ok(agent);
    const closes = a.closes.length;
    await agent.stop({ stopPackages: true });
    agent = undefined;
    await waitFor(() => a.closes.length > closes, { what: 'close seen by controller' });
    assert.equal(a.closes.at(-1)?.code, 1000);
  });
});

describe('controller link with a wrong token', () => {
  let ws: Workspace;
  let peer: ControllerPeer;
  let agent: RunningAgent | undefined;

  before(async () => {
    ws = await workspace();
    peer = await new ControllerPeer('ctl-x', AREA).start();
  });

  after(async () => {
    await agent?.stop({ stopPackages: true });
    await peer.stop();
    await ws.cleanup();
  });

  it('emits refused on 401 and keeps retrying', async () => {
    const refused: number[] = [];
    agent = await startAgent(config(ws, [peer.url], 'wrong-token'));
    agent.link.on('refused', (_url, status) => refused.push(status));
    await waitFor(() => refused.length >= 2, { timeoutMs: 5000, what: 'two refusals' });
    assert.deepEqual([...new Set(refused)], [401]);
    assert.equal(agent.link.connected, false);
    assert.ok(peer.refusedCount >= 2);
    assert.equal(peer.of('hello').length, 0);
  });

  it('retries a dead first URL and connects to the second', async () => {
    await agent?.stop();
    const dead = `http://127.0.0.1:${await freePort()}`;
    agent = await startAgent(config(ws, [dead, peer.url]));
    const url = await new Promise<string>((r) => agent?.link.once('connected', (u) => r(u)));
    assert.equal(url, peer.url);
    await sleep(50);
  });
});
