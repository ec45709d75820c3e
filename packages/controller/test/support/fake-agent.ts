/**
 * A small agent peer for tests: speaks the real agent protocol over `ws` (authenticated upgrade,
 * hello, heartbeats at the interval from welcome, responses to requests) with scriptable
 * behaviour — answer normally, delay, never answer, go silent. The real agent package is
 * tested on its own; this keeps controller tests independent of it.
 */
import WebSocket from 'ws';
import {
  AGENT_AREA_HEADER,
  AGENT_CODE_HEADER,
  AGENT_CONNECT_PATH,
  ControllerMessageSchema,
  PROTOCOL_VERSION,
  type AgentOp,
  type AgentRequest,
  type ControllerMessage,
  type DistributionStatus,
  type PackageStatus,
} from '@opsplane/models';
import { agentToken } from '@opsplane/models';
import { SimulatedJournal, simulatedAnswer } from './simulated-answer.js';

export type Welcome = Extract<ControllerMessage, { type: 'welcome' }>;

export interface FakeAgentOptions {
  /** Controller base URL, e.g. http://127.0.0.1:1234 */
  url: string;
  code: string;
  area: string;
  secret: string;
  /** Package names (all running) or full statuses. */
  packages?: (string | PackageStatus)[];
  info?: Partial<{
    hostname: string;
    address: string;
    version: string;
    os: string;
    arch: string;
    zone: string;
    mode: string;
    group: string;
    deployment: string;
    labels: Record<string, string>;
  }>;
  /** Ops this agent never answers (to provoke timeouts). */
  hang?: AgentOp[];
  /** Delay before each answer. */
  delayMs?: number;
  /** Send heartbeats (default true). */
  heartbeats?: boolean;
  /** Distribution status to report in hello (and heartbeats, until changed). */
  distribution?: DistributionStatus;
}

export interface Closed {
  code: number;
  reason: string;
}

function toStatus(p: string | PackageStatus): PackageStatus {
  return typeof p === 'string'
    ? { name: p, version: '1.0.0', is_running: true, duration: 1_000_000_000, status: 'running' }
    : p;
}

export class FakeAgent {
  readonly opts: FakeAgentOptions;
  readonly ws: WebSocket;
  readonly requests: AgentRequest[] = [];
  readonly closed: Promise<Closed>;
  packages: PackageStatus[];
  /** Reported in heartbeats when set. */
  distribution: DistributionStatus | undefined;
  welcome: Welcome | undefined;
  heartbeatsSent = 0;
  /** Its operations journal: like a real agent's, an operation id acts once. */
  readonly journal = new SimulatedJournal();
  private timer: NodeJS.Timeout | undefined;
  private silent = false;

  private constructor(opts: FakeAgentOptions, ws: WebSocket) {
    this.opts = opts;
    this.ws = ws;
    this.packages = (opts.packages ?? ['web', 'db']).map(toStatus);
    this.distribution = opts.distribution;
    this.closed = new Promise((resolve) => {
      ws.on('close', (code, reason) => {
        clearInterval(this.timer);
        resolve({ code, reason: reason.toString() });
      });
    });
  }

  /** Connects, says hello, resolves once welcomed. */
  static async connect(opts: FakeAgentOptions): Promise<FakeAgent> {
    const ws = new WebSocket(`${opts.url.replace(/^http/, 'ws')}${AGENT_CONNECT_PATH}`, {
      headers: {
        [AGENT_CODE_HEADER]: opts.code,
        [AGENT_AREA_HEADER]: opts.area,
        authorization: `Bearer ${agentToken(opts.secret, opts.area, opts.code)}`,
      },
    });
    const agent = new FakeAgent(opts, ws);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
      ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused: ${res.statusCode}`)));
    });
    const welcomed = new Promise<Welcome>((resolve, reject) => {
      ws.on('message', (data) => {
        const msg = ControllerMessageSchema.parse(JSON.parse(data.toString()));
        if (msg.type === 'welcome') resolve(msg);
        else void agent.onRequest(msg);
      });
      void agent.closed.then((c) => reject(new Error(`closed before welcome: ${c.code} ${c.reason}`)));
    });
    agent.send({
      type: 'hello',
      protocol: PROTOCOL_VERSION,
      agent: {
        agent_code: opts.code,
        area: opts.area,
        hostname: opts.info?.hostname ?? `host-${opts.code}`,
        address: opts.info?.address ?? '10.0.0.1',
        version: opts.info?.version ?? '1.2.3',
        os: opts.info?.os ?? 'linux',
        arch: opts.info?.arch ?? 'amd64',
        labels: opts.info?.labels ?? {},
        ...(opts.info?.zone ? { zone: opts.info.zone } : {}),
        ...(opts.info?.mode ? { mode: opts.info.mode } : {}),
        ...(opts.info?.group ? { group: opts.info.group } : {}),
        ...(opts.info?.deployment ? { deployment: opts.info.deployment } : {}),
      },
      packages: agent.packages,
      health_status: 'healthy',
      ...(agent.distribution ? { distribution: agent.distribution } : {}),
    });
    agent.welcome = await welcomed;
    if (opts.heartbeats ?? true) {
      agent.timer = setInterval(() => agent.heartbeat(), agent.welcome.heartbeat_interval_ms);
    }
    return agent;
  }

  send(frame: unknown): void {
    this.ws.send(JSON.stringify(frame));
  }

  heartbeat(): void {
    if (this.silent || this.ws.readyState !== WebSocket.OPEN) return;
    this.heartbeatsSent++;
    this.send({
      type: 'heartbeat',
      seq: this.heartbeatsSent,
      packages: this.packages,
      health_status: 'healthy',
      ...(this.distribution ? { distribution: this.distribution } : {}),
    });
  }

  /** Stops heartbeats and answers, keeping the TCP connection open (a hung agent). */
  goSilent(): void {
    this.silent = true;
    clearInterval(this.timer);
  }

  async close(): Promise<Closed> {
    clearInterval(this.timer);
    if (this.ws.readyState === WebSocket.OPEN) this.ws.close(1000, 'bye');
    return this.closed;
  }

  private async onRequest(msg: ControllerMessage): Promise<void> {
    if (msg.type !== 'request') return;
    this.requests.push(msg.request);
    if (this.silent || this.opts.hang?.includes(msg.request.op)) return;
    if (this.opts.delayMs) await new Promise((r) => setTimeout(r, this.opts.delayMs));
    const answer = simulatedAnswer(this.opts.code, this.packages, msg.request, this.journal);
    this.send({ type: 'response', id: msg.id, ...answer });
  }
}

/** Attempts an upgrade with the given headers; resolves with the HTTP status of a refusal, or 101. */
export function tryUpgrade(url: string, headers: Record<string, string>): Promise<number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${url.replace(/^http/, 'ws')}${AGENT_CONNECT_PATH}`, { headers });
    ws.once('open', () => {
      ws.terminate();
      resolve(101);
    });
    ws.once('unexpected-response', (_req, res) => {
      resolve(res.statusCode ?? 0);
      res.resume();
      ws.terminate();
    });
    ws.once('error', (err) => reject(err));
  });
}
