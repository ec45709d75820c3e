/**
 * The agent's one connection to its area's controllers: WebSocket to
 * `<controller>/api/v1/agents/connect` authenticated on the upgrade, `hello` → `welcome`,
 * heartbeats every interval, `request` → `response`. On failure or drop it fails over to the
 * next controller URL (round-robin) after a jittered exponential backoff; a 401 (wrong token) is
 * reported as `refused` and retried slowly. Nothing a controller sends can crash it.
 */
import { EventEmitter } from 'node:events';
import {
  AGENT_AREA_HEADER,
  AGENT_CODE_HEADER,
  AGENT_CONNECT_PATH,
  CLOSE_CODES,
  PROTOCOL_VERSION,
  type AgentMessage,
  type AgentRequest,
  type CertificateMessage,
  type DistributionStatus,
  type HealthStatus,
  type PackageStatus,
} from '@opsplane/models';
import type { Logger } from '../log.js';
import WebSocket from 'ws';
import { backoffDelay } from '@opsplane/kit';
import { errorMessage } from '../util/timers.js';
import { parseControllerFrame, type WelcomeMessage } from './frames.js';

type HelloMessage = Extract<AgentMessage, { type: 'hello' }>;

export interface LinkEvents {
  connected: [controllerUrl: string, welcome: WelcomeMessage];
  disconnected: [controllerUrl: string, info: { code: number; reason: string }];
  refused: [controllerUrl: string, status: number];
}

export type RequestOutcome =
  { ok: true; result: unknown } | { ok: false; error: { code: string; message: string } };

export interface ControllerLinkOptions {
  controllers: readonly string[];
  agentCode: string;
  area: string;
  token: string;
  /**
   * The configured interval. Every welcome carries the controller's interval, which wins; this
   * one only sizes the wait for that welcome.
   */
  heartbeatIntervalMs: number;
  reconnect: { initialMs: number; maxMs: number };
  /** The `agent` part of hello. */
  agentInfo: () => HelloMessage['agent'];
  /** Current package states and overall health, for hello and heartbeats. */
  snapshot: () => {
    packages: PackageStatus[];
    health_status: HealthStatus;
    distribution?: DistributionStatus | undefined;
  };
  handle: (
    request: AgentRequest,
    ctx: { id: string; timeoutMs: number | undefined },
  ) => Promise<RequestOutcome>;
  logger: Logger;
  /** How long to wait for welcome after hello. */
  welcomeTimeoutMs?: number;
  /**
   * TLS material for each new connection (read at every connect, so a renewed certificate is
   * used from the next connection on): the pinned CA bundle — wss:// is verified against it
   * only — and the agent's certificate and key (mutual TLS).
   */
  tls?: () => { ca: string; cert?: string; key?: string };
}

/** `http://host:8080` → `ws://host:8080/api/v1/agents/connect` (https → wss; no scheme → ws). */
export function connectUrl(base: string): string {
  const u = new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(base) ? base : `http://${base}`);
  if (u.protocol === 'http:') u.protocol = 'ws:';
  else if (u.protocol === 'https:') u.protocol = 'wss:';
  const path = u.pathname.replace(/\/+$/, '');
  u.pathname = path.endsWith(AGENT_CONNECT_PATH) ? path : `${path}${AGENT_CONNECT_PATH}`;
  u.search = '';
  u.hash = '';
  return u.toString();
}

export class ControllerLink extends EventEmitter<LinkEvents> {
  private readonly opts: ControllerLinkOptions;
  private readonly log: Logger;
  private index = 0;
  private failures = 0;
  private ws: WebSocket | undefined;
  private current: string | undefined;
  private welcome: WelcomeMessage | undefined;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private welcomeTimer: NodeJS.Timeout | undefined;
  private seq = 0;
  private lastSeen = 0;
  private stopped = true;
  private nextCsrId = 0;
  private readonly certWaiters = new Map<string, (m: CertificateMessage) => void>();

  constructor(opts: ControllerLinkOptions) {
    super();
    if (opts.controllers.length === 0) throw new Error('ControllerLink needs at least one controller URL');
    this.opts = opts;
    this.log = opts.logger;
  }

  get connected(): boolean {
    return this.welcome !== undefined && this.ws?.readyState === WebSocket.OPEN;
  }

  /** Base URL of the controller currently connected (after welcome). */
  get controllerUrl(): string | undefined {
    return this.connected ? this.current : undefined;
  }

  get controllerId(): string | undefined {
    return this.connected ? this.welcome?.controller_id : undefined;
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.connect();
  }

  /** Closes the connection (code 1000) and stops reconnecting. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.reconnectTimer);
    this.clearSessionTimers();
    const ws = this.ws;
    if (!ws) return;
    if (ws.readyState === WebSocket.OPEN) {
      const closed = new Promise<void>((r) => ws.once('close', () => r()));
      ws.close(1000, 'agent stopping');
      const t = setTimeout(() => ws.terminate(), 2000);
      await closed;
      clearTimeout(t);
    } else if (ws.readyState === WebSocket.CONNECTING) {
      const closed = new Promise<void>((r) => ws.once('close', () => r()));
      ws.terminate();
      await closed;
    }
  }

  private clearSessionTimers(): void {
    clearInterval(this.heartbeatTimer);
    clearTimeout(this.welcomeTimer);
    this.heartbeatTimer = undefined;
    this.welcomeTimer = undefined;
  }

  private connect(): void {
    if (this.stopped) return;
    const base = this.opts.controllers[this.index % this.opts.controllers.length] ?? '';
    this.current = base;
    let url: string;
    try {
      url = connectUrl(base);
    } catch (e) {
      this.log.error({ controller: base, err: errorMessage(e) }, 'invalid controller URL');
      this.scheduleReconnect(
        backoffDelay(++this.failures, this.opts.reconnect.initialMs, this.opts.reconnect.maxMs, 0.2),
      );
      return;
    }
    this.log.debug({ controller: base }, 'connecting to controller');
    const tls = this.opts.tls?.();
    const ws = new WebSocket(url, {
      headers: this.authHeaders(),
      handshakeTimeout: 10_000,
      // Only the pinned CA: a certificate from any other CA (even a public one) is refused.
      ...(tls ? { ca: tls.ca, ...(tls.cert && tls.key ? { cert: tls.cert, key: tls.key } : {}) } : {}),
    });
    this.ws = ws;
    let refusedStatus: number | undefined;
    let welcomed = false;

    ws.on('unexpected-response', (_req, res) => {
      refusedStatus = res.statusCode ?? 0;
      res.resume();
      if (refusedStatus === 403) {
        this.log.error(
          { controller: base, agent_code: this.opts.agentCode, area: this.opts.area },
          'controller refused the agent (403): this agent has been revoked by the platform',
        );
        this.emit('refused', base, refusedStatus);
      } else if (refusedStatus === 401) {
        this.log.error(
          { controller: base, agent_code: this.opts.agentCode, area: this.opts.area },
          'controller refused the agent (401): the token does not match this agent code and area; check token / OPSPLANE_AGENT_TOKEN',
        );
        this.emit('refused', base, refusedStatus);
      } else {
        this.log.warn(
          { controller: base, status: refusedStatus },
          'controller refused the WebSocket upgrade',
        );
      }
      ws.terminate();
    });
    ws.on('open', () => {
      this.lastSeen = Date.now();
      const snap = this.opts.snapshot();
      this.send(ws, {
        type: 'hello',
        protocol: PROTOCOL_VERSION,
        agent: this.opts.agentInfo(),
        packages: snap.packages,
        health_status: snap.health_status,
        ...(snap.distribution ? { distribution: snap.distribution } : {}),
      });
      this.welcomeTimer = setTimeout(
        () => {
          this.log.warn({ controller: base }, 'no welcome from controller; reconnecting');
          ws.terminate();
        },
        this.opts.welcomeTimeoutMs ?? Math.max(10_000, 2 * this.opts.heartbeatIntervalMs),
      );
    });
    ws.on('message', (data, isBinary) => {
      this.lastSeen = Date.now();
      if (isBinary) {
        this.log.warn({ controller: base }, 'ignoring binary frame');
        return;
      }
      const text = Array.isArray(data)
        ? Buffer.concat(data).toString('utf8')
        : Buffer.from(data as ArrayBuffer).toString('utf8');
      try {
        if (this.onFrame(ws, base, text)) welcomed = true;
      } catch (e) {
        this.log.error({ err: errorMessage(e) }, 'frame handling failed');
      }
    });
    ws.on('pong', () => {
      this.lastSeen = Date.now();
    });
    ws.on('error', (e) => {
      if (refusedStatus !== undefined) return;
      // While controllers are down this repeats every few seconds: warn on the first failure and
      // every tenth, keep the rest at debug.
      const level = this.failures % 10 === 0 ? 'warn' : 'debug';
      this.log[level](
        { controller: base, err: e.message, failures: this.failures },
        'controller connection error',
      );
    });
    ws.on('close', (code, reasonBuf) => {
      const reason = reasonBuf.toString();
      if (this.ws === ws) this.ws = undefined;
      this.clearSessionTimers();
      this.welcome = undefined;
      if (welcomed) {
        this.log.warn({ controller: base, code, reason }, 'disconnected from controller');
        this.emit('disconnected', base, { code, reason });
      }
      if (this.stopped) return;
      // Next time, the next controller: round-robin failover.
      this.index = (this.index + 1) % this.opts.controllers.length;
      const { initialMs, maxMs } = this.opts.reconnect;
      let wait: number;
      if (code === CLOSE_CODES.revoked) {
        this.log.error({ controller: base }, 'disconnected: this agent has been revoked by the platform');
      }
      if (
        refusedStatus === 401 ||
        refusedStatus === 403 ||
        code === CLOSE_CODES.replaced ||
        code === CLOSE_CODES.revoked
      ) {
        // Wrong token or a duplicate agent: retrying fast cannot help and would hammer the controller.
        this.failures++;
        wait = backoffDelay(31, initialMs, maxMs, 0.2);
      } else if (welcomed) {
        this.failures = 0;
        wait = backoffDelay(1, initialMs, maxMs, 0.2);
      } else {
        wait = backoffDelay(++this.failures, initialMs, maxMs, 0.2);
      }
      this.scheduleReconnect(wait);
    });
  }

  private scheduleReconnect(ms: number): void {
    if (this.stopped) return;
    this.log.debug({ in_ms: ms, next: this.opts.controllers[this.index] }, 'reconnect scheduled');
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = setTimeout(() => this.connect(), ms);
  }

  /** Returns true when the frame was the welcome. */
  private onFrame(ws: WebSocket, base: string, text: string): boolean {
    const f = parseControllerFrame(text);
    switch (f.kind) {
      case 'welcome':
        this.onWelcome(ws, base, f.welcome);
        return true;
      case 'request':
        void this.dispatch(ws, f.id, f.timeoutMs, f.request);
        return false;
      case 'certificate': {
        const waiter = this.certWaiters.get(f.certificate.id);
        this.certWaiters.delete(f.certificate.id);
        waiter?.(f.certificate);
        return false;
      }
      case 'invalid':
        this.log.warn({ controller: base, id: f.id, problem: f.message }, 'invalid frame from controller');
        if (f.id !== undefined) {
          this.send(ws, {
            type: 'response',
            id: f.id,
            ok: false,
            error: { code: 'bad_request', message: f.message },
          });
        }
        return false;
    }
  }

  private onWelcome(ws: WebSocket, base: string, w: WelcomeMessage): void {
    clearTimeout(this.welcomeTimer);
    if (w.protocol !== PROTOCOL_VERSION) {
      this.log.warn(
        { controller: base, theirs: w.protocol, ours: PROTOCOL_VERSION },
        'protocol version differs',
      );
    }
    if (w.area !== this.opts.area) {
      this.log.warn(
        { controller: base, theirs: w.area, ours: this.opts.area },
        'controller serves another area',
      );
    }
    this.welcome = w;
    this.failures = 0;
    // A controller asking for 1 ms heartbeats would get a flood; 100 ms is plenty fast.
    const interval = Math.max(100, w.heartbeat_interval_ms);
    clearInterval(this.heartbeatTimer);
    this.heartbeatTimer = setInterval(() => this.beat(ws, interval), interval);
    this.log.info(
      { controller: base, controller_id: w.controller_id, heartbeat_ms: interval },
      'connected to controller',
    );
    this.emit('connected', base, w);
  }

  private beat(ws: WebSocket, interval: number): void {
    if (ws.readyState !== WebSocket.OPEN) return;
    // Half-open TCP shows no error; silence for three intervals means the peer is gone.
    if (Date.now() - this.lastSeen > 3 * interval + 1000) {
      this.log.warn({ controller: this.current }, 'controller silent for too long; reconnecting');
      ws.terminate();
      return;
    }
    const snap = this.opts.snapshot();
    this.send(ws, {
      type: 'heartbeat',
      seq: this.seq++,
      packages: snap.packages,
      health_status: snap.health_status,
      ...(snap.distribution ? { distribution: snap.distribution } : {}),
    });
    ws.ping();
  }

  private async dispatch(
    ws: WebSocket,
    id: string,
    timeoutMs: number | undefined,
    request: AgentRequest,
  ): Promise<void> {
    let outcome: RequestOutcome;
    try {
      outcome = await this.opts.handle(request, { id, timeoutMs });
    } catch (e) {
      this.log.error({ id, op: request.op, err: errorMessage(e) }, 'request handler failed');
      outcome = { ok: false, error: { code: 'internal', message: errorMessage(e) } };
    }
    const frame: AgentMessage = outcome.ok
      ? { type: 'response', id, ok: true, result: outcome.result }
      : { type: 'response', id, ok: false, error: outcome.error };
    if (ws.readyState !== WebSocket.OPEN) {
      this.log.warn({ id, op: request.op }, 'connection closed before the response could be sent');
      return;
    }
    this.send(ws, frame);
  }

  /**
   * Sends a certificate signing request over the current connection and resolves with the
   * controller's `certificate` answer (which may carry an error).
   */
  requestCertificate(csrPem: string, timeoutMs = 60_000): Promise<CertificateMessage> {
    const ws = this.ws;
    if (!ws || !this.connected) return Promise.reject(new Error('not connected to a controller'));
    const id = `csr-${++this.nextCsrId}`;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.certWaiters.delete(id);
        reject(new Error(`no answer to the certificate request within ${timeoutMs} ms`));
      }, timeoutMs);
      this.certWaiters.set(id, (m) => {
        clearTimeout(timer);
        resolve(m);
      });
      ws.once('close', () => {
        if (this.certWaiters.delete(id)) {
          clearTimeout(timer);
          reject(new Error('connection closed before the certificate request was answered'));
        }
      });
      this.send(ws, { type: 'csr', id, csr: csrPem });
    });
  }

  /** The headers that authenticate the agent on the upgrade (reused for artifact downloads). */
  authHeaders(): Record<string, string> {
    return {
      [AGENT_CODE_HEADER]: this.opts.agentCode,
      [AGENT_AREA_HEADER]: this.opts.area,
      ...(this.opts.token ? { authorization: `Bearer ${this.opts.token}` } : {}),
    };
  }

  private send(ws: WebSocket, frame: AgentMessage): void {
    if (ws.readyState !== WebSocket.OPEN) return;
    ws.send(JSON.stringify(frame), (err) => {
      if (err) this.log.warn({ err: err.message, type: frame.type }, 'sending frame failed');
    });
  }
}
