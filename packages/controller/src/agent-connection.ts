/**
 * One authenticated agent WebSocket: sends `request` frames with correlation ids and resolves
 * them from `response` frames. Each pending request has its own timeout (requests are short-lived;
 * the per-agent liveness check is the registry's single sweep timer, not a timer per agent).
 * When the socket closes every pending request is rejected at once, so callers never hang.
 */
import type { WebSocket } from 'ws';
import type { z } from 'zod';
import {
  AgentResultSchemas,
  RequestTimeoutError,
  formatIssues,
  type AgentOp,
  type AgentRequest,
  type ControllerMessage,
} from '@opsplane/models';
import { AgentOfflineError, AgentProtocolError, AgentReportedError } from './errors.js';

export type AgentResult<O extends AgentOp> = z.output<(typeof AgentResultSchemas)[O]>;
export type AgentRequestOf<O extends AgentOp> = Extract<AgentRequest, { op: O }>;

interface Pending {
  op: AgentOp;
  timer: NodeJS.Timeout;
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
}

export interface ResponseFrame {
  id: string;
  ok: boolean;
  result?: unknown;
  error?: { code: string; message: string } | undefined;
}

export class AgentConnection {
  readonly code: string;
  readonly remoteAddress: string;
  readonly connectedAtMs = Date.now();
  /** Last frame of any kind; read by the sweep. */
  lastSeenMs = Date.now();
  /** Set once the hello was accepted. */
  ready = false;
  /** How the upgrade was authenticated. */
  authMethod: 'mtls' | 'token' = 'token';
  private readonly ws: WebSocket;
  private readonly pending = new Map<string, Pending>();
  private nextId = 0;
  private closedError: Error | undefined;

  constructor(ws: WebSocket, code: string, remoteAddress: string) {
    this.ws = ws;
    this.code = code;
    this.remoteAddress = remoteAddress;
  }

  get pendingCount(): number {
    return this.pending.size;
  }

  get isOpen(): boolean {
    return this.closedError === undefined && this.ws.readyState === this.ws.OPEN;
  }

  send(msg: ControllerMessage): Promise<void> {
    return new Promise((resolve, reject) => {
      this.ws.send(JSON.stringify(msg), (err) => (err ? reject(err) : resolve()));
    });
  }

  /** Sends one request and resolves with its validated result. */
  request<O extends AgentOp>(req: AgentRequestOf<O>, timeoutMs: number): Promise<AgentResult<O>> {
    if (!this.isOpen) return Promise.reject(this.closedError ?? new AgentOfflineError(this.code));
    const id = (this.nextId++).toString(36);
    return new Promise<AgentResult<O>>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new RequestTimeoutError(`request '${req.op}' to agent '${this.code}'`, timeoutMs));
      }, timeoutMs);
      this.pending.set(id, { op: req.op, timer, resolve: resolve as (v: unknown) => void, reject });
      this.send({ type: 'request', id, timeout_ms: timeoutMs, request: req }).catch((err: Error) => {
        this.settle(
          id,
          undefined,
          new AgentOfflineError(this.code, `cannot send to agent '${this.code}': ${err.message}`),
        );
      });
    });
  }

  /** Routes a response frame to its pending request; late or unknown ids are dropped (returns false). */
  handleResponse(frame: ResponseFrame): boolean {
    const p = this.pending.get(frame.id);
    if (!p) return false;
    if (!frame.ok) {
      const code = frame.error?.code ?? 'upstream_error';
      this.settle(
        frame.id,
        undefined,
        new AgentReportedError(this.code, code, frame.error?.message ?? 'request failed'),
      );
      return true;
    }
    const parsed = AgentResultSchemas[p.op].safeParse(frame.result);
    if (!parsed.success) {
      this.settle(
        frame.id,
        undefined,
        new AgentProtocolError(
          `agent '${this.code}' answered '${p.op}' with an invalid result: ${formatIssues(parsed.error.issues)}`,
        ),
      );
    } else {
      this.settle(frame.id, parsed.data);
    }
    return true;
  }

  private settle(id: string, value: unknown, error?: Error): void {
    const p = this.pending.get(id);
    if (!p) return;
    this.pending.delete(id);
    clearTimeout(p.timer);
    if (error) p.reject(error);
    else p.resolve(value);
  }

  /** Rejects every pending request; called when the socket is gone. Idempotent. */
  failAll(error: Error): void {
    this.closedError ??= error;
    // Requests in flight were written to the socket: the agent may have acted on them.
    const inFlight =
      error instanceof AgentOfflineError ? new AgentOfflineError(this.code, error.message, true) : error;
    for (const id of [...this.pending.keys()]) this.settle(id, undefined, inFlight);
  }

  close(code: number, reason: string): void {
    this.failAll(new AgentOfflineError(this.code, `agent '${this.code}' disconnected: ${reason}`));
    try {
      this.ws.close(code, reason);
    } catch {
      this.ws.terminate();
    }
  }

  /** Drops the TCP connection without a closing handshake (for peers that went silent). */
  terminate(reason: string): void {
    this.failAll(new AgentOfflineError(this.code, `agent '${this.code}' disconnected: ${reason}`));
    this.ws.terminate();
  }
}
