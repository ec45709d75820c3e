/**
 * The deployment steps, shared by every OS and transport: which HostInstaller calls run in which
 * order for install, upgrade (with rollback to the previous version when the new one does not
 * come online), uninstall and restart. Each step is recorded (start, end, message) through the
 * StepRecorder; cancellation is honoured between steps. Every step is idempotent, so a
 * deployment resumed after a server restart simply runs again from the first step.
 */
import { stringify as toYaml } from 'yaml';
import { AgentNotInstalledError, DeploymentCancelledError, UpgradeRolledBackError } from './deploy-errors.js';
import type { AgentBundleInfo, HostInstaller, InstallLayout } from './host-installer.js';

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

export interface StepRecorder {
  begin(step: string): Promise<void>;
  /** Ends the running step. */
  end(step: string, status: 'succeeded' | 'failed' | 'skipped', message?: string): Promise<void>;
  log(level: 'info' | 'warn' | 'error', message: string, step?: string): Promise<void>;
  /** Throws DeploymentCancelledError when an operator cancelled the deployment. */
  checkCancelled(): Promise<void>;
}

/** What the agent on the device is told (written to its config file). */
export interface AgentIdentity {
  code: string;
  area: string;
  token: string;
  /** URLs of the area's controllers, failover order. */
  controllers: readonly string[];
}

export interface StepsInput {
  kind: DeploymentKind;
  deviceName: string;
  /** Opens the connection and returns the device's installer (the `connect` step). */
  connect(): Promise<HostInstaller>;
  /** install/upgrade: the bundle to deploy. */
  bundle?: AgentBundleInfo;
  /** install/upgrade: the identity for the agent config. */
  identity?: () => Promise<AgentIdentity>;
  /**
   * Called right after the agent was (re)started: resolves once the controllers of the area list
   * it online from a connection made after that (with `version` when given); throws
   * AgentNotOnlineError at the deadline.
   */
  waitOnline(opts: { version?: string }): Promise<{ controller: string }>;
  recorder: StepRecorder;
}

export interface StepsOutcome {
  /** The agent version now installed ('' after uninstall), when known. */
  version?: string;
}

/** The agent config file for a device (YAML; the agent resolves nothing relative to it). */
export function renderAgentConfig(id: AgentIdentity, layout: InstallLayout): string {
  const doc = {
    agent_code: id.code,
    area: id.area,
    token: id.token,
    controllers: [...id.controllers],
    packages_dir: layout.packagesDir,
    data_dir: layout.dataDir,
    stop_packages_on_exit: false,
  };
  return `# Written by the Opsplane platform at deployment; changes are overwritten by the next one.\n${toYaml(doc)}`;
}

async function step<T>(
  r: StepRecorder,
  name: string,
  fn: () => Promise<T>,
  message?: (v: T) => string,
): Promise<T> {
  await r.checkCancelled();
  await r.begin(name);
  try {
    const v = await fn();
    await r.end(name, 'succeeded', message?.(v));
    return v;
  } catch (e) {
    await r.end(name, 'failed', (e as Error).message);
    throw e;
  }
}

export async function runDeploymentSteps(input: StepsInput): Promise<StepsOutcome> {
  const r = input.recorder;
  const installer = await step(r, 'connect', input.connect, () => 'connected');
  try {
    await step(
      r,
      'detect',
      () => installer.detect(),
      (f) =>
        `${f.os}/${f.arch}, ${f.serviceManager}${f.privileged ? ', privileged' : ', unprivileged'}, root ${installer.layout().root}`,
    );
    switch (input.kind) {
      case 'install':
      case 'upgrade':
        return await deploy(input, installer);
      case 'uninstall':
        await step(
          r,
          'stop',
          () => installer.stop({ packages: true }),
          () => 'agent and its packages stopped',
        );
        await step(
          r,
          'remove',
          () => installer.removeAll(),
          () => `service and ${installer.layout().root} removed`,
        );
        return { version: '' };
      case 'restart':
        await step(
          r,
          'restart',
          () => installer.restart(),
          () => 'restarted',
        );
        await step(
          r,
          'wait_online',
          () => input.waitOnline({}),
          (o) => `online via ${o.controller}`,
        );
        return {};
    }
  } finally {
    installer.close();
  }
}

async function deploy(input: StepsInput, installer: HostInstaller): Promise<StepsOutcome> {
  const r = input.recorder;
  const bundle = input.bundle;
  if (!bundle || !input.identity) throw new Error('install/upgrade need a bundle and an identity');
  const upgrade = input.kind === 'upgrade';
  const before = await installer.versions();
  if (upgrade && !before.current) {
    await r.begin('check');
    const msg = `no agent is installed on ${input.deviceName}; install it first`;
    await r.end('check', 'failed', msg);
    throw new AgentNotInstalledError(msg);
  }
  const { node } = await step(
    r,
    'check',
    () => installer.checkPrerequisites(bundle),
    (p) => `node ${p.nodeVersion} at ${p.node}; enough disk space`,
  );
  await step(
    r,
    'upload',
    () => installer.uploadBundle(bundle),
    () => `${bundle.fileName} (${bundle.bytes} bytes, sha256 ${bundle.sha256.slice(0, 12)}…) unpacked`,
  );
  const identity = await input.identity();
  await step(
    r,
    'configure',
    () => installer.writeConfig(renderAgentConfig(identity, installer.layout())),
    () =>
      `agent ${identity.code} of area ${identity.area}, controllers ${identity.controllers.join(', ') || '(none online yet)'}`,
  );
  const switched = await step(
    r,
    'activate',
    () => installer.activate(bundle.version),
    (v) => `current → ${v.current}${v.previous ? `, previous ${v.previous}` : ''}`,
  );
  if (upgrade) {
    try {
      await step(
        r,
        'restart',
        () => installer.restart(),
        () => 'restarted on the new version',
      );
      await step(
        r,
        'wait_online',
        () => input.waitOnline({ version: bundle.version }),
        (o) => `online as ${bundle.version} via ${o.controller}`,
      );
    } catch (e) {
      if (e instanceof DeploymentCancelledError) throw e;
      await r.end('prune', 'skipped');
      await rollback(input, installer, switched.previous ?? before.current, e as Error);
    }
  } else {
    await step(
      r,
      'service',
      () => installer.installService(node),
      () => 'service installed',
    );
    await step(
      r,
      'start',
      async () => {
        // A reinstall over a running agent: restart so that the new config and version apply.
        if (await installer.isRunning()) await installer.restart();
        else await installer.start();
      },
      () => 'started',
    );
    try {
      await step(
        r,
        'wait_online',
        () => input.waitOnline({ version: bundle.version }),
        (o) => `online as ${bundle.version} via ${o.controller}`,
      );
    } catch (e) {
      const tail = await installer.logTail(20);
      if (tail) await r.log('error', `last lines of the agent's log:\n${tail}`, 'wait_online');
      throw e;
    }
  }
  await step(
    r,
    'prune',
    () => installer.prune(),
    () => 'kept current and previous versions',
  );
  if (upgrade) await r.end('rollback', 'skipped', 'not needed');
  return { version: bundle.version };
}

async function rollback(
  input: StepsInput,
  installer: HostInstaller,
  previous: string | undefined,
  cause: Error,
): Promise<never> {
  const r = input.recorder;
  await r.begin('rollback');
  const tail = await installer.logTail(20);
  if (tail) await r.log('error', `last lines of the agent's log:\n${tail}`, 'rollback');
  if (!previous) {
    await r.end('rollback', 'failed', 'no previous version to roll back to');
    throw cause;
  }
  try {
    await installer.activate(previous);
    await installer.restart();
    await input.waitOnline({ version: previous });
  } catch (e) {
    await r.end('rollback', 'failed', `rollback to ${previous} failed too: ${(e as Error).message}`);
    throw cause;
  }
  await r.end('rollback', 'succeeded', `rolled back to ${previous}; it is online again`);
  throw new UpgradeRolledBackError(input.bundle?.version ?? '?', previous, cause);
}
