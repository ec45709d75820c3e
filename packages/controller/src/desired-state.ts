/**
 * Handing agents their desired state (POST /api/v1/agents/desired-state): each item goes to its
 * agent over the socket as a `desired_state` request (the agent persists it and answers with its
 * distribution status, recorded in the registry). Agents not connected here are asked of the
 * area's peer controllers in one forwarded call (a peer answers only for agents it holds: one
 * hop, as for batches); an agent no controller holds is `agent_not_connected`. One result per
 * item, always: a push never fails as a whole because agents fail.
 */
import {
  DesiredStatePushResultSchema,
  OpsplaneError,
  type DesiredStatePushRequest,
  type DesiredStatePushResult,
} from '@opsplane/models';
import type { Logger } from '@opsplane/kit';
import { ConcurrencyLimiter } from '@opsplane/platform';
import type { AgentRegistry } from './agent-registry.js';
import type { ControllerMetrics } from './metrics.js';
import type { PeerForwarder } from './peer-forwarder.js';

export type PushItemResult = DesiredStatePushResult['results'][number];

export interface DesiredStatePusherOptions {
  area: string;
  controllerId: string;
  registry: AgentRegistry;
  forwarder: PeerForwarder | null;
  /** Wait for each agent's answer (agents.request_timeout). */
  timeoutMs: number;
  peerTimeoutMarginMs: number;
  concurrency: number;
  metrics: ControllerMetrics;
  logger: Logger;
}

const NOT_CONNECTED = 'agent_not_connected';

export class DesiredStatePusher {
  private readonly opts: DesiredStatePusherOptions;

  constructor(opts: DesiredStatePusherOptions) {
    this.opts = opts;
  }

  async push(req: DesiredStatePushRequest, forwarded: boolean): Promise<DesiredStatePushResult> {
    const results: (PushItemResult | undefined)[] = new Array<PushItemResult | undefined>(req.items.length);
    const elsewhere: number[] = [];
    const local: number[] = [];
    req.items.forEach((item, i) =>
      (this.opts.registry.connectionOf(item.agent_code) ? local : elsewhere).push(i),
    );
    const limiter = new ConcurrencyLimiter(this.opts.concurrency);
    const localDone = limiter.map(local, async (i) => {
      results[i] = await this.toAgent(req.items[i]!);
    });
    const peerDone =
      forwarded || elsewhere.length === 0 || !this.opts.forwarder
        ? Promise.resolve()
        : this.toPeers(req, elsewhere, results);
    await Promise.all([localDone, peerDone]);
    const out: PushItemResult[] = req.items.map(
      (item, i) =>
        results[i] ?? {
          agent_code: item.agent_code,
          success: false,
          error: {
            code: NOT_CONNECTED,
            message: forwarded
              ? `agent '${item.agent_code}' is not connected to controller '${this.opts.controllerId}'`
              : `agent '${item.agent_code}' is not connected to any controller of area '${this.opts.area}'`,
          },
        },
    );
    for (const r of out) {
      this.opts.metrics.desiredStates.inc({
        outcome: r.success ? 'accepted' : r.error?.code === NOT_CONNECTED ? 'not_connected' : 'refused',
      });
    }
    return { results: out };
  }

  private async toAgent(item: DesiredStatePushRequest['items'][number]): Promise<PushItemResult> {
    const code = item.agent_code;
    const conn = this.opts.registry.connectionOf(code);
    if (!conn)
      return {
        agent_code: code,
        success: false,
        error: { code: NOT_CONNECTED, message: `agent '${code}' disconnected` },
      };
    try {
      const status = await conn.request({ op: 'desired_state', desired: item.desired }, this.opts.timeoutMs);
      this.opts.registry.updateDistribution(code, status);
      return { agent_code: code, success: true, status };
    } catch (err) {
      const e = err as Error & { code?: string };
      this.opts.logger.info({ agent: code, code: e.code, err: e.message }, 'desired state not accepted');
      return {
        agent_code: code,
        success: false,
        error: { code: err instanceof OpsplaneError ? err.code : 'upstream_error', message: e.message },
      };
    }
  }

  /** Asks the peers about the agents not connected here; fills `results` for those a peer holds. */
  private async toPeers(
    req: DesiredStatePushRequest,
    indexes: number[],
    results: (PushItemResult | undefined)[],
  ): Promise<void> {
    const forwarder = this.opts.forwarder!;
    const items = indexes.map((i) => req.items[i]!);
    const { answers, failed } = await forwarder.post(
      '/api/v1/agents/desired-state',
      { items, ...(req.operation_id ? { operation_id: req.operation_id } : {}) },
      this.opts.timeoutMs + this.opts.peerTimeoutMarginMs,
      DesiredStatePushResultSchema,
    );
    indexes.forEach((i, k) => {
      // The holder's answer wins; the others say "not connected here".
      for (const a of answers) {
        const r = a.results[k];
        if (r && r.agent_code === items[k]!.agent_code && r.error?.code !== NOT_CONNECTED) {
          results[i] = r;
          return;
        }
      }
      if (failed.length > 0 && !this.opts.registry.connectionOf(items[k]!.agent_code)) {
        results[i] = {
          agent_code: items[k]!.agent_code,
          success: false,
          error: {
            code: 'peer_failed',
            message: `controller(s) ${failed.join(', ')} of area '${this.opts.area}' did not answer; the agent may be held there`,
          },
        };
      }
    });
  }
}
