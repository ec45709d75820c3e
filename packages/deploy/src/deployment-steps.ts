/**
 * The deployment walk, shared by every OS and transport: which HostInstaller calls run in which
 * order for install, upgrade (with rollback to the previous version when the new one does not
 * come online), uninstall and restart. The walk runs a whole deployment and tells its one
 * DeploymentReporter what happens (step started/finished, log lines), awaiting each report.
 *
 * Lifecycle: the session opened by `connect` is closed when the walk ends, and at once when
 * `signal` aborts — then the walk stops before its next step with DeploymentCancelledError. Every
 * step is idempotent, so a deployment resumed after a server restart simply runs again from the
 * first step.
 */
import { AgentNotInstalledError, DeploymentCancelledError, UpgradeRolledBackError } from './deploy-errors.js';
import { renderAgentConfig, type AgentIdentity } from './agent-config.js';
import type { AgentBundleInfo, HostInstaller } from './host-installer.js';
import {
  cancelledBy,
  onlineBaseline,
  waitOnline,
  type OnlineBaseline,
  type OnlineWatch,
} from './online-wait.js';

export type DeploymentKind = 'install' | 'upgrade' | 'uninstall' | 'restart';

export const STEPS: Record<DeploymentKind, readonly string[]> = {
  install: [
    'connect',
    'detect',
    'check',
    'upload',
    'configure',
    'activate',
    'service',
    'start',
    'wait_online',
    'prune',
  ],
  upgrade: [
    'connect',
    'detect',
    'check',
    'upload',
    'configure',
    'activate',
    'restart',
    'wait_online',
    'prune',
    'rollback',
  ],
  uninstall: ['connect', 'detect', 'stop', 'remove'],
  restart: ['connect', 'detect', 'restart', 'wait_online'],
};

export type StepStatus = 'succeeded' | 'failed' | 'skipped';
export type LogLevel = 'info' | 'warn' | 'error';

/**
 * Where a deployment's progress goes (the server: deployment rows and logs, live events). Each
 * call is awaited before the walk goes on, so reports arrive in order.
 */
export interface DeploymentReporter {
  stepStarted(step: string): Promise<void>;
  /** A step ended; after `failed`, the steps not yet run will not run. */
  stepFinished(step: string, status: StepStatus, message?: string): Promise<void>;
  /** A log line of `step`, or of the whole deployment when step is undefined. */
  log(level: LogLevel, message: string, step?: string): Promise<void>;
}

export interface DeploymentInput {
  kind: DeploymentKind;
  /** For messages: the device's name. */
  deviceName: string;
  /** Opens the session and returns the device's installer (the `connect` step). */
  connect(): Promise<HostInstaller>;
  /** install/upgrade: the bundle to deploy. */
  bundle?: AgentBundleInfo;
  /** install/upgrade: the identity written to the agent config (asked for after the upload). */
  identity?: () => Promise<AgentIdentity>;
  /** How to see the agent through its area's controllers after a (re)start. */
  waitOnline: OnlineWatch;
  reporter: DeploymentReporter;
  /** Stops the walk before its next step and closes the session (shutdown, lost lease, cancel). */
  signal: AbortSignal;
}

export interface DeploymentOutcome {
  /** The agent version now installed ('' after uninstall), when known. */
  version?: string;
}

/** Runs a whole deployment; rejects with the failing step's error (typed) or a cancellation. */
export async function runDeployment(input: DeploymentInput): Promise<DeploymentOutcome> {
  const walk = new Walk(input);
  const installer = await walk.step('connect', input.connect, () => 'connected');
  const close = () => installer.close();
  input.signal.addEventListener('abort', close, { once: true });
  try {
    await walk.step(
      'detect',
      () => installer.detect(),
      (f) =>
        `${f.os}/${f.arch}, ${f.serviceManager}${f.privileged ? ', privileged' : ', unprivileged'}, root ${installer.layout().root}`,
    );
    switch (input.kind) {
      case 'install':
      case 'upgrade':
        return await deploy(walk, installer);
      case 'uninstall':
        await walk.step(
          'stop',
          () => installer.stop({ packages: true }),
          () => 'agent and its packages stopped',
        );
        await walk.step(
          'remove',
          () => installer.removeAll(),
          () => `service and ${installer.layout().root} removed`,
        );
        return { version: '' };
      case 'restart': {
        const since = await walk.step(
          'restart',
          () => restartFrom(input, installer),
          () => 'restarted',
        );
        await walk.step(
          'wait_online',
          () => waitOnline(input.waitOnline, since, { signal: input.signal }),
          (o) => `online via ${o.controller}`,
        );
        return {};
      }
    }
  } finally {
    input.signal.removeEventListener('abort', close);
    installer.close();
  }
}

/** Step bookkeeping: the cancellation check before a step, its reports and log lines. */
class Walk {
  constructor(readonly input: DeploymentInput) {}

  async step<T>(name: string, fn: () => Promise<T>, message?: (v: T) => string): Promise<T> {
    if (this.input.signal.aborted) throw cancelledBy(this.input.signal);
    await this.started(name);
    try {
      const v = await fn();
      await this.finished(name, 'succeeded', message?.(v));
      return v;
    } catch (e) {
      await this.finished(name, 'failed', (e as Error).message);
      throw e;
    }
  }

  async started(name: string): Promise<void> {
    await this.input.reporter.stepStarted(name);
    await this.input.reporter.log('info', `${name}: started`, name);
  }

  async finished(name: string, status: StepStatus, message?: string): Promise<void> {
    await this.input.reporter.stepFinished(name, status, message);
    await this.input.reporter.log(
      status === 'failed' ? 'error' : 'info',
      `${name}: ${status}${message ? ` — ${message}` : ''}`,
      name,
    );
  }

  log(level: LogLevel, message: string, step: string): Promise<void> {
    return this.input.reporter.log(level, message, step);
  }
}

/** Restarts the agent; what the controllers knew of it just before is the wait's baseline. */
async function restartFrom(input: DeploymentInput, installer: HostInstaller) {
  const since = await onlineBaseline(input.waitOnline);
  await installer.restart();
  return since;
}

async function deploy(walk: Walk, installer: HostInstaller): Promise<DeploymentOutcome> {
  const input = walk.input;
  const { bundle, signal } = input;
  if (!bundle || !input.identity) throw new Error('install/upgrade need a bundle and an identity');
  const upgrade = input.kind === 'upgrade';
  const before = await installer.versions();
  if (upgrade && !before.current) {
    await walk.started('check');
    const msg = `no agent is installed on ${input.deviceName}; install it first`;
    await walk.finished('check', 'failed', msg);
    throw new AgentNotInstalledError(msg);
  }
  const { node } = await walk.step(
    'check',
    () => installer.checkPrerequisites(bundle),
    (p) => `node ${p.nodeVersion} at ${p.node}; enough disk space`,
  );
  await walk.step(
    'upload',
    () => installer.uploadBundle(bundle),
    () => `${bundle.fileName} (${bundle.bytes} bytes, sha256 ${bundle.sha256.slice(0, 12)}…) unpacked`,
  );
  const identity = await input.identity();
  await walk.step(
    'configure',
    () => installer.writeConfig(renderAgentConfig(identity, installer.layout())),
    () =>
      `agent ${identity.code} of area ${identity.area}, controllers ${identity.controllers.join(', ') || '(none online yet)'}`,
  );
  const switched = await walk.step(
    'activate',
    () => installer.activate(bundle.version),
    (v) => `current → ${v.current}${v.previous ? `, previous ${v.previous}` : ''}`,
  );
  const online = (since: OnlineBaseline) =>
    walk.step(
      'wait_online',
      () => waitOnline(input.waitOnline, since, { version: bundle.version, signal }),
      (o) => `online as ${bundle.version} via ${o.controller}`,
    );
  if (upgrade) {
    try {
      const since = await walk.step(
        'restart',
        () => restartFrom(input, installer),
        () => 'restarted on the new version',
      );
      await online(since);
    } catch (e) {
      // A stopped walk does not roll back: its session is closed, and a resumed one starts over.
      if (e instanceof DeploymentCancelledError || signal.aborted) throw e;
      await walk.finished('prune', 'skipped');
      await rollback(walk, installer, switched.previous ?? before.current, e as Error);
    }
  } else {
    await walk.step(
      'service',
      () => installer.installService(node),
      () => 'service installed',
    );
    const since = await walk.step(
      'start',
      async () => {
        const baseline = await onlineBaseline(input.waitOnline);
        // A reinstall over a running agent: restart so that the new config and version apply.
        if (await installer.isRunning()) await installer.restart();
        else await installer.start();
        return baseline;
      },
      () => 'started',
    );
    try {
      await online(since);
    } catch (e) {
      const tail = await installer.logTail(20);
      if (tail) await walk.log('error', `last lines of the agent's log:\n${tail}`, 'wait_online');
      throw e;
    }
  }
  await walk.step(
    'prune',
    () => installer.prune(),
    () => 'kept current and previous versions',
  );
  if (upgrade) await walk.finished('rollback', 'skipped', 'not needed');
  return { version: bundle.version };
}

async function rollback(
  walk: Walk,
  installer: HostInstaller,
  previous: string | undefined,
  cause: Error,
): Promise<never> {
  const input = walk.input;
  await walk.started('rollback');
  const tail = await installer.logTail(20);
  if (tail) await walk.log('error', `last lines of the agent's log:\n${tail}`, 'rollback');
  if (!previous) {
    await walk.finished('rollback', 'failed', 'no previous version to roll back to');
    throw cause;
  }
  try {
    await installer.activate(previous);
    const since = await restartFrom(input, installer);
    await waitOnline(input.waitOnline, since, { version: previous, signal: input.signal });
  } catch (e) {
    await walk.finished('rollback', 'failed', `rollback to ${previous} failed too: ${(e as Error).message}`);
    throw cause;
  }
  await walk.finished('rollback', 'succeeded', `rolled back to ${previous}; it is online again`);
  throw new UpgradeRolledBackError(input.bundle?.version ?? '?', previous, cause);
}
