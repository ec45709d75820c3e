/**
 * The agent WebSocket endpoint (AGENT_CONNECT_PATH) on Fastify's HTTP server, with `ws` in
 * noServer mode: the upgrade is authenticated before any WebSocket exists (a refused agent gets
 * a plain HTTP 401 and its socket destroyed, so it never appears anywhere), then the protocol is
 * hello → welcome → heartbeats/responses, every frame validated with the models' zod schemas.
 *
 * Agents authenticate by HMAC token or client certificate (agent-auth.ts, `agents.auth`). A code
 * the platform revoked (revocations in etcd) is refused with 403 and its open connection closed
 * with CLOSE_CODES.revoked. An agent authenticated by certificate may
 * renew it over its socket (`csr` → `certificate`, relayed to the platform).
 *
 * Also owns the single sweep timer: silent connections are dropped (agent becomes offline),
 * connections that never say hello are dropped, retained offline records expire.
 */
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { csrCommonName } from '@opsplane/pki';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';
import {
  AGENT_AREA_HEADER,
  AGENT_CONNECT_PATH,
  AgentMessageSchema,
  CLOSE_CODES,
  PROTOCOL_VERSION,
  formatIssues,
  type AgentMessage,
  type CsrMessage,
} from '@opsplane/models';
import type { Logger } from '@opsplane/kit';
import { authenticateAgent, type AgentAuthOptions } from './agent-auth.js';
import { AgentConnection } from './agent-connection.js';
import type { AgentRegistry } from './agent-registry.js';
import { AgentOfflineError } from './errors.js';
import type { ControllerMetrics } from './metrics.js';

/** Authentication (agent-auth.ts: shared with the agents' artifact downloads) and the socket's own settings. */
export interface AgentSocketOptions extends AgentAuthOptions {
  controllerId: string;
  /** Relays a renewal request of an agent authenticated by certificate; absent = renewal off. */
  renew?: (code: string, csrPem: string) => Promise<{ cert: string; ca?: string }>;
  heartbeatIntervalMs: number;
  helloTimeoutMs: number;
  maxFrameBytes: number;
  /** How often the sweep runs. */
  sweepIntervalMs: number;
  registry: AgentRegistry;
  metrics: ControllerMetrics;
  logger: Logger;
}

const STATUS_TEXT: Record<number, string> = {
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  503: 'Service Unavailable',
};

/** Answers an upgrade request with a plain HTTP error and destroys the socket. */
function refuse(socket: Duplex, status: number, code: string, message: string): void {
  const body = JSON.stringify({ error: { code, message } });
  socket.once('finish', () => socket.destroy());
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_TEXT[status] ?? 'Error'}\r\n` +
      'Connection: close\r\n' +
      'Content-Type: application/json\r\n' +
      `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n` +
      body,
  );
}

function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

export class AgentSocketServer {
  private readonly wss: WebSocketServer;
  private readonly opts: AgentSocketOptions;
  private readonly log: Logger;
  /** Connections that have not said hello yet (checked by the sweep). */
  private readonly awaitingHello = new Set<AgentConnection>();
  /** Every open socket, for shutdown. */
  private readonly sockets = new Set<WebSocket>();
  private sweepTimer: NodeJS.Timeout | undefined;
  private accepting = true;

  constructor(opts: AgentSocketOptions) {
    this.opts = opts;
    this.log = opts.logger;
    this.wss = new WebSocketServer({
      noServer: true,
      maxPayload: opts.maxFrameBytes,
      // Compression costs CPU and memory per socket; frames are small JSON.
      perMessageDeflate: false,
      clientTracking: false,
    });
  }

  /** Hooks into the HTTP server's upgrade event and starts the sweep. */
  attach(server: Server): void {
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) =>
      this.onUpgrade(req, socket, head),
    );
    this.sweepTimer = setInterval(() => this.sweep(), this.opts.sweepIntervalMs);
    this.sweepTimer.unref();
  }

  private onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', () => socket.destroy());
    const path = (req.url ?? '').split('?')[0];
    if (path !== AGENT_CONNECT_PATH) {
      refuse(socket, 404, 'not_found', `no WebSocket endpoint at ${path ?? ''}`);
      return;
    }
    if (!this.accepting) {
      refuse(socket, 503, 'controller_unavailable', 'controller is shutting down');
      return;
    }
    const who = authenticateAgent(req, this.opts);
    if (!who.ok) {
      this.opts.metrics.connections.inc({ outcome: who.status === 403 ? 'revoked' : 'unauthorized' });
      this.log.warn(
        {
          remote: req.socket.remoteAddress,
          agent: who.claimed,
          area: header(req, AGENT_AREA_HEADER),
          why: who.why,
        },
        'agent connection refused',
      );
      refuse(socket, who.status, who.code, who.why);
      return;
    }
    const { code, method } = who;
    this.wss.handleUpgrade(req, socket, head, (ws) =>
      this.onConnection(ws, code, req.socket.remoteAddress ?? '', method),
    );
  }

  /** Closes the connection of a revoked agent (and any not yet past hello); returns how many. */
  revoke(code: string): number {
    let n = 0;
    const conn = this.opts.registry.connectionOf(code);
    if (conn) {
      conn.close(CLOSE_CODES.revoked, 'revoked by the platform');
      n++;
    }
    for (const c of this.awaitingHello) {
      if (c.code === code) {
        this.awaitingHello.delete(c);
        c.close(CLOSE_CODES.revoked, 'revoked by the platform');
        n++;
      }
    }
    if (n > 0) this.log.warn({ agent: code }, 'revoked agent disconnected');
    return n;
  }

  private onConnection(
    ws: WebSocket,
    code: string,
    remote: string,
    method: 'mtls' | 'token' = 'token',
  ): void {
    const conn = new AgentConnection(ws, code, remote);
    conn.authMethod = method;
    this.sockets.add(ws);
    this.awaitingHello.add(conn);
    ws.on('message', (data: RawData, isBinary: boolean) => this.onFrame(conn, data, isBinary));
    ws.on('error', (err) => this.log.debug({ agent: code, err: err.message }, 'agent socket error'));
    ws.on('close', (closeCode: number, reason: Buffer) => {
      this.sockets.delete(ws);
      this.awaitingHello.delete(conn);
      conn.failAll(new AgentOfflineError(code, `agent '${code}' disconnected before answering`));
      if (this.opts.registry.detach(conn)) {
        this.log.info({ agent: code, closeCode, reason: reason.toString() }, 'agent disconnected');
      }
    });
  }

  private protocolViolation(conn: AgentConnection, why: string): void {
    this.opts.metrics.connections.inc({ outcome: 'protocol_error' });
    this.log.warn({ agent: conn.code, why }, 'agent protocol violation; closing');
    conn.close(CLOSE_CODES.protocol, why.slice(0, 120));
  }

  private onFrame(conn: AgentConnection, data: RawData, isBinary: boolean): void {
    conn.lastSeenMs = Date.now();
    if (isBinary) return this.protocolViolation(conn, 'binary frames are not part of the protocol');
    let msg: AgentMessage;
    try {
      const parsed = AgentMessageSchema.safeParse(JSON.parse(data.toString()));
      if (!parsed.success)
        return this.protocolViolation(conn, `invalid frame: ${formatIssues(parsed.error.issues)}`);
      msg = parsed.data;
    } catch {
      return this.protocolViolation(conn, 'frame is not JSON');
    }
    if (!conn.ready) {
      if (msg.type !== 'hello') return this.protocolViolation(conn, `expected hello, got ${msg.type}`);
      return this.onHello(conn, msg);
    }
    switch (msg.type) {
      case 'hello':
        return this.protocolViolation(conn, 'hello sent twice');
      case 'heartbeat':
        this.opts.metrics.heartbeats.inc();
        this.opts.registry.heartbeat(conn, {
          packages: msg.packages,
          healthStatus: msg.health_status,
          distribution: msg.distribution,
        });
        return;
      case 'response':
        if (!conn.handleResponse(msg))
          this.log.debug({ agent: conn.code, id: msg.id }, 'late or unknown response dropped');
        return;
      case 'csr':
        return this.onCsr(conn, msg);
    }
  }

  /** A renewal request: only over the agent's own certificate-authenticated connection, for its own name. */
  private onCsr(conn: AgentConnection, msg: CsrMessage): void {
    const answer = (body: { cert?: string; ca?: string; error?: { code: string; message: string } }) =>
      conn.send({ type: 'certificate', id: msg.id, ...body }).catch(() => undefined);
    if (!this.opts.renew) {
      return void answer({
        error: { code: 'not_supported', message: 'this controller does not relay renewals' },
      });
    }
    if (conn.authMethod !== 'mtls') {
      return void answer({
        error: {
          code: 'forbidden',
          message: 'renewal needs a connection authenticated by the agent certificate',
        },
      });
    }
    const renew = this.opts.renew;
    void csrCommonName(msg.csr)
      .then((cn) => {
        if (cn !== conn.code) {
          throw Object.assign(new Error(`the request names '${cn ?? '?'}', not this agent '${conn.code}'`), {
            code: 'forbidden',
          });
        }
        return renew(conn.code, msg.csr);
      })
      .then((r) => {
        this.log.info({ agent: conn.code }, 'agent certificate renewed');
        return answer({ cert: r.cert, ...(r.ca ? { ca: r.ca } : {}) });
      })
      .catch((err: Error & { code?: string }) => {
        this.log.warn({ agent: conn.code, err: err.message }, 'agent certificate renewal failed');
        return answer({ error: { code: err.code ?? 'renewal_failed', message: err.message } });
      });
  }

  private onHello(conn: AgentConnection, msg: Extract<AgentMessage, { type: 'hello' }>): void {
    if (msg.protocol !== PROTOCOL_VERSION) {
      return this.protocolViolation(
        conn,
        `protocol ${msg.protocol} not supported (this controller speaks ${PROTOCOL_VERSION})`,
      );
    }
    if (msg.agent.agent_code !== conn.code) {
      return this.protocolViolation(
        conn,
        `hello names agent '${msg.agent.agent_code}' but the token is for '${conn.code}'`,
      );
    }
    if (msg.agent.area !== this.opts.area) {
      return this.protocolViolation(
        conn,
        `hello names area '${msg.agent.area}' but this is area '${this.opts.area}'`,
      );
    }
    this.awaitingHello.delete(conn);
    conn.ready = true;
    const replaced = this.opts.registry.attach(conn, {
      info: msg.agent,
      packages: msg.packages,
      healthStatus: msg.health_status,
      distribution: msg.distribution,
    });
    if (replaced) {
      this.opts.metrics.connections.inc({ outcome: 'replaced' });
      this.log.info({ agent: conn.code }, 'agent reconnected; closing its previous connection');
      replaced.close(CLOSE_CODES.replaced, 'replaced by a newer connection of the same agent');
    }
    this.opts.metrics.connections.inc({ outcome: 'accepted' });
    this.log.info(
      { agent: conn.code, remote: conn.remoteAddress, version: msg.agent.version },
      'agent connected',
    );
    conn
      .send({
        type: 'welcome',
        protocol: PROTOCOL_VERSION,
        controller_id: this.opts.controllerId,
        area: this.opts.area,
        heartbeat_interval_ms: this.opts.heartbeatIntervalMs,
      })
      .catch(() => conn.terminate('welcome could not be sent'));
  }

  /** One pass for all agents: silent ones are dropped, hello-less ones too, old offline ones expire. */
  sweep(now = Date.now()): void {
    const { silent, expired } = this.opts.registry.sweep(now);
    for (const conn of silent) {
      this.opts.metrics.connections.inc({ outcome: 'silent' });
      this.log.warn({ agent: conn.code, silentMs: now - conn.lastSeenMs }, 'agent silent; marking offline');
      // Marks it offline now rather than when the TCP close arrives.
      this.opts.registry.detach(conn, now);
      conn.terminate('no heartbeat');
    }
    for (const conn of this.awaitingHello) {
      if (now - conn.connectedAtMs > this.opts.helloTimeoutMs) {
        this.awaitingHello.delete(conn);
        this.protocolViolation(conn, 'no hello received');
      }
    }
    if (expired > 0) this.log.info({ expired }, 'offline agents dropped after retention');
  }

  /**
   * Stops accepting agents and closes every socket with CLOSE_CODES.shutdown so agents fail over
   * to another controller of the area. Resolves when all are closed (or after `graceMs`).
   */
  async shutdown(graceMs = 2000): Promise<void> {
    this.accepting = false;
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    for (const conn of this.awaitingHello) conn.close(CLOSE_CODES.shutdown, 'controller shutting down');
    for (const conn of this.opts.registry.connections())
      conn.close(CLOSE_CODES.shutdown, 'controller shutting down');
    const deadline = Date.now() + graceMs;
    while (this.sockets.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    for (const ws of this.sockets) ws.terminate();
    this.wss.close();
  }
}
