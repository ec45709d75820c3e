/**
 * startServer(): open the database (PGlite or PostgreSQL), migrate, load the master key,
 * bootstrap the first admin, start the platform services (area credentials, discovery — which
 * does not wait for etcd —, the agent view), the deployment queue and the alert engine, build the
 * app and listen. stop() stops the alert engine (pending webhook deliveries get a short grace),
 * the deployments, closes the HTTP server (letting in-flight requests finish), then the platform
 * services, then the database.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { createLogger } from '@opsplane/kit';
import type { ServerContext } from './http/context.js';
import { Accounts } from './services/accounts.js';
import { AgentService } from './services/agents.js';
import { AlertService } from './services/alerts.js';
import { ApiTokens } from './services/api-tokens.js';
import { AreaService } from './services/areas.js';
import { AuditTrail } from './services/audit-trail.js';
import { BatchService } from './services/batches.js';
import { ControllerService } from './services/controllers.js';
import { DeviceService } from './services/devices.js';
import { DeploymentRequests } from './services/deployment-requests.js';
import { buildApp, SERVER_VERSION, type App } from './http/app.js';
import { ensureFirstAdmin, firstAdminBanner, masterKeyNotice } from './bootstrap.js';
import { parseListen, type ServerConfig } from './config.js';
import { openDatabase, type DatabaseHandle } from './storage/database.js';
import { migrate } from './storage/migrations.js';
import { Store } from './storage/store.js';
import { createMetrics } from './services/metrics.js';
import { loadMasterKey, SecretBox } from './security/crypto.js';
import { AgentBundleStore } from './storage/agent-bundles.js';
import { AlertEngine, platformAlertSources } from './services/alert-engine.js';
import { AlertNotifier } from './services/alert-notifier.js';
import { DeploymentService } from './services/deployments.js';
import { DeviceStatusSync } from './services/device-status-sync.js';
import { PlatformServices } from './services/platform.js';
import { MetricsHistoryService } from './services/metrics-history.js';

const SESSION_PURGE_INTERVAL_MS = 10 * 60_000;

export interface StartOptions {
  logger?: Logger;
  /**
   * Where one-time secrets (the generated admin password) are written; default stdout. They
   * never go to the logger, whose output usually ends up in log storage.
   */
  printSecret?: (text: string) => void;
  /** Overrides OPSPLANE_ADMIN_PASSWORD. */
  adminPassword?: string;
  /** The master key itself (base64/hex); overrides OPSPLANE_MASTER_KEY. */
  masterKey?: string;
  /**
   * Agent bundle files (.tar.gz) to offer besides those already in the bundle directory — the CLI
   * passes the agent it was built with. One that is there already is left as is.
   */
  bundles?: readonly string[];
}

export interface RunningServer {
  /** http://host:port actually bound (port 0 resolved). */
  readonly url: string;
  readonly app: App;
  readonly store: Store;
  /** What the HTTP edge calls: accounts, devices, agents, batches, alerts, … */
  readonly services: ServerContext;
  readonly database: DatabaseHandle;
  readonly config: ServerConfig;
  /** Discovery, controller pools, the agent view, batches, area credentials. */
  readonly platform: PlatformServices;
  /** Agent deployments: rollouts, the durable queue, agent bundles. */
  readonly deployments: DeploymentService;
  /** Alert evaluation (and its webhook notifier). */
  readonly alerts: AlertEngine;
  readonly notifier: AlertNotifier;
  /** Metrics over time (sampling and the history). */
  readonly metricsHistory: MetricsHistoryService;
  stop(): Promise<void>;
}

/** Opens, migrates and wraps the database — the part of start-up the CLI also needs (e.g. user admin). */
export async function openStore(
  config: ServerConfig,
  logger: Logger,
  opts: { masterKey?: string | undefined } = {},
): Promise<{ store: Store; database: DatabaseHandle; generatedKeyPath?: string }> {
  const s = config.server;
  const envKey = opts.masterKey ?? process.env.OPSPLANE_MASTER_KEY;
  await mkdir(s.data_dir, { recursive: true, mode: 0o700 });
  const database = await openDatabase({ url: s.database_url, dataDir: s.data_dir, logger });
  try {
    const report = await migrate(database.db);
    if (report.applied.length)
      logger.info({ applied: report.applied, location: database.location }, 'database migrated');
    const memory = database.location === 'memory://';
    const key =
      memory && !envKey && !s.master_key_file
        ? // Nothing outlives an in-memory database, so neither need its key.
          { box: new SecretBox(randomBytes(32)), source: 'ephemeral' as const }
        : await loadMasterKey(
            {
              env: envKey,
              file: s.master_key_file,
              dataDir: s.data_dir,
              mayGenerate: database.embedded,
            },
            logger,
          );
    logger.info(
      { driver: database.driver, location: database.location, key_id: key.box.keyId, key_source: key.source },
      'database ready',
    );
    const generatedKeyPath = key.source === 'generated' && 'path' in key ? key.path : undefined;
    return {
      store: new Store(database.db, key.box),
      database,
      ...(generatedKeyPath ? { generatedKeyPath } : {}),
    };
  } catch (e) {
    await database.close().catch(() => undefined);
    throw e;
  }
}

export async function startServer(config: ServerConfig, opts: StartOptions = {}): Promise<RunningServer> {
  const logger = opts.logger ?? createLogger('server');
  const print = opts.printSecret ?? ((t: string) => void process.stdout.write(t));
  const { store, database, generatedKeyPath } = await openStore(config, logger, {
    masterKey: opts.masterKey,
  });
  if (generatedKeyPath) print(masterKeyNotice(generatedKeyPath));
  let app: App | undefined;
  let platform: PlatformServices | undefined;
  let deployments: DeploymentService | undefined;
  let alerts: AlertEngine | undefined;
  let statusSync: DeviceStatusSync | undefined;
  let notifier: AlertNotifier | undefined;
  let history: MetricsHistoryService | undefined;
  let context: ServerContext | undefined;
  try {
    const boot = await ensureFirstAdmin(store, opts.adminPassword ?? process.env.OPSPLANE_ADMIN_PASSWORD);
    if (boot.created) {
      logger.warn({ username: boot.username }, 'created the first admin user');
      if (boot.generatedPassword) print(firstAdminBanner(boot.username as string, boot.generatedPassword));
    }
    const metrics = createMetrics(store);
    platform = new PlatformServices({ config, store, logger, registry: metrics.registry });
    await platform.start();
    const bundles = new AgentBundleStore(
      config.server.deploy.bundles_dir ?? join(config.server.data_dir, 'bundles'),
    );
    for (const path of opts.bundles ?? []) {
      const { bundle, created } = await bundles.add(await readFile(path)).catch((err: unknown) => {
        // A differing build under the same version: keep the stored one (versions are immutable).
        logger.warn({ err, path }, 'agent bundle not added');
        return { bundle: undefined, created: false };
      });
      if (created && bundle) logger.info({ version: bundle.version }, 'agent bundle added');
    }
    deployments = new DeploymentService({ config, store, platform, logger, bundles, metrics });
    await deployments.start({ exclusiveDatabase: database.embedded });
    const a = config.server.alerts;
    notifier = new AlertNotifier({
      webhooks: a.webhooks,
      timeoutMs: a.timeout,
      maxAttempts: a.max_attempts,
      counter: metrics.alertNotifications,
      logger: logger.child({ component: 'alert-notifier' }),
      userAgent: `opsplane-server/${SERVER_VERSION}`,
    });
    alerts = new AlertEngine({
      store,
      sources: platformAlertSources(platform, deployments),
      notifier,
      intervalMs: a.interval,
      pendingForMs: a.pending_for,
      logger,
    });
    alerts.start();
    statusSync = new DeviceStatusSync({
      store,
      platform,
      logger: logger.child({ component: 'device-status' }),
    });
    statusSync.start();
    const mh = config.server.metrics_history;
    history = new MetricsHistoryService({
      store,
      platform,
      intervalMs: mh.interval,
      retentionMs: mh.retention,
      maxWorkers: config.concurrency.max_workers,
      logger: logger.child({ component: 'metrics-history' }),
    });
    history.start();
    const audit = new AuditTrail(store, logger.child({ component: 'audit' }));
    const plat = platform;
    const agentArea = async (code: string) => (await plat.locate(code).catch(() => undefined))?.area;
    const ctx: ServerContext = {
      config,
      logger,
      metrics,
      checkDatabase: () => database.ping(),
      audit,
      accounts: new Accounts({
        store,
        audit,
        sessionTtlMs: config.server.session_ttl,
        loginFailures: metrics.loginFailures,
      }),
      tokens: new ApiTokens(store, audit),
      devices: new DeviceService(store, audit),
      areas: new AreaService(platform, store, audit),
      controllers: new ControllerService(platform, store),
      agents: new AgentService(platform, logger.child({ component: 'agents' }), history),
      batches: new BatchService(store, platform.batches, audit, async (code, pkg, file) => {
        const r = await plat.onAgent(code, (c) =>
          c.readConfigFile(code, pkg, file, AbortSignal.timeout(5000)),
        );
        return r.value.exists ? r.value.content : null;
      }),
      alerts: new AlertService(store, audit, agentArea),
      deploymentRequests: new DeploymentRequests(store, deployments, audit),
    };
    context = ctx;
    app = await buildApp(ctx);
    const { host, port } = parseListen(config.server.listen);
    await app.listen({ host, port });
  } catch (e) {
    await history?.stop().catch(() => undefined);
    await statusSync?.stop().catch(() => undefined);
    await alerts?.stop().catch(() => undefined);
    await notifier?.stop(0).catch(() => undefined);
    await deployments?.stop().catch(() => undefined);
    await app?.close().catch(() => undefined);
    await platform?.stop().catch(() => undefined);
    await database.close().catch(() => undefined);
    throw e;
  }
  const services = platform;
  const deploys = deployments;
  const alertEngine = alerts;
  const deviceStatus = statusSync;
  const alertNotifier = notifier;
  const metricsHistory = history as MetricsHistoryService;
  const ctx = context as ServerContext;
  const addr = app.server.address();
  const bound = typeof addr === 'object' && addr ? addr : { address: '127.0.0.1', port: 0, family: 'IPv4' };
  const host = bound.family === 'IPv6' ? `[${bound.address}]` : bound.address;
  const url = `http://${host}:${bound.port}`;
  logger.info({ url }, 'opsplane server listening');

  const purge = setInterval(() => {
    ctx.accounts.purgeExpiredSessions().catch((err: unknown) => logger.warn({ err }, 'session purge failed'));
  }, SESSION_PURGE_INTERVAL_MS);
  purge.unref();

  let stopping: Promise<void> | undefined;
  const running: RunningServer = {
    url,
    app,
    store,
    services: ctx,
    database,
    config,
    platform: services,
    deployments: deploys,
    alerts: alertEngine,
    notifier: alertNotifier,
    metricsHistory,
    stop() {
      stopping ??= (async () => {
        clearInterval(purge);
        // Alerts and device status first: what the stop of the rest looks like (agents gone, …)
        // is neither an alert nor a device going offline.
        await deviceStatus.stop();
        await metricsHistory.stop();
        await alertEngine.stop().catch((err: unknown) => logger.warn({ err }, 'stopping alerts failed'));
        await alertNotifier.stop();
        // Running deployments go back to the queue (their leases released) for the next start.
        await deploys.stop().catch((err: unknown) => logger.warn({ err }, 'stopping deployments failed'));
        // Running batches first: a POST /batches waiting for its job answers (202, the job still
        // running — the next start asks the agents what they did) instead of holding the HTTP close up.
        await services.batches
          .stop()
          .catch((err: unknown) => logger.warn({ err }, 'stopping batches failed'));
        await app.close();
        // Running batches are recorded (as failed) before the database closes.
        await services
          .stop()
          .catch((err: unknown) => logger.warn({ err }, 'stopping platform services failed'));
        await database.close();
        logger.info('opsplane server stopped');
      })();
      return stopping;
    },
  };
  return running;
}
