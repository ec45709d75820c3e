/**
 * startServer(): open the database (PGlite or PostgreSQL), migrate, load the master key,
 * bootstrap the first admin, start the platform services (area credentials, discovery — which
 * does not wait for etcd —, the agent view, batches), the deployment queue and the cluster duties
 * (leader election; alerts, webhooks, device status, controller history on the leader), build
 * the app and listen. Several replicas may share one PostgreSQL and etcd.
 *
 * stop() stops the cluster duties (resigning, so another replica leads at once), the
 * deployments (handed back to the queue), closes the HTTP server (letting in-flight requests
 * finish), then the platform services (running batches stay owned until their lease lapses, or
 * are reconciled by the next start), then the database.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { createLogger, withSafeSerializers } from '@opsplane/kit';
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
import type { AlertEngine } from './services/alert-engine.js';
import { ClusterDuties } from './services/cluster-duties.js';
import { DeploymentService } from './services/deployments.js';
import { PlatformServices } from './services/platform.js';
import { PkiService } from './services/pki.js';
import { loadTlsMaterial, TlsReloader } from '@opsplane/pki';
import type { Server as TlsServer } from 'node:tls';
import type { WebhookOutbox } from './services/webhook-outbox.js';
import { MetricsHistoryService } from './services/metrics-history.js';
import { ArtifactSigner } from './services/artifact-signing.js';
import { ArtifactService } from './services/artifacts.js';
import { ConvergenceLoop } from './services/convergence.js';
import { Distributor } from './services/distributor.js';
import type { ContentStoreFactory } from './storage/artifact-content-store.js';
import { S3ContentStore } from './storage/s3-content-store.js';
import { PolicyService } from './services/policies.js';
import { PolicyRolloutService } from './services/policy-rollouts.js';
import { RolloutEngine } from './services/rollout-engine.js';

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
  /** http(s)://host:port actually bound (port 0 resolved). */
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
  /** Alert evaluation and the webhook outbox (running on the elected leader only). */
  readonly alerts: AlertEngine;
  readonly outbox: WebhookOutbox;
  /** Leader election and the cluster-wide duties. */
  readonly duties: ClusterDuties;
  /** This replica's name (batch ownership, leader election). */
  readonly replicaId: string;
  /** Metrics over time (sampling on the leader, and the history). */
  readonly metricsHistory: MetricsHistoryService;
  /** Policy rollouts this replica runs (leased). */
  readonly rolloutEngine: RolloutEngine;
  /** Hands desired states to agents (runs while this replica leads). */
  readonly convergence: ConvergenceLoop;
  stop(): Promise<void>;
}

/** The S3 content store server.artifacts.store asks for (undefined: content in the database). */
function s3ContentStore(config: ServerConfig, logger: Logger): S3ContentStore | undefined {
  const c = config.server.artifacts.store;
  if (c.type !== 's3') return undefined;
  // The schema requires these with type 's3'.
  return new S3ContentStore(
    {
      endpoint: c.endpoint as string,
      region: c.region,
      bucket: c.bucket as string,
      pathStyle: c.path_style,
      prefix: c.prefix,
      accessKeyId: c.access_key_id as string,
      secretAccessKey: c.secret_access_key?.reveal() as string,
    },
    logger.child({ component: 'artifact-store' }),
  );
}

/** Opens, migrates and wraps the database — the part of start-up the CLI also needs (e.g. user admin). */
export async function openStore(
  config: ServerConfig,
  logger: Logger,
  opts: { masterKey?: string | undefined; content?: ContentStoreFactory } = {},
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
      store: new Store(database.db, key.box, opts.content),
      database,
      ...(generatedKeyPath ? { generatedKeyPath } : {}),
    };
  } catch (e) {
    await database.close().catch(() => undefined);
    throw e;
  }
}

export async function startServer(config: ServerConfig, opts: StartOptions = {}): Promise<RunningServer> {
  // No SQL parameters, query strings or secret-looking values in any log line, whoever made the logger.
  const logger = withSafeSerializers(opts.logger ?? createLogger('server'));
  const print = opts.printSecret ?? ((t: string) => void process.stdout.write(t));
  const replicaId =
    config.server.replica_id ?? `${hostname()}-${process.pid}-${randomBytes(2).toString('hex')}`;
  const s3 = s3ContentStore(config, logger);
  const { store, database, generatedKeyPath } = await openStore(config, logger, {
    masterKey: opts.masterKey,
    ...(s3 ? { content: () => s3 } : {}),
  });
  // Checked, not awaited into a crash: a store that is down makes artifact calls 503 until it is up.
  if (s3) void s3.watch();
  if (generatedKeyPath) print(masterKeyNotice(generatedKeyPath));
  let app: App | undefined;
  let platform: PlatformServices | undefined;
  let deployments: DeploymentService | undefined;
  let duties: ClusterDuties | undefined;
  let pki: PkiService | undefined;
  let rolloutEngine: RolloutEngine | undefined;
  let convergenceRef: ConvergenceLoop | undefined;
  let reloader: TlsReloader | undefined;
  let context: ServerContext | undefined;
  try {
    const boot = await ensureFirstAdmin(store, opts.adminPassword ?? process.env.OPSPLANE_ADMIN_PASSWORD);
    if (boot.created) {
      logger.warn({ username: boot.username }, 'created the first admin user');
      if (boot.generatedPassword) print(firstAdminBanner(boot.username as string, boot.generatedPassword));
    }
    const metrics = createMetrics(store);
    platform = new PlatformServices({
      config,
      store,
      logger,
      registry: metrics.registry,
      replicaId,
      exclusiveDatabase: database.embedded,
    });
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
    const pkiHolder: { pki?: PkiService } = {};
    const signer = new ArtifactSigner(store, config.server.artifacts.trusted_keys);
    deployments = new DeploymentService({
      config,
      store,
      platform,
      logger,
      bundles,
      metrics,
      replicaId,
      agentTls: (code, area) => pkiHolder.pki?.issueAgent(code, area) ?? Promise.resolve(undefined),
      // Installed agents pin the keys the cluster's artifacts are signed by (never learnt later).
      artifactKeys: () => signer.trusted(),
    });
    await deployments.start({ exclusiveDatabase: database.embedded });
    const mh = config.server.metrics_history;
    const history = new MetricsHistoryService({
      store,
      platform,
      intervalMs: mh.interval,
      retentionMs: mh.retention,
      maxWorkers: config.concurrency.max_workers,
      logger: logger.child({ component: 'metrics-history' }),
    });
    const audit = new AuditTrail(store, logger.child({ component: 'audit' }));
    // Distribution: artifacts, policies, the convergence loop (leader) and rollouts (leased).
    const artifactService = new ArtifactService(
      store,
      audit,
      signer,
      config.server.artifacts.max_size,
      logger.child({ component: 'artifacts' }),
    );
    const dist = config.server.distribution;
    const distributor = new Distributor({
      store,
      pools: platform.pools,
      callTimeoutMs: config.controller.api_timeout,
      logger: logger.child({ component: 'distributor' }),
    });
    const convergenceHolder: { loop?: ConvergenceLoop } = {};
    const policyService = new PolicyService(store, audit, platform.view, () =>
      convergenceHolder.loop?.kick(),
    );
    const convergence = new ConvergenceLoop({
      store,
      view: platform.view,
      policies: policyService,
      distributor,
      intervalMs: dist.interval,
      repushAfterMs: dist.repush_after,
      logger: logger.child({ component: 'convergence' }),
    });
    convergenceHolder.loop = convergence;
    convergenceRef = convergence;
    rolloutEngine = new RolloutEngine({
      store,
      view: platform.view,
      distributor,
      replicaId,
      leaseMs: dist.lease_ttl,
      pollMs: dist.poll_interval,
      logger: logger.child({ component: 'policy-rollouts' }),
      changed: () => convergence.kick(),
    });
    const engine = rolloutEngine;
    const rolloutService = new PolicyRolloutService(store, audit, platform.view, policyService, () => {
      engine.kick();
      convergence.kick();
    });
    duties = new ClusterDuties({
      convergence,
      metricsHistory: history,
      config,
      store,
      platform,
      deployments,
      metrics,
      etcd: database.embedded ? undefined : platform.etcd,
      replicaId,
      userAgent: `opsplane-server/${SERVER_VERSION}`,
      logger,
    });
    duties.start();
    rolloutEngine.start();
    pki = new PkiService({ config, platform, audit, logger });
    await pki.start();
    pkiHolder.pki = pki;
    const plat = platform;
    const agentArea = async (code: string) => (await plat.locate(code).catch(() => undefined))?.area;
    const ctx: ServerContext = {
      config,
      logger,
      metrics,
      checkDatabase: () => database.ping(),
      rateCounter: store.rateLimits,
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
      pki,
      artifacts: artifactService,
      policies: policyService,
      policyRollouts: rolloutService,
    };
    context = ctx;
    const tlsCfg = config.server.tls;
    const material = tlsCfg ? loadTlsMaterial(tlsCfg) : undefined;
    app = await buildApp(ctx, material ? { cert: material.cert ?? '', key: material.key ?? '' } : undefined);
    if (tlsCfg) {
      const server = app.server as unknown as TlsServer;
      reloader = new TlsReloader(
        tlsCfg,
        (m) => {
          server.setSecureContext({ cert: m.cert ?? '', key: m.key ?? '' });
          logger.info('server TLS certificate reloaded');
        },
        (err) => logger.warn({ err: err.message }, 'server TLS files changed but cannot be loaded yet'),
      );
      reloader.start(tlsCfg.reload_interval);
    } else {
      logger.warn('no server.tls: the API and the web UI are served over plain HTTP');
    }
    const { host, port } = parseListen(config.server.listen);
    await app.listen({ host, port });
  } catch (e) {
    reloader?.stop();
    await rolloutEngine?.stop().catch(() => undefined);
    await pki?.stop().catch(() => undefined);
    await duties?.stop().catch(() => undefined);
    await deployments?.stop().catch(() => undefined);
    await app?.close().catch(() => undefined);
    await platform?.stop().catch(() => undefined);
    await database.close().catch(() => undefined);
    await s3?.close().catch(() => undefined);
    throw e;
  }
  const services = platform;
  const deploys = deployments;
  const clusterDuties = duties;
  const ctx = context as ServerContext;
  const addr = app.server.address();
  const bound = typeof addr === 'object' && addr ? addr : { address: '127.0.0.1', port: 0, family: 'IPv4' };
  const host = bound.family === 'IPv6' ? `[${bound.address}]` : bound.address;
  const url = `${config.server.tls ? 'https' : 'http'}://${host}:${bound.port}`;
  const pkiService = pki as PkiService;
  const rollouts = rolloutEngine as RolloutEngine;
  const convergenceLoop = convergenceRef as ConvergenceLoop;
  const tlsReloader = reloader;
  logger.info({ url, replica: replicaId }, 'opsplane server listening');

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
    alerts: clusterDuties.alerts,
    outbox: clusterDuties.outbox,
    duties: clusterDuties,
    metricsHistory: clusterDuties.metricsHistory,
    rolloutEngine: rollouts,
    convergence: convergenceLoop,
    replicaId,
    stop() {
      stopping ??= (async () => {
        // Cluster duties first (another replica takes over at once): what the stop of the rest
        // looks like (agents gone, …) is neither an alert nor a device going offline.
        await clusterDuties
          .stop()
          .catch((err: unknown) => logger.warn({ err }, 'stopping cluster duties failed'));
        // Running policy rollouts: their leases released, another replica continues them.
        await rollouts
          .stop()
          .catch((err: unknown) => logger.warn({ err }, 'stopping policy rollouts failed'));
        // Running deployments go back to the queue (their leases released) for the next start.
        await deploys.stop().catch((err: unknown) => logger.warn({ err }, 'stopping deployments failed'));
        // Running batches first: a POST /batches waiting for its job answers (202, the job still
        // running — it is reconciled from the agents' journals) instead of holding the HTTP close up.
        await services.batches
          .stop()
          .catch((err: unknown) => logger.warn({ err }, 'stopping batches failed'));
        tlsReloader?.stop();
        await pkiService.stop();
        await app.close();
        await services
          .stop()
          .catch((err: unknown) => logger.warn({ err }, 'stopping platform services failed'));
        await database.close();
        await s3?.close().catch(() => undefined);
        logger.info('opsplane server stopped');
      })();
      return stopping;
    },
  };
  return running;
}
