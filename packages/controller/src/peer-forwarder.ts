/**
 * Reaching agents held by other controllers of the same area. An agent holds one connection,
 * to any controller of its area, and fails over between them; the platform may ask any of them.
 * So a controller that does not hold an agent asks its online peers (found through etcd
 * discovery) with `x-opsplane-forwarded: 1`. A forwarded request is never forwarded again, and a
 * peer answers it only for agents it holds — which keeps this one hop and loop-free.
 */
import type { z } from 'zod';
import {
  BatchOperationResultSchema,
  ErrorBodySchema,
  type Controller,
  type OperationResult,
} from '@opsplane/models';
import type { Logger } from '@opsplane/kit';
import { Agent as UndiciAgent, fetch as undiciFetch } from 'undici';
import type { ControllerMetrics } from './metrics.js';

export const FORWARDED_HEADER = 'x-opsplane-forwarded';

/** Where peers come from (ControllerDiscovery in production). */
export interface PeerSource {
  listControllersByArea(area: string): Controller[];
}

export interface PeerForwarderOptions {
  area: string;
  selfId: string;
  source: PeerSource;
  apiToken: string | undefined;
  metrics: ControllerMetrics;
  logger: Logger;
  /** Peers serve HTTPS: verify them against this CA bundle (read on each new connection). */
  tls?: { ca: () => string };
}

type Fetch = (url: string, init: RequestInit) => Promise<Response>;

/** A peer's answer about an agent, relayed as is. */
export interface PeerAnswer {
  peer: string;
  status: number;
  contentType: string;
  body: string;
}

/**
 * Error codes that mean "this peer does not hold the agent" or "this peer could not serve us"
 * rather than an answer about the agent.
 */
const NOT_AN_ANSWER_CODES = new Set([
  'agent_not_found',
  'not_found',
  'unauthorized',
  'forbidden',
  'rate_limited',
  'internal',
]);

/**
 * A Go controller's batch errors for an agent it does not hold (its AgentManager: "agent with
 * ID x not found", "agent x is not online or not found"). Marked `agent_not_connected:` so that
 * they never win over the result of the controller that holds the agent.
 */
const GO_NOT_HELD = /agent with ID \S+ not found|is not online or not found/;

export function markGoNotHeld(results: OperationResult[], peer: string): OperationResult[] {
  return results.map((r) =>
    !r.success && r.error !== undefined && GO_NOT_HELD.test(r.error) && !r.error.startsWith('agent_')
      ? { ...r, error: `agent_not_connected: (Go controller '${peer}') ${r.error}` }
      : r,
  );
}

export function peerBaseUrl(address: string): string {
  // `:8081` (a Go controller's default service address) is this host, as Go's net/http dials it.
  if (/^:\d{1,5}$/.test(address)) address = `127.0.0.1${address}`;
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(address) ? address : `http://${address}`;
  return withScheme.replace(/\/+$/, '');
}

function errorCodeOf(body: string): string | undefined {
  try {
    const parsed = ErrorBodySchema.safeParse(JSON.parse(body));
    return parsed.success ? parsed.data.error.code : undefined;
  } catch {
    return undefined;
  }
}

export class PeerForwarder {
  private readonly opts: PeerForwarderOptions;
  private readonly log: Logger;
  private readonly fetch: Fetch;

  constructor(opts: PeerForwarderOptions) {
    this.opts = opts;
    this.log = opts.logger;
    const tls = opts.tls;
    if (tls) {
      let agent: UndiciAgent | undefined;
      let agentCa = '';
      this.fetch = (url, init) => {
        const ca = tls.ca();
        if (!agent || ca !== agentCa) {
          void agent?.close();
          agent = new UndiciAgent({ connect: { ca } });
          agentCa = ca;
        }
        return undiciFetch(url, { ...(init as object), dispatcher: agent }) as unknown as Promise<Response>;
      };
    } else {
      this.fetch = (url, init) => fetch(url, init);
    }
  }

  /** Online controllers of this area other than this one. */
  peers(): Controller[] {
    try {
      return this.opts.source
        .listControllersByArea(this.opts.area)
        .filter((c) => c.id !== this.opts.selfId && c.status === 'online');
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'cannot list peer controllers');
      return [];
    }
  }

  private headers(json: boolean): Record<string, string> {
    return {
      accept: 'application/json',
      [FORWARDED_HEADER]: '1',
      ...(json ? { 'content-type': 'application/json' } : {}),
      ...(this.opts.apiToken ? { authorization: `Bearer ${this.opts.apiToken}` } : {}),
    };
  }

  /**
   * Asks every peer for `pathAndQuery` (e.g. `/api/v1/agents/a1/health`). Resolves with the first
   * success as soon as it arrives; otherwise with the first peer error that is an answer about
   * the agent (e.g. its request timed out); otherwise undefined (no peer holds it).
   */
  async get(pathAndQuery: string, timeoutMs: number): Promise<PeerAnswer | undefined> {
    const peers = this.peers();
    if (peers.length === 0) return undefined;
    const abort = new AbortController();
    const signal = AbortSignal.any([abort.signal, AbortSignal.timeout(timeoutMs)]);
    let fallback: PeerAnswer | undefined;
    return new Promise<PeerAnswer | undefined>((resolve) => {
      let remaining = peers.length;
      let settled = false;
      const done = () => {
        if (--remaining === 0 && !settled) {
          this.opts.metrics.forwarded.inc({ kind: 'get', outcome: fallback ? 'error' : 'not_held' });
          resolve(fallback);
        }
      };
      for (const peer of peers) {
        const url = `${peerBaseUrl(peer.address)}${pathAndQuery}`;
        this.fetch(url, { headers: this.headers(false), signal })
          .then(async (res) => {
            if (settled) return;
            const answer: PeerAnswer = {
              peer: peer.id,
              status: res.status,
              contentType: res.headers.get('content-type') ?? 'application/json',
              body: await res.text(),
            };
            if (res.ok) {
              this.opts.metrics.forwarded.inc({ kind: 'get', outcome: 'ok' });
              settled = true;
              abort.abort();
              resolve(answer);
              return;
            }
            const code = errorCodeOf(answer.body);
            if (code === undefined || NOT_AN_ANSWER_CODES.has(code)) {
              if (code !== 'agent_not_found') {
                this.log.warn(
                  { peer: peer.id, url, status: res.status, code },
                  'peer refused a forwarded request',
                );
              }
            } else {
              fallback ??= answer;
            }
          })
          .catch((err: Error) => {
            if (!abort.signal.aborted)
              this.log.warn({ peer: peer.id, url, err: err.message }, 'peer unreachable');
          })
          .finally(done);
      }
    });
  }

  /**
   * POSTs `body` to every online peer (forwarded: a peer answers only for agents it holds) and
   * returns the answers that parsed, and the peers that failed — a failed peer may hold some of
   * the agents, so what it would have said is unknown, not "not held".
   */
  async post<T>(
    path: string,
    body: unknown,
    timeoutMs: number,
    schema: z.ZodType<T>,
    adapt?: (answer: T, peer: Controller) => T,
  ): Promise<{ answers: T[]; failed: string[] }> {
    const peers = this.peers();
    const failed: string[] = [];
    const answers: T[] = [];
    await Promise.all(
      peers.map(async (peer) => {
        const url = `${peerBaseUrl(peer.address)}${path}`;
        try {
          const res = await this.fetch(url, {
            method: 'POST',
            headers: this.headers(true),
            body: JSON.stringify(body),
            signal: AbortSignal.timeout(timeoutMs),
          });
          const text = await res.text();
          if (!res.ok) {
            this.opts.metrics.forwarded.inc({ kind: 'batch', outcome: 'error' });
            this.log.warn(
              { peer: peer.id, url, status: res.status, body: text.slice(0, 300) },
              'peer refused a forwarded request',
            );
            failed.push(peer.id);
            return;
          }
          const parsed = schema.safeParse(JSON.parse(text));
          if (!parsed.success) {
            this.opts.metrics.forwarded.inc({ kind: 'batch', outcome: 'invalid' });
            this.log.warn({ peer: peer.id, url }, 'peer answered a forwarded request with an invalid body');
            failed.push(peer.id);
            return;
          }
          this.opts.metrics.forwarded.inc({ kind: 'batch', outcome: 'ok' });
          answers.push(adapt ? adapt(parsed.data, peer) : parsed.data);
        } catch (err) {
          this.opts.metrics.forwarded.inc({ kind: 'batch', outcome: 'unreachable' });
          this.log.warn(
            { peer: peer.id, url, err: (err as Error).message },
            'peer unreachable for a forwarded request',
          );
          failed.push(peer.id);
        }
      }),
    );
    return { answers, failed };
  }

  /**
   * Sends a batch (already narrowed to agents not held here) to every peer and returns all the
   * results they gave (the caller picks, per agent, the one from the peer that holds it), and
   * the peers that failed.
   */
  async batch(
    path: string,
    body: unknown,
    timeoutMs: number,
  ): Promise<{ results: OperationResult[][]; failed: string[] }> {
    const { answers, failed } = await this.post(
      path,
      body,
      timeoutMs,
      BatchOperationResultSchema,
      (a, peer) => (peer.flavor === 'go' ? { ...a, results: markGoNotHeld(a.results, peer.id) } : a),
    );
    return { results: answers.map((a) => a.results), failed };
  }
}
