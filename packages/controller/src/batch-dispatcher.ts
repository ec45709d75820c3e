/**
 * Batch operations: fans a start/stop/restart/configs request out to the agents connected here
 * (bounded concurrency, per-agent timeout), forwards the agents not connected here to the peer
 * controllers of the area, and assembles exactly one result per (agent, package) asked for —
 * unknown, offline, timed-out and failing agents included, each saying why. A batch never fails
 * as a whole because agents fail.
 */
import {
  batchResult,
  failedResults,
  OpsplaneError,
  RequestTimeoutError,
  type BatchAction,
  type BatchOperationResult,
  type ConfigItem,
  type OperationResult,
  type PackageOpResult,
} from '@opsplane/models';
import type { Logger } from '@opsplane/kit';
import { ConcurrencyLimiter } from '@opsplane/platform';
import type { AgentConnection } from './agent-connection.js';
import type { AgentRegistry } from './agent-registry.js';
import { AgentOfflineError, TooManyAgentsError } from './errors.js';
import type { ControllerMetrics } from './metrics.js';
import type { PeerForwarder } from './peer-forwarder.js';

/** What one batch asks every agent to do. */
export type BatchOp =
  | { op: 'action'; action: BatchAction; packages: string[] }
  | { op: 'configs'; package: string; configs: ConfigItem[]; config_file?: string | undefined };

export interface BatchDispatcherOptions {
  area: string;
  controllerId: string;
  registry: AgentRegistry;
  forwarder: PeerForwarder | null;
  perAgentTimeoutMs: number;
  maxAgents: number;
  concurrency: number;
  /** Added to the per-agent timeout for the forwarded part (network and peer overhead). */
  peerTimeoutMarginMs: number;
  metrics: ControllerMetrics;
  logger: Logger;
}

/**
 * Error prefixes a peer uses for agents it does not hold. A result starting with one of these
 * never wins over a result from the controller that holds the agent.
 */
const NOT_HELD_PREFIXES = ['agent_not_connected:', 'agent_not_found:', 'agent_offline:'];
const isNotHeld = (r: OperationResult) => !r.success && NOT_HELD_PREFIXES.some((p) => r.error?.startsWith(p));

const dedupe = (xs: readonly string[]) => [...new Set(xs)];

interface PeerResults {
  real: Map<string, OperationResult[]>;
  offline: Map<string, OperationResult[]>;
}
const NO_PEER_RESULTS: PeerResults = { real: new Map(), offline: new Map() };

function opName(op: BatchOp): string {
  return op.op === 'action' ? op.action : 'configs';
}

export class BatchDispatcher {
  private readonly opts: BatchDispatcherOptions;

  constructor(opts: BatchDispatcherOptions) {
    this.opts = opts;
  }

  /**
   * Runs a batch. `forwarded` is true when a peer sent it: then agents not connected here get an
   * `agent_not_connected` entry instead of being forwarded again.
   */
  async run(agentsIn: readonly string[], op: BatchOp, forwarded: boolean): Promise<BatchOperationResult> {
    const started = performance.now();
    const agents = dedupe(agentsIn);
    if (agents.length > this.opts.maxAgents) throw new TooManyAgentsError(agents.length, this.opts.maxAgents);
    const asked = op.op === 'action' ? dedupe(op.packages) : [op.package];
    const normalized: BatchOp = op.op === 'action' ? { ...op, packages: asked } : op;

    const local: string[] = [];
    const elsewhere: string[] = [];
    for (const a of agents) (this.opts.registry.connectionOf(a) ? local : elsewhere).push(a);

    const byAgent = new Map<string, OperationResult[]>();
    const limiter = new ConcurrencyLimiter(this.opts.concurrency);
    const localDone = limiter.map(local, async (code) => {
      byAgent.set(code, await this.runOnAgent(code, normalized, asked));
    });
    const peerDone: Promise<PeerResults> =
      forwarded || elsewhere.length === 0
        ? Promise.resolve(NO_PEER_RESULTS)
        : this.runOnPeers(elsewhere, normalized);
    const [, fromPeers] = await Promise.all([localDone, peerDone]);

    for (const code of elsewhere) {
      // Preference: the holder's real result > "offline" as we know it > "offline" as a peer knows it > not found.
      const chosen =
        fromPeers.real.get(code) ??
        (this.opts.registry.get(code) ? undefined : fromPeers.offline.get(code)) ??
        this.notReachable(code, asked, forwarded);
      byAgent.set(code, chosen);
    }
    const results = agents.flatMap((a) => byAgent.get(a) ?? []);
    const name = opName(op);
    for (const r of results)
      this.opts.metrics.batchResults.inc({ op: name, outcome: r.success ? 'success' : 'failed' });
    const durationMs = performance.now() - started;
    this.opts.metrics.batchDuration.observe({ op: name }, durationMs / 1000);
    return batchResult(results, durationMs);
  }

  /** Packages a result list must cover for an agent: the ones asked for, or all it has. */
  private expectedPackages(code: string, asked: readonly string[]): string[] {
    if (asked.length > 0) return [...asked];
    return this.opts.registry.get(code)?.packages.map((p) => p.name) ?? [];
  }

  private async runOnAgent(code: string, op: BatchOp, asked: readonly string[]): Promise<OperationResult[]> {
    const conn = this.opts.registry.connectionOf(code);
    const expected = this.expectedPackages(code, asked);
    if (!conn) return this.notReachable(code, asked, false);
    try {
      const answer = await this.request(conn, op);
      return this.matchResults(code, expected, asked.length === 0, answer);
    } catch (err) {
      return failedResults([code], expected, this.describe(code, err));
    }
  }

  private request(conn: AgentConnection, op: BatchOp): Promise<{ results: PackageOpResult[] }> {
    const timeout = this.opts.perAgentTimeoutMs;
    if (op.op === 'action')
      return conn.request({ op: 'action', action: op.action, packages: op.packages }, timeout);
    return conn.request(
      {
        op: 'configs',
        package: op.package,
        configs: op.configs,
        ...(op.config_file ? { config_file: op.config_file } : {}),
      },
      timeout,
    );
  }

  /**
   * One entry per expected package, from the agent's answer. With "all packages" the agent's own
   * list counts too: a package it reports that we did not know about yet is included.
   */
  private matchResults(
    code: string,
    expected: readonly string[],
    allPackages: boolean,
    answer: { results: PackageOpResult[] },
  ): OperationResult[] {
    const got = new Map(answer.results.map((r) => [r.package, r]));
    const names = allPackages ? dedupe([...expected, ...got.keys()]) : expected;
    if (names.length === 0) {
      return [{ agent_code: code, package: '', success: true, message: 'agent has no packages' }];
    }
    return names.map((pkg) => {
      const r = got.get(pkg);
      if (!r) {
        return {
          agent_code: code,
          package: pkg,
          success: false,
          error: `no_result: agent '${code}' returned no result for package '${pkg}'`,
        };
      }
      return {
        agent_code: code,
        package: pkg,
        success: r.success,
        ...(r.error !== undefined ? { error: r.error } : {}),
        ...(r.message !== undefined ? { message: r.message } : {}),
      };
    });
  }

  private describe(code: string, err: unknown): string {
    if (err instanceof RequestTimeoutError) {
      return `timeout: agent '${code}' did not answer within ${this.opts.perAgentTimeoutMs} ms`;
    }
    if (err instanceof AgentOfflineError) return `agent_offline: ${err.message}`;
    if (err instanceof OpsplaneError) return `${err.code}: ${err.message}`;
    return `internal: ${(err as Error).message ?? String(err)}`;
  }

  /** Entries for an agent no controller could reach, saying why as precisely as we know. */
  private notReachable(code: string, asked: readonly string[], forwarded: boolean): OperationResult[] {
    const expected = this.expectedPackages(code, asked);
    const rec = this.opts.registry.get(code);
    if (rec) {
      const since = new Date(rec.offlineSinceMs).toISOString();
      return failedResults(
        [code],
        expected,
        `agent_offline: agent '${code}' is offline (disconnected from controller '${this.opts.controllerId}' at ${since})`,
      );
    }
    if (forwarded) {
      return failedResults(
        [code],
        expected,
        `agent_not_connected: agent '${code}' is not connected to this controller`,
      );
    }
    return failedResults(
      [code],
      expected,
      `agent_not_found: agent '${code}' is not connected to any controller of area '${this.opts.area}'`,
    );
  }

  /**
   * Forwards the agents not held here to every peer. Per agent, keeps the results of the peer
   * that holds it (`real`), and else those of a peer that knows it as offline (`offline`).
   */
  private async runOnPeers(codes: string[], op: BatchOp): Promise<PeerResults> {
    const fw = this.opts.forwarder;
    if (!fw || fw.peers().length === 0) return NO_PEER_RESULTS;
    const path = `/api/v1/agents/batch/${opName(op)}`;
    const body =
      op.op === 'action'
        ? { agents: codes, packages: op.packages }
        : {
            agents: codes,
            package: op.package,
            configs: op.configs,
            ...(op.config_file ? { config_file: op.config_file } : {}),
          };
    const perPeer = await fw.batch(path, body, this.opts.perAgentTimeoutMs + this.opts.peerTimeoutMarginMs);
    const wanted = new Set(codes);
    const out: PeerResults = { real: new Map(), offline: new Map() };
    for (const results of perPeer) {
      const grouped = new Map<string, OperationResult[]>();
      for (const r of results) {
        if (!wanted.has(r.agent_code)) continue;
        const list = grouped.get(r.agent_code) ?? [];
        list.push(r);
        grouped.set(r.agent_code, list);
      }
      for (const [code, list] of grouped) {
        if (!list.every(isNotHeld)) {
          if (!out.real.has(code)) out.real.set(code, list);
        } else if (list.every((r) => r.error?.startsWith('agent_offline:')) && !out.offline.has(code)) {
          out.offline.set(code, list);
        }
      }
    }
    return out;
  }
}
