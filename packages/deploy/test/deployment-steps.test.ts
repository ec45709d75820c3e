/**
 * The deployment walk against a scripted host: an in-memory HostInstaller whose agent, once
 * (re)started, says hello to a scripted controller at once (before the walk asks), as a quick
 * agent does. The real walk on real sshd hosts is the server's deploy.test.ts; this one pins
 * the order of steps and reports, the rollback, cancellation, and that the wait for the agent
 * returns at its first answer.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { AgentNotFoundError } from '@opsplane/models';
import {
  AgentNotInstalledError,
  DeploymentCancelledError,
  runDeployment,
  STEPS,
  UpgradeRolledBackError,
  type AgentBundleInfo,
  type DeploymentInput,
  type DeploymentKind,
  type DeploymentReporter,
  type HostInstaller,
  type InstalledVersions,
  type OnlineWatch,
} from '../src/index.js';

/** The agent as its (one) controller lists it; its clock ticks once per event. */
class ScriptedController {
  clock = 1_000;
  record: { status: string; version: string; hbMs: number } | undefined;
  looks = 0;

  hello(version: string): void {
    this.record = { status: 'online', version, hbMs: ++this.clock };
  }
  gone(): void {
    if (this.record) this.record.status = 'offline';
  }
  watch(timeoutMs = 300): OnlineWatch {
    return {
      agent: 'web-01',
      area: 'eu',
      timeoutMs,
      pollMs: 10,
      look: async () => {
        this.looks++;
        if (!this.record) throw new AgentNotFoundError('web-01');
        const r = this.record;
        return {
          controller: 'ctl-a',
          status: r.status,
          version: r.version,
          lastHeartbeat: new Date(r.hbMs).toISOString(),
        };
      },
    };
  }
}

class ScriptedHost implements HostInstaller {
  readonly calls: string[] = [];
  versionsOnHost = new Set<string>();
  current: string | undefined;
  previous: string | undefined;
  running = false;
  closed = false;
  /** Versions whose agent exits at once (never says hello). */
  readonly broken = new Set<string>();
  constructor(readonly controller: ScriptedController) {}

  #call(name: string): void {
    if (this.closed) throw new Error('session closed');
    this.calls.push(name);
  }
  #run(): void {
    this.running = this.current !== undefined && !this.broken.has(this.current);
    if (this.running) this.controller.hello(this.current!);
  }
  async detect() {
    this.#call('detect');
    return { os: 'linux', arch: 'amd64', serviceManager: 'systemd' as const, privileged: true };
  }
  layout() {
    const root = '/opt/opsplane/agent';
    return {
      root,
      configFile: `${root}/etc/agent.yaml`,
      dataDir: `${root}/data`,
      packagesDir: `${root}/packages`,
      logFile: `${root}/log/agent.log`,
    };
  }
  async checkPrerequisites() {
    this.#call('checkPrerequisites');
    return { node: '/usr/bin/node', nodeVersion: 'v20.18.0' };
  }
  async uploadBundle(b: AgentBundleInfo) {
    this.#call('uploadBundle');
    this.versionsOnHost.add(b.version);
  }
  async writeConfig() {
    this.#call('writeConfig');
  }
  async activate(version: string): Promise<InstalledVersions> {
    this.#call(`activate ${version}`);
    if (this.current !== version) [this.previous, this.current] = [this.current, version];
    return this.versions();
  }
  async installService() {
    this.#call('installService');
  }
  async start() {
    this.#call('start');
    this.#run();
  }
  async stop() {
    this.#call('stop');
    this.running = false;
    this.controller.gone();
  }
  async restart() {
    this.#call('restart');
    this.controller.gone();
    this.#run();
  }
  async isRunning() {
    return this.running;
  }
  async versions(): Promise<InstalledVersions> {
    return {
      ...(this.current ? { current: this.current } : {}),
      ...(this.previous ? { previous: this.previous } : {}),
      available: [...this.versionsOnHost],
    };
  }
  async prune() {
    this.#call('prune');
  }
  async removeAll() {
    this.#call('removeAll');
    this.current = this.previous = undefined;
  }
  async logTail() {
    return this.running ? '' : 'agent exited with code 1';
  }
  close() {
    this.closed = true;
  }
}

class Recorded implements DeploymentReporter {
  readonly events: string[] = [];
  readonly lines: string[] = [];
  async stepStarted(step: string) {
    this.events.push(`${step} started`);
  }
  async stepFinished(step: string, status: string) {
    this.events.push(`${step} ${status}`);
  }
  async log(level: string, message: string, step?: string) {
    this.lines.push(`${level} [${step ?? '-'}] ${message}`);
  }
}

const bundle = (version: string): AgentBundleInfo => ({
  version,
  path: `/tmp/opsplane-agent-${version}.tar.gz`,
  fileName: `opsplane-agent-${version}.tar.gz`,
  sha256: 'ab'.repeat(32),
  bytes: 1000,
  topDir: `opsplane-agent-${version}`,
  entry: 'agent.mjs',
  node: '>=20.18',
});

function input(host: ScriptedHost, kind: DeploymentKind, over: Partial<DeploymentInput> = {}) {
  const reporter = new Recorded();
  const i: DeploymentInput = {
    kind,
    deviceName: 'web-01',
    connect: async () => host,
    identity: async () => ({ code: 'web-01', area: 'eu', token: 't', controllers: ['http://c:1'] }),
    waitOnline: host.controller.watch(),
    reporter,
    signal: new AbortController().signal,
    ...over,
  };
  return { i, reporter };
}

describe('the deployment walk (scripted host)', () => {
  it('installs in the order of STEPS, reporting each step and its log lines; online at the first answer', async () => {
    const host = new ScriptedHost(new ScriptedController());
    const { i, reporter } = input(host, 'install', { bundle: bundle('1.0.0') });
    assert.deepEqual(await runDeployment(i), { version: '1.0.0' });
    assert.deepEqual(
      reporter.events,
      STEPS.install.flatMap((s) => [`${s} started`, `${s} succeeded`]),
    );
    assert.deepEqual(reporter.lines.slice(0, 2), [
      'info [connect] connect: started',
      'info [connect] connect: succeeded — connected',
    ]);
    assert.ok(
      reporter.lines.includes('info [wait_online] wait_online: succeeded — online as 1.0.0 via ctl-a'),
    );
    // One question before the start (the baseline), one after: the agent's hello is accepted.
    assert.equal(host.controller.looks, 2);
    assert.ok(host.closed, 'the session is closed at the end');
  });

  it('reinstalls over a running agent and sees its new connection at once', async () => {
    const host = new ScriptedHost(new ScriptedController());
    await runDeployment(input(host, 'install', { bundle: bundle('1.0.0') }).i);
    host.closed = false;
    host.controller.looks = 0;
    await runDeployment(input(host, 'install', { bundle: bundle('1.0.0') }).i);
    assert.ok(host.calls.slice(-3).includes('restart'));
    assert.equal(host.controller.looks, 2);
  });

  it('restarts: the new connection is accepted at the first answer', async () => {
    const host = new ScriptedHost(new ScriptedController());
    await runDeployment(input(host, 'install', { bundle: bundle('1.0.0') }).i);
    host.closed = false;
    host.controller.looks = 0;
    const { i, reporter } = input(host, 'restart');
    assert.deepEqual(await runDeployment(i), {});
    assert.deepEqual(
      reporter.events,
      STEPS.restart.flatMap((s) => [`${s} started`, `${s} succeeded`]),
    );
    assert.equal(host.controller.looks, 2);
  });

  it('rolls an upgrade back when the new version does not come online', async () => {
    const host = new ScriptedHost(new ScriptedController());
    await runDeployment(input(host, 'install', { bundle: bundle('1.0.0') }).i);
    host.closed = false;
    host.broken.add('2.0.0');
    const { i, reporter } = input(host, 'upgrade', { bundle: bundle('2.0.0') });
    await assert.rejects(
      runDeployment(i),
      (e: unknown) =>
        e instanceof UpgradeRolledBackError &&
        e.code === 'upgrade_rolled_back' &&
        e.previous === '1.0.0' &&
        (e.cause as Error).message.includes('last: listed as offline'),
    );
    assert.deepEqual(reporter.events.slice(-7), [
      'restart started',
      'restart succeeded',
      'wait_online started',
      'wait_online failed',
      'prune skipped',
      'rollback started',
      'rollback succeeded',
    ]);
    assert.ok(
      reporter.lines.includes("error [rollback] last lines of the agent's log:\nagent exited with code 1"),
    );
    assert.equal(host.current, '1.0.0');
    assert.ok(host.running);
  });

  it('refuses to upgrade where no agent is installed', async () => {
    const host = new ScriptedHost(new ScriptedController());
    const { i, reporter } = input(host, 'upgrade', { bundle: bundle('2.0.0') });
    await assert.rejects(runDeployment(i), AgentNotInstalledError);
    assert.deepEqual(reporter.events.slice(-2), ['check started', 'check failed']);
  });

  it('stops before the next step when the signal aborts, and closes the session at once', async () => {
    const host = new ScriptedHost(new ScriptedController());
    const ac = new AbortController();
    const { i, reporter } = input(host, 'install', { bundle: bundle('1.0.0'), signal: ac.signal });
    const inner = i.reporter;
    i.reporter = {
      ...inner,
      stepStarted: (s) => inner.stepStarted(s),
      log: (l, m, s) => inner.log(l, m, s),
      stepFinished: async (s, st, m) => {
        await inner.stepFinished(s, st, m);
        if (s === 'upload') ac.abort(new DeploymentCancelledError());
      },
    };
    await assert.rejects(
      runDeployment(i),
      (e: unknown) => e instanceof DeploymentCancelledError && e.message === 'cancelled by an operator',
    );
    assert.ok(host.closed);
    assert.equal(reporter.events.at(-1), 'upload succeeded');
    assert.ok(!host.calls.includes('writeConfig'));
  });
});
