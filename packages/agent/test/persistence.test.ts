/**
 * State across agent restarts: stop() leaves packages running and the next agent adopts them
 * (same pid); an operator-stopped package stays stopped; a package that died meanwhile is
 * started again; stop({ stopPackages: true }) stops them but keeps the desired state.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { freePort, waitFor } from '@opsplane/test-support';
import { parseAgentConfig, startAgent, type AgentConfig, type RunningAgent } from '../src/index.js';
import {
  alive,
  FAST_RESTARTS,
  PidTracker,
  SLEEPER,
  waitStatus,
  workspace,
  writePackage,
  type Workspace,
} from './helpers.js';

describe('agent restart', () => {
  let ws: Workspace;
  let config: AgentConfig;
  let agent: RunningAgent | undefined;
  const pids = new PidTracker();

  before(async () => {
    ws = await workspace();
    await writePackage(ws, 'svc', SLEEPER, { restart_policy: FAST_RESTARTS });
    await writePackage(ws, 'held', SLEEPER);
    await writePackage(ws, 'later', SLEEPER, { autostart: false });
    // Nobody listens there: the link just keeps retrying in the background.
    config = parseAgentConfig(
      {
        agent_code: 'agent-persist',
        area: 'area-1',
        token: 't',
        controllers: [`http://127.0.0.1:${await freePort()}`],
        packages_dir: ws.packagesDir,
        data_dir: ws.dataDir,
        reconnect: { initial: '100ms', max: '500ms' },
      },
      { env: {} },
    );
  });

  after(async () => {
    if (agent) {
      pids.noteSupervisor(agent.supervisor);
      await agent.stop({ stopPackages: true });
    }
    pids.killAll();
    await ws.cleanup();
  });

  it('re-adopts a running package (same pid) and keeps a stopped one stopped', async () => {
    agent = await startAgent(config);
    const svc = await waitStatus(agent.supervisor, 'svc', (s) => s.is_running, 'running');
    pids.note(svc);
    pids.note(await waitStatus(agent.supervisor, 'held', (s) => s.is_running, 'running'));
    const stop = await agent.supervisor.action('stop', ['held']);
    assert.equal(stop[0]?.success, true);
    await agent.stop();
    agent = undefined;

    // Packages outlive the agent; state.json says who they are.
    assert.equal(alive(svc.pid ?? 0), true);
    const state = JSON.parse(await readFile(join(ws.dataDir, 'state.json'), 'utf8')) as {
      packages: Record<string, { desired: string; pid?: number; start_time?: string }>;
    };
    assert.equal(state.packages.svc?.desired, 'running');
    assert.equal(state.packages.svc?.pid, svc.pid);
    assert.match(state.packages.svc?.start_time ?? '', /^\d+$/);
    assert.deepEqual(state.packages.held, { desired: 'stopped' });
    assert.deepEqual(state.packages.later, { desired: 'stopped' });

    agent = await startAgent(config);
    const again = agent.supervisor.statusOf('svc');
    assert.equal(again?.pid, svc.pid, 'adopted, not restarted');
    assert.equal(again?.is_running, true);
    assert.ok((again?.uptime_seconds ?? 0) > 0);
    assert.equal(agent.supervisor.statusOf('held')?.status, 'stopped');
    assert.equal(agent.supervisor.statusOf('later')?.status, 'stopped');
  });

  it('watches an adopted process: killing it restarts the package', async () => {
    assert.ok(agent);
    const s = agent.supervisor.statusOf('svc');
    process.kill(s?.pid ?? 0, 'SIGKILL');
    const next = await waitStatus(
      agent.supervisor,
      'svc',
      (x) => x.is_running && x.pid !== s?.pid,
      'restarted',
    );
    pids.note(next);
    assert.match(next.last_error ?? '', /adopted process/);
  });

  it('stops an adopted process through its process group', async () => {
    assert.ok(agent);
    await agent.stop();
    agent = await startAgent(config);
    const s = pids.note(agent.supervisor.statusOf('svc'));
    const r = await agent.supervisor.action('stop', ['svc']);
    assert.equal(r[0]?.success, true, JSON.stringify(r));
    await waitFor(() => !alive(s?.pid ?? 0), { what: 'adopted process gone' });
    await agent.supervisor.action('start', ['svc']);
  });

  it('starts a package whose process died while the agent was down', async () => {
    assert.ok(agent);
    const s = agent.supervisor.statusOf('svc');
    await agent.stop();
    agent = undefined;
    process.kill(-(s?.pid ?? 0), 'SIGKILL');
    await waitFor(() => !alive(s?.pid ?? 0), { what: 'killed' });
    agent = await startAgent(config);
    const next = await waitStatus(agent.supervisor, 'svc', (x) => x.is_running, 'running');
    pids.note(next);
    assert.notEqual(next.pid, s?.pid);
  });

  it('stop({ stopPackages: true }) stops packages but the next run starts them again', async () => {
    assert.ok(agent);
    const s = pids.note(agent.supervisor.statusOf('svc'));
    await agent.stop({ stopPackages: true });
    agent = undefined;
    assert.equal(alive(s?.pid ?? 0), false);
    agent = await startAgent(config);
    const next = await waitStatus(agent.supervisor, 'svc', (x) => x.is_running, 'running');
    pids.note(next);
    assert.equal(agent.supervisor.statusOf('held')?.status, 'stopped');
  });
});

describe('agent restart across processes (as the CLI runs it)', () => {
  let ws: Workspace;
  const pids = new PidTracker();

  before(async () => {
    ws = await workspace();
  });

  after(async () => {
    pids.killAll();
    await ws.cleanup();
  });

  it('a new agent process adopts the package the old one left running', async () => {
    const { spawnTracked } = await import('@opsplane/test-support');
    const { writeFile } = await import('node:fs/promises');
    await writePackage(ws, 'svc', SLEEPER);
    const cfgPath = join(ws.root, 'agent.yaml');
    await writeFile(
      cfgPath,
      [
        'agent_code: agent-proc',
        'area: area-1',
        'token: t',
        `controllers: ["http://127.0.0.1:${await freePort()}"]`,
        'packages_dir: packages',
        'data_dir: data',
        'reconnect: { initial: 100ms, max: 500ms }',
      ].join('\n'),
    );
    const entry = new URL('../src/index.js', import.meta.url).href;
    const script = join(ws.root, 'run-agent.mjs');
    await writeFile(
      script,
      `import { startAgent, loadAgentConfig } from ${JSON.stringify(entry)};
// Handler first: a SIGTERM racing the start-up must not kill the process with the default action.
let agent;
process.on('SIGTERM', () => void agent?.stop());
agent = await startAgent(await loadAgentConfig(process.argv[2]));
console.log('STATUS ' + JSON.stringify(agent.supervisor.statusOf('svc')));
`,
    );
    const first = spawnTracked('agent-1', process.execPath, [script, cfgPath], {
      env: { ...process.env, OPSPLANE_LOG_LEVEL: 'silent' },
    });
    const out1 = await first.waitForOutput(/STATUS .*\n/);
    const s1 = JSON.parse(/STATUS (.*)\n/.exec(out1)?.[1] ?? '{}') as { pid?: number };
    pids.note({
      name: 'svc',
      is_running: true,
      version: '',
      duration: 0,
      ...(s1.pid ? { pid: s1.pid } : {}),
    });
    assert.ok(s1.pid);
    // One agent per data_dir: a second one is refused while the first lives.
    const { loadAgentConfig, AgentLockedError } = await import('../src/index.js');
    await assert.rejects(
      startAgent(await loadAgentConfig(cfgPath)),
      (e: unknown) => e instanceof AgentLockedError,
    );
    const { existsSync } = await import('node:fs');
    assert.ok(
      existsSync(join(ws.root, 'data', 'agent.lock')),
      "the refused agent leaves the other's lock alone",
    );
    first.child.kill('SIGTERM'); // the agent alone, not its package group
    const exit = await first.exited;
    assert.equal(exit.code, 0, first.output());
    assert.equal(alive(s1.pid), true, 'package outlives the agent process');

    const second = spawnTracked('agent-2', process.execPath, [script, cfgPath], {
      env: { ...process.env, OPSPLANE_LOG_LEVEL: 'silent' },
    });
    const out2 = await second.waitForOutput(/STATUS .*\n/);
    const s2 = JSON.parse(/STATUS (.*)\n/.exec(out2)?.[1] ?? '{}') as { pid?: number; is_running?: boolean };
    assert.equal(s2.pid, s1.pid, 'adopted by the new agent process');
    assert.equal(s2.is_running, true);
    second.child.kill('SIGTERM');
    await second.exited;
  });
});
