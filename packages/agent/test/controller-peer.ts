/**
 * A minimal controller side of the agent protocol for tests: a real HTTP server + `ws`
 * WebSocketServer at /api/v1/agents/connect that checks the upgrade headers and token (401
 * otherwise), records every frame, answers hello with welcome and sends requests.
 */
import { createHmac } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  AGENT_ARTIFACT_PATH,
  AGENT_AREA_HEADER,
  AGENT_CODE_HEADER,
  AGENT_CONNECT_PATH,
  AgentMessageSchema,
  type AgentMessage,
} from '@opsplane/models';
import { waitFor } from '@opsplane/test-support';
import type { WebSocket } from 'ws';
import { WebSocketServer } from 'ws';

export const SECRET = 'area-secret';
/** The contract's token: HMAC-SHA256(secret, "<area>:<code>") in hex. */
export const tokenFor = (area: string, code: string, secret = SECRET) =>
  createHmac('sha256', secret).update(`${area}:${code}`).digest('hex');

type Response = Extract<AgentMessage, { type: 'response' }>;

export class ControllerPeer {
  readonly frames: { raw: string; msg: AgentMessage | undefined }[] = [];
  readonly upgrades: IncomingMessage['headers'][] = [];
  readonly closes: { code: number; reason: string }[] = [];
  refusedCount = 0;
  /** Artifacts served at AGENT_ARTIFACT_PATH/<sha256> (with Range), by sha256. */
  readonly artifacts = new Map<string, Buffer>();
  /** Every artifact GET: its Range header and the bytes actually written. */
  readonly artifactGets: { sha256: string; range: string | undefined; status: number; bytes: number }[] = [];
  /** Bytes per 50 ms tick when serving artifacts (undefined = as fast as possible). */
  artifactRate: number | undefined;
  socket: WebSocket | undefined;
  private server!: Server;
  private wss!: WebSocketServer;
  private nextId = 1;
  url = '';

  constructor(
    readonly id: string,
    readonly area: string,
    private readonly opts: { heartbeatMs?: number; alwaysRefuse?: boolean } = {},
  ) {}

  async start(port = 0): Promise<this> {
    this.wss = new WebSocketServer({ noServer: true });
    this.server = createServer((req, res) => this.serveArtifact(req, res));
    this.server.on('upgrade', (req, sock, head) => {
      this.upgrades.push(req.headers);
      const code = String(req.headers[AGENT_CODE_HEADER] ?? '');
      const area = String(req.headers[AGENT_AREA_HEADER] ?? '');
      const ok =
        !this.opts.alwaysRefuse &&
        new URL(req.url ?? '/', 'http://x').pathname === AGENT_CONNECT_PATH &&
        area === this.area &&
        req.headers.authorization === `Bearer ${tokenFor(area, code)}`;
      if (!ok) {
        this.refusedCount++;
        sock.end('HTTP/1.1 401 Unauthorized\r\ncontent-length: 0\r\nconnection: close\r\n\r\n');
        return;
      }
      this.wss.handleUpgrade(req, sock, head, (ws) => this.attach(ws));
    });
    await new Promise<void>((r) => this.server.listen(port, '127.0.0.1', r));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  /** The artifact endpoint as the contract has it: same authentication as the upgrade, Range. */
  private serveArtifact(req: IncomingMessage, res: ServerResponse): void {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    if (!path.startsWith(`${AGENT_ARTIFACT_PATH}/`)) {
      res.writeHead(404).end();
      return;
    }
    const code = String(req.headers[AGENT_CODE_HEADER] ?? '');
    const area = String(req.headers[AGENT_AREA_HEADER] ?? '');
    if (area !== this.area || req.headers.authorization !== `Bearer ${tokenFor(area, code)}`) {
      res.writeHead(401).end();
      return;
    }
    const sha256 = path.slice(AGENT_ARTIFACT_PATH.length + 1);
    const data = this.artifacts.get(sha256);
    const rec = { sha256, range: req.headers.range, status: 404, bytes: 0 };
    this.artifactGets.push(rec);
    if (!data) {
      res.writeHead(404).end();
      return;
    }
    const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    const start = m ? Number(m[1]) : 0;
    if (start >= data.length) {
      rec.status = 416;
      res.writeHead(416, { 'content-range': `bytes */${data.length}` }).end();
      return;
    }
    rec.status = m ? 206 : 200;
    res.writeHead(rec.status, {
      'content-length': String(data.length - start),
      ...(m ? { 'content-range': `bytes ${start}-${data.length - 1}/${data.length}` } : {}),
    });
    const rate = this.artifactRate;
    if (rate === undefined) {
      rec.bytes = data.length - start;
      res.end(data.subarray(start));
      return;
    }
    let off = start;
    const tick = setInterval(() => {
      if (res.destroyed) {
        clearInterval(tick);
        return;
      }
      const chunk = data.subarray(off, Math.min(data.length, off + rate));
      off += chunk.length;
      rec.bytes += chunk.length;
      if (off >= data.length) {
        clearInterval(tick);
        res.end(chunk);
      } else res.write(chunk);
    }, 50);
    res.on('close', () => clearInterval(tick));
  }

  private attach(ws: WebSocket): void {
    this.socket = ws;
    ws.on('message', (data) => {
      const raw = String(data);
      const parsed = AgentMessageSchema.safeParse(JSON.parse(raw));
      this.frames.push({ raw, msg: parsed.success ? parsed.data : undefined });
      if (parsed.success && parsed.data.type === 'hello') {
        ws.send(
          JSON.stringify({
            type: 'welcome',
            protocol: 1,
            controller_id: this.id,
            area: this.area,
            heartbeat_interval_ms: this.opts.heartbeatMs ?? 200,
          }),
        );
      }
    });
    ws.on('close', (code, reason) => this.closes.push({ code, reason: String(reason) }));
  }

  of<T extends AgentMessage['type']>(type: T): Extract<AgentMessage, { type: T }>[] {
    return this.frames.flatMap((f) =>
      f.msg?.type === type ? [f.msg as Extract<AgentMessage, { type: T }>] : [],
    );
  }

  /** Sends a raw frame. */
  sendRaw(text: string): void {
    if (!this.socket) throw new Error('no agent connected');
    this.socket.send(text);
  }

  /** Sends a request and waits for the response with the same id. */
  async request(request: Record<string, unknown>, timeoutMs = 20_000): Promise<Response> {
    const id = `req-${this.nextId++}`;
    this.sendRaw(JSON.stringify({ type: 'request', id, timeout_ms: timeoutMs, request }));
    return this.response(id, timeoutMs);
  }

  response(id: string, timeoutMs = 10_000): Promise<Response> {
    return waitFor(() => this.of('response').find((r) => r.id === id), { timeoutMs, what: `response ${id}` });
  }

  /** Drops the agent's connection (as a crashing controller would). */
  dropAgent(code = 1001): void {
    this.socket?.close(code, 'going away');
  }

  async stop(): Promise<void> {
    for (const c of this.wss.clients) c.terminate();
    this.server.closeAllConnections();
    await new Promise<void>((r) => this.server.close(() => r()));
    this.wss.close();
  }
}
