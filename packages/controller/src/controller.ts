/**
 * startController: wires one controller together — agent registry and socket, batch dispatcher,
 * peer forwarding, HTTP API — then listens, and only then registers in etcd (so that whoever
 * finds it in etcd can already call it). etcd being down never stops it: it serves anyway and
 * registration/discovery keep retrying in the background.
 *
 * stop() is the graceful shutdown: deregister from etcd, refuse new agents, close agent sockets
 * with CLOSE_CODES.shutdown (agents fail over to a peer), close the HTTP
 * server, stop discovery, close the etcd client. Signal handling belongs to the CLI.
 */
import { readFileSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import type { Server as TlsServer } from 'node:tls';
import type { FastifyInstance } from 'fastify';
import { Gauge } from 'prom-client';
import { createLogger, withSafeSerializers, type Logger } from '@opsplane/kit';
import { ControllerDiscovery, ControllerRegistration, createEtcdClient } from '@opsplane/platform';
import { AgentRegistry } from './agent-registry.js';
import { ArtifactCache } from './artifact-cache.js';
import { ArtifactRelay } from './artifact-relay.js';
import { DesiredStatePusher } from './desired-state.js';
import { AgentSocketServer } from './agent-socket.js';
import { BatchDispatcher } from './batch-dispatcher.js';
import type { ControllerConfig } from './config.js';
import type { ControllerContext } from './context.js';
import { buildApp } from './http/app.js';
import { createMetrics } from './metrics.js';
import { PeerAgentLists } from './peer-agents.js';
import { PeerForwarder } from './peer-forwarder.js';
import { CertRelay } from './tls/cert-relay.js';
import { ControllerTls } from './tls/controller-tls.js';
import { RevocationWatcher } from './tls/revocations.js';
import { startLegacyListener, type LegacyListener } from './http/legacy.js';

export interface RunningController {
  readonly id: string;
  readonly area: string;
  /** Base URL of the HTTP API as bound, e.g. `http://127.0.0.1:8081` (https:// with TLS). */
  readonly url: string;
  /** The address registered in etcd (host:port, or the configured advertise value). */
  readonly address: string;
  readonly version: string;
  /** Whether the etcd registration is in place right now. */
  readonly registered: boolean;
  readonly agentCount: number;
  readonly app: FastifyInstance;
  /** Base URL of the token-less legacy listener, when configured. */
  readonly legacyUrl: string | undefined;
  /** Graceful shutdown; idempotent. */
  stop(): Promise<void>;
}

export interface StartControllerOptions {
  logger?: Logger;
  /** Collect Node process metrics (default true; tests running several controllers may turn it off). */
  processMetrics?: boolean;
  /** How often an open controller (insecure_no_token) repeats its warning. Default 5 minutes. */
  insecureWarnIntervalMs?: number;
}

const INSECURE_WARN_INTERVAL_MS = 5 * 60_000;

function readVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
      version?: string;
    };
    return pkg.version ?? '0.0.0';
  } catch {
    return '0.0.0';
  }
}

/** A host others can reach when listening on a wildcard address. */
function reachableHost(listenHost: string): string {
  if (listenHost !== '0.0.0.0' && listenHost !== '::')
    return listenHost.includes(':') ? `[${listenHost}]` : listenHost;
  for (const list of Object.values(networkInterfaces())) {
    for (const ni of list ?? []) if (ni.family === 'IPv4' && !ni.internal) return ni.address;
  }
  return '127.0.0.1';
}

async function bounded(what: string, p: Promise<unknown>, ms: number, log: Logger): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<void>((resolve) => {
    timer = setTimeout(() => {
      log.warn({ ms }, `${what} did not finish in time; continuing shutdown`);
      resolve();
    }, ms);
  });
  await Promise.race([p.catch((err: Error) => log.warn({ err: err.message }, `${what} failed`)), timeout]);
  clearTimeout(timer);
}

export async function startController(
  config: ControllerConfig,
  opts: StartControllerOptions = {},
): Promise<RunningController> {
  const log = withSafeSerializers(opts.logger ?? createLogger('controller')).child({
    controller: config.id,
    area: config.area,
  });
  // `module`, not `component`: the base logger usually carries component=controller already.
  const sub = (module: string) => log.child({ module });
  const version = readVersion();
  const startTimeMs = Date.now();

  const registry = new AgentRegistry({
    controllerId: config.id,
    area: config.area,
    offlineAfterMs: config.agents.offlineAfterMs,
    offlineRetentionMs: config.agents.offlineRetentionMs,
  });
  const metrics = createMetrics(
    { connected: () => registry.connectedCount, known: () => registry.size },
    { defaultMetrics: opts.processMetrics ?? true },
  );

  const etcd = createEtcdClient({
    endpoints: config.etcd.endpoints,
    dialTimeoutMs: config.etcd.dialTimeoutMs,
    ...(config.etcd.auth ? { auth: config.etcd.auth } : {}),
    ...(config.etcd.tls ? { tls: config.etcd.tls } : {}),
  });
  const tls = config.tls ? new ControllerTls(config.tls, sub('tls')) : undefined;
  if (!tls) log.warn('no tls configured: the API and the agent socket are plain HTTP/ws');
  const discovery = config.peers.forward
    ? new ControllerDiscovery(etcd, config.etcd.prefix, {
        // Keep retrying forever: peers are an extra, never a reason to give up.
        startTimeoutMs: 0,
        logger: sub('discovery'),
      })
    : null;
  const forwarder = discovery
    ? new PeerForwarder({
        area: config.area,
        selfId: config.id,
        source: discovery,
        apiToken: config.apiToken,
        metrics,
        logger: sub('peers'),
        ...(tls ? { tls: { ca: () => tls.ca } } : {}),
      })
    : null;
  const peerAgents = forwarder
    ? new PeerAgentLists({
        forwarder,
        apiToken: config.apiToken,
        ttlMs: config.peers.listTtlMs,
        timeoutMs: config.peers.listTimeoutMs,
        logger: sub('peer-lists'),
        ...(tls ? { tls: { ca: () => tls.ca } } : {}),
      })
    : null;
  const dispatcher = new BatchDispatcher({
    area: config.area,
    controllerId: config.id,
    registry,
    forwarder,
    perAgentTimeoutMs: config.batch.perAgentTimeoutMs,
    maxAgents: config.batch.maxAgents,
    concurrency: config.batch.concurrency,
    peerTimeoutMarginMs: config.peers.timeoutMarginMs,
    metrics,
    logger: sub('batch'),
  });

  const artifacts = new ArtifactCache({
    dir: config.artifacts.dir,
    keys: config.artifacts.keys,
    maxBytes: config.artifacts.maxBytes,
    metrics,
    logger: sub('artifacts'),
  });
  await artifacts.open();
  const desiredStates = new DesiredStatePusher({
    area: config.area,
    controllerId: config.id,
    registry,
    forwarder,
    timeoutMs: config.agents.requestTimeoutMs,
    peerTimeoutMarginMs: config.peers.timeoutMarginMs,
    concurrency: config.batch.concurrency,
    metrics,
    logger: sub('desired-state'),
  });
  // Filled in below; the watcher calls back into the sockets.
  const socketHolder: { sockets?: AgentSocketServer } = {};
  const revocations = new RevocationWatcher({
    etcd,
    onRevoked: (code) => socketHolder.sockets?.revoke(code),
    logger: sub('revocations'),
  });
  const agentAuth = {
    area: config.area,
    agentSecrets: config.agentSecrets,
    auth: config.agents.auth,
    isRevoked: (code: string) => revocations.isRevoked(code),
  };

  let address = config.advertise ?? '';
  // Created once the bound port is known; the routes read it through this holder.
  const etcdState: { registration?: ControllerRegistration } = {};
  const ctx: ControllerContext = {
    config,
    version,
    startTimeMs,
    registry,
    dispatcher,
    forwarder,
    peerAgents,
    metrics,
    artifacts,
    relay: new ArtifactRelay({ bandwidthBytesPerS: config.artifacts.bandwidthBytesPerS, metrics }),
    agentAuth,
    desiredStates,
    advertisedAddress: () => address,
    isRegistered: () => etcdState.registration?.registered ?? false,
  };

  // An open API (no token, on purpose) says so: at start, every few minutes, and as a metric.
  new Gauge({
    name: 'opsplane_controller_insecure_no_token',
    help: '1 when the controller API runs without api_token (insecure_no_token): anyone who reaches it may operate the agents',
    registers: [metrics.registry],
  }).set(config.insecureNoToken ? 1 : 0);
  let insecureTimer: NodeJS.Timeout | undefined;
  const warnInsecure = (url: string) =>
    log.warn(
      { insecure_no_token: true, url },
      `INSECURE: the controller API at ${url} has no api_token (insecure_no_token) — anyone who can reach it ` +
        `can list, restart and reconfigure every agent of area ${config.area}. Set OPSPLANE_CONTROLLER_TOKEN.`,
    );

  const app = await buildApp(ctx, sub('http'), tls ? { https: tls.serverOptions() } : {});
  const relay =
    tls && (config.agents.renewal || config.tls?.renew)
      ? new CertRelay({
          etcd,
          area: config.area,
          controllerId: config.id,
          timeoutMs: config.agents.renewalTimeoutMs,
          logger: sub('renewal'),
        })
      : undefined;
  const sockets = new AgentSocketServer({
    ...agentAuth,
    controllerId: config.id,
    ...(relay && config.agents.renewal
      ? { renew: (code: string, csr: string) => relay.request('agent', code, csr) }
      : {}),
    heartbeatIntervalMs: config.agents.heartbeatIntervalMs,
    helloTimeoutMs: config.agents.helloTimeoutMs,
    maxFrameBytes: config.agents.maxFrameBytes,
    sweepIntervalMs: Math.min(1000, Math.max(50, Math.floor(config.agents.offlineAfterMs / 10))),
    registry,
    metrics,
    logger: sub('agents'),
  });
  socketHolder.sockets = sockets;
  sockets.attach(app.server);
  revocations.start();

  let legacy: LegacyListener | undefined;
  try {
    await app.listen({ host: config.listen.host, port: config.listen.port });
    if (config.legacy) legacy = await startLegacyListener(ctx, config.legacy, sub('legacy-http'));
  } catch (err) {
    await revocations.stop();
    tls?.stop();
    etcd.close();
    await sockets.shutdown(0);
    await app.close().catch(() => undefined);
    throw err;
  }
  const bound = app.server.address();
  const port = typeof bound === 'object' && bound ? bound.port : config.listen.port;
  const scheme = tls ? 'https' : 'http';
  const url = `${scheme}://${reachableHost(config.listen.host)}:${port}`;
  // With TLS the registered address carries its scheme, so that the platform and peers dial https.
  address ||= `${tls ? 'https://' : ''}${reachableHost(config.listen.host)}:${port}`;
  if (tls) {
    tls.watch(app.server as unknown as TlsServer);
    if (relay) tls.startRenewal(relay, config.id);
  }
  log.info({ url, address, version }, `controller ${config.id} (area ${config.area}) listening on ${url}`);
  if (config.insecureNoToken) {
    warnInsecure(url);
    insecureTimer = setInterval(
      () => warnInsecure(url),
      opts.insecureWarnIntervalMs ?? INSECURE_WARN_INTERVAL_MS,
    );
    insecureTimer.unref();
  }

  const registration = new ControllerRegistration(etcd, {
    prefix: config.etcd.prefix,
    area: config.area,
    id: config.id,
    address,
    version,
    metadata: {
      listen: `${config.listen.host}:${port}`,
      pid: process.pid,
      agent_socket_path: '/api/v1/agents/connect',
      tls: tls ? 'true' : 'false',
    },
    ttlSeconds: config.leaseTtlSeconds,
    refreshIntervalMs: config.refreshIntervalMs,
    agentCount: () => registry.connectedCount,
    startTime: new Date(startTimeMs).toISOString(),
    registrationTimeoutMs: config.etcd.dialTimeoutMs,
    // Back in etcd within about half a TTL once it is reachable again.
    maxBackoffMs: Math.min(5000, (config.leaseTtlSeconds * 1000) / 2),
    logger: sub('registration'),
  });
  etcdState.registration = registration;
  registration.on('error', () => undefined); // already logged by the registration; listening keeps it from throwing
  registration.on('lost', (err) => log.warn({ err: err.message }, 'etcd registration lost; re-registering'));
  registration.on('registered', (info) => {
    if (info.generation > 1) log.info(info, 're-registered in etcd');
  });
  try {
    await registration.start();
  } catch (err) {
    log.warn(
      { err: (err as Error).message },
      'etcd unreachable; serving anyway and registering in the background',
    );
  }
  if (discovery) {
    discovery.on('error', (err) => log.debug({ err: err.message }, 'discovery error'));
    discovery.start().catch((err: Error) => log.warn({ err: err.message }, 'peer discovery failed to start'));
  }

  let stopping: Promise<void> | undefined;
  const reg = registration;
  const stop = async () => {
    log.info('shutting down');
    clearInterval(insecureTimer);
    // Deregister first: closing ~20k agent sockets keeps the event loop busy for seconds, long
    // enough for the etcd client to give up and leave the key to expire by TTL instead.
    await bounded('deregistration', reg.stop(), 5000, log);
    await revocations.stop();
    await relay?.stop();
    tls?.stop();
    await sockets.shutdown(2000);
    await bounded('http close', app.close(), 5000, log);
    if (legacy) await bounded('legacy http close', legacy.close(), 5000, log);
    if (peerAgents) await bounded('peer clients close', peerAgents.close(), 2000, log);
    if (discovery) await bounded('discovery stop', discovery.stop(), 3000, log);
    etcd.close();
    log.info('stopped');
  };

  return {
    id: config.id,
    area: config.area,
    url,
    address,
    version,
    get registered() {
      return reg.registered;
    },
    get agentCount() {
      return registry.connectedCount;
    },
    app,
    legacyUrl: legacy?.url,
    stop: () => (stopping ??= stop()),
  };
}
