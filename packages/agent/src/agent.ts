/**
 * The agent daemon: wires config, package supervisor, controller link, request handling and the
 * optional metrics endpoint, and owns their start/stop order.
 *
 * Stopping the agent leaves packages running by default (they are detached and recorded in
 * state.json; the next agent run adopts them), so an agent upgrade or restart does not take the
 * host's services down. Pass `{ stopPackages: true }` to stop() or set `stop_packages_on_exit`
 * to stop them too.
 */
import { mkdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { OpsplaneError } from '@opsplane/models';
import { createLogger, type Logger } from './log.js';
import type { AgentConfig } from './config.js';
import { AgentIdentity } from './connection/agent-identity.js';
import { ControllerLink } from './connection/controller-link.js';
import { AgentMetrics, startMetricsServer, type MetricsServer } from './metrics/prometheus.js';
import { ServiceMetricsCollector } from './metrics/service-metrics.js';
import { SystemMetricsCollector } from './metrics/system-metrics.js';
import { OperationJournal } from './operations/operation-journal.js';
import { Supervisor } from './packages/supervisor.js';
import { isSameProcess, processStartTime } from './proc/procfs.js';
import { createRequestHandler } from './requests/request-handler.js';
import { ArtifactFetcher } from './distribution/artifact-fetcher.js';
import { Converger } from './distribution/converger.js';
import { DesiredStore } from './distribution/desired-store.js';
import { PackageInstaller } from './distribution/package-installer.js';
import { AgentUpgrader } from './distribution/agent-upgrader.js';
import { AGENT_ROOT_ENV } from './distribution/upgrade-trial.js';
import { writeFileAtomic } from './util/atomic-file.js';
import { AGENT_VERSION, goArch } from './version.js';

export interface StartAgentOptions {
  logger?: Logger;
  /**
   * Self-upgrade hand-over: called after `current` was switched to a new agent version; the
   * entry stops the agent and exits with UPGRADE_EXIT_CODE for the launcher. Without it (or
   * without the launcher's OPSPLANE_AGENT_ROOT) self-upgrades are refused.
   */
  onUpgradeExit?: () => void;
}

export interface RunningAgent {
  readonly config: AgentConfig;
  readonly supervisor: Supervisor;
  readonly link: ControllerLink;
  /** Where `metrics_listen` actually bound (useful with port 0). */
  readonly metricsAddress: { host: string; port: number } | undefined;
  /** Stops the agent. Packages keep running unless `stopPackages` (default: config's stop_packages_on_exit). */
  stop(opts?: { stopPackages?: boolean }): Promise<void>;
}

/** Another live agent process already uses this data_dir. */
export class AgentLockedError extends OpsplaneError {
  constructor(dataDir: string, pid: number) {
    super('conflict', `another agent (pid ${pid}) is running with data_dir ${dataDir}`);
  }
}

export class Agent implements RunningAgent {
  readonly config: AgentConfig;
  private readonly logger: Logger;
  private readonly onUpgradeExit: (() => void) | undefined;
  private sup: Supervisor | undefined;
  private lnk: ControllerLink | undefined;
  private metricsServer: MetricsServer | undefined;
  private identity: AgentIdentity | undefined;
  private renewTimer: NodeJS.Timeout | undefined;
  private renewing = false;
  private journal: OperationJournal | undefined;
  private conv: Converger | undefined;
  private stopping: Promise<void> | undefined;
  private locked = false;

  constructor(config: AgentConfig, opts: StartAgentOptions = {}) {
    this.config = config;
    this.logger = opts.logger ?? createLogger('agent', { agent_code: config.agentCode, area: config.area });
    this.onUpgradeExit = opts.onUpgradeExit;
  }

  get supervisor(): Supervisor {
    if (!this.sup) throw new Error('agent not started');
    return this.sup;
  }

  get converger(): Converger {
    if (!this.conv) throw new Error('agent not started');
    return this.conv;
  }

  get link(): ControllerLink {
    if (!this.lnk) throw new Error('agent not started');
    return this.lnk;
  }

  get metricsAddress(): { host: string; port: number } | undefined {
    return this.metricsServer ? { host: this.metricsServer.host, port: this.metricsServer.port } : undefined;
  }

  private get lockPath(): string {
    return join(this.config.dataDir, 'agent.lock');
  }

  /** One agent per data_dir: two would fight over the same packages. */
  private async lock(): Promise<void> {
    try {
      const held: unknown = JSON.parse(await readFile(this.lockPath, 'utf8'));
      if (held && typeof held === 'object' && 'pid' in held && 'start_time' in held) {
        const { pid, start_time } = held as { pid: unknown; start_time: unknown };
        if (
          typeof pid === 'number' &&
          typeof start_time === 'string' &&
          pid !== process.pid &&
          (await isSameProcess(pid, start_time))
        ) {
          throw new AgentLockedError(this.config.dataDir, pid);
        }
      }
    } catch (e) {
      if (e instanceof AgentLockedError) throw e;
      // missing or unreadable lock: ours to take
    }
    const start_time = (await processStartTime(process.pid)) ?? '';
    await writeFileAtomic(this.lockPath, JSON.stringify({ pid: process.pid, start_time }) + '\n');
    this.locked = true;
  }

  async start(): Promise<void> {
    const c = this.config;
    await mkdir(join(c.dataDir, 'logs'), { recursive: true });
    await this.lock();
    // Before any request can arrive: operations a previous run left in flight become `interrupted`.
    const journal = new OperationJournal(
      join(c.dataDir, 'operations.jsonl'),
      this.logger.child({ component: 'journal' }),
    );
    const { interrupted } = await journal.open();
    this.journal = journal;
    for (const e of interrupted)
      this.logger.warn(
        { operation_id: e.operation_id, package: e.package, action: e.action },
        'an operation was cut off when the agent last stopped; it stays interrupted and is not run again',
      );
    const sup = await Supervisor.create({
      packagesDir: c.packagesDir,
      dataDir: c.dataDir,
      logger: this.logger.child({ component: 'supervisor' }),
      logMaxBytes: c.packageLogs.maxBytes,
      logKeep: c.packageLogs.keep,
    });
    this.sup = sup;
    await sup.start();
    this.logger.info({ packages: sup.names() }, 'packages resumed');

    const metrics = new AgentMetrics(sup, () => ({
      connected: this.lnk?.connected ?? false,
      controller: this.lnk?.controllerUrl,
    }));
    const identity = c.tls
      ? new AgentIdentity(c.tls, c.dataDir, this.logger.child({ component: 'tls' }))
      : undefined;
    this.identity = identity;
    const distLog = this.logger.child({ component: 'distribution' });
    // Downloads go to the controller the link is connected to now, authenticated as the link is.
    const fetcher = new ArtifactFetcher({
      dataDir: c.dataDir,
      trustedKeys: c.artifactKeys,
      logger: distLog,
      source: {
        controllerUrl: () => this.lnk?.controllerUrl,
        headers: () => this.lnk?.authHeaders() ?? {},
        tls: () => identity?.material,
      },
    });
    const upgrader = new AgentUpgrader({
      dataDir: c.dataDir,
      root: process.env[AGENT_ROOT_ENV] || undefined,
      version: AGENT_VERSION,
      fetcher,
      logger: distLog,
      ...(this.onUpgradeExit ? { requestUpgradeExit: this.onUpgradeExit } : {}),
    });
    await upgrader.open();
    const converger = new Converger({
      agentUpgrade: upgrader,
      supervisor: sup,
      store: new DesiredStore(c.dataDir, distLog),
      fetcher,
      installer: new PackageInstaller(c.packagesDir, c.dataDir),
      journal,
      logger: distLog,
      driftCheckMs: c.heartbeatIntervalMs,
    });
    this.conv = converger;
    const handler = createRequestHandler({
      distribution: converger,
      agentId: c.agentCode,
      supervisor: sup,
      system: new SystemMetricsCollector(c.agentCode),
      services: new ServiceMetricsCollector(c.agentCode, sup),
      journal,
      logger: this.logger.child({ component: 'requests' }),
      onHandled: (op, ok) => metrics.requests.inc({ op, ok: String(ok) }),
    });
    const link = new ControllerLink({
      ...(identity ? { tls: () => identity.material } : {}),
      controllers: c.controllers,
      agentCode: c.agentCode,
      area: c.area,
      token: c.token,
      heartbeatIntervalMs: c.heartbeatIntervalMs,
      reconnect: c.reconnect,
      agentInfo: () => ({
        agent_code: c.agentCode,
        area: c.area,
        hostname: c.hostname,
        address: c.address,
        version: AGENT_VERSION,
        os: process.platform,
        arch: goArch(),
        labels: c.labels,
        ...(c.zone !== undefined ? { zone: c.zone } : {}),
        ...(c.mode !== undefined ? { mode: c.mode } : {}),
        ...(c.group !== undefined ? { group: c.group } : {}),
        ...(c.deployment !== undefined ? { deployment: c.deployment } : {}),
      }),
      snapshot: () => ({
        packages: sup.list(),
        health_status: sup.overallStatus(),
        distribution: converger.status(),
      }),
      handle: handler,
      logger: this.logger.child({ component: 'link' }),
    });
    link.on('connected', (url) => {
      metrics.connects.inc({ controller: url, result: 'connected' });
      void this.renewIfDue();
      // A new agent version on trial is good once it runs and reaches a controller.
      void upgrader
        .confirmIfOnTrial()
        .catch((e: Error) => this.logger.error({ err: e.message }, 'could not confirm the agent upgrade'));
    });
    link.on('refused', (url) => metrics.connects.inc({ controller: url, result: 'refused' }));
    this.lnk = link;

    if (c.metricsListen) {
      this.metricsServer = await startMetricsServer(
        c.metricsListen,
        metrics,
        () => ({
          status: 'ok',
          agent_code: c.agentCode,
          connected: link.connected,
          controller: link.controllerUrl ?? null,
          overall_health: sup.overallStatus(),
        }),
        this.logger.child({ component: 'metrics' }),
      );
    }
    await converger.open();
    link.start();
    if (identity?.hasCertificate && c.tls) {
      this.renewTimer = setInterval(() => void this.renewIfDue(), c.tls.renewCheckIntervalMs);
      this.renewTimer.unref();
    }
    this.logger.info(
      {
        version: AGENT_VERSION,
        controllers: c.controllers,
        tls: identity ? (identity.hasCertificate ? 'mutual' : 'server-verified') : 'none',
        cert_not_after: identity?.notAfter?.toISOString(),
      },
      'agent started',
    );
  }

  /** Renews the certificate over the control channel when it is in the last third of its life. */
  async renewIfDue(): Promise<boolean> {
    const identity = this.identity;
    const link = this.lnk;
    if (!identity || !link?.connected || this.renewing || !identity.renewalDue()) return false;
    this.renewing = true;
    try {
      const answer = await link.requestCertificate(await identity.request(this.config.agentCode));
      if (answer.error || !answer.cert) {
        this.logger.warn({ err: answer.error }, 'certificate renewal refused; will retry');
        return false;
      }
      await identity.accept(answer.cert, answer.ca);
      return true;
    } catch (e) {
      this.logger.warn({ err: (e as Error).message }, 'certificate renewal failed; will retry');
      return false;
    } finally {
      this.renewing = false;
    }
  }

  stop(opts: { stopPackages?: boolean } = {}): Promise<void> {
    this.stopping ??= (async () => {
      clearInterval(this.renewTimer);
      const stopPackages = opts.stopPackages ?? this.config.stopPackagesOnExit;
      this.logger.info({ stopPackages }, 'agent stopping');
      await this.conv?.close();
      await this.lnk?.stop();
      await this.sup?.shutdown({ stopPackages });
      await this.journal?.close();
      await this.metricsServer?.close();
      if (this.locked) await rm(this.lockPath, { force: true }); // never another agent's lock
      this.logger.info('agent stopped');
    })();
    return this.stopping;
  }
}

/** Starts an agent; the CLI calls this and wires SIGTERM/SIGINT to `stop()`. */
export async function startAgent(config: AgentConfig, opts: StartAgentOptions = {}): Promise<RunningAgent> {
  const agent = new Agent(config, opts);
  try {
    await agent.start();
  } catch (e) {
    await agent.stop().catch(() => undefined);
    throw e;
  }
  return agent;
}
