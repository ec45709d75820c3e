/**
 * Batch operations: fans a start/stop/restart/configs request out to the agents connected here
 * (bounded concurrency, per-agent timeout within the caller's deadline), forwards the agents not
 * connected here to the peer controllers of the area, and assembles exactly one result per
 * (agent, package) asked for — unknown, offline, timed-out and failing agents included. A batch
 * never fails as a whole because agents fail.
 *
 * Every batch has an operation id (the caller's, its Idempotency-Key, or one made up here) that
 * goes to the agents, which journal it: the same id never acts twice on an agent, so the caller
 * may send it again after a controller died mid-request. Each result says what happened
 * (`reason`): done / failed_on_agent / interrupted (the agent's own account), not_delivered (it
 * never reached the agent), outcome_unknown (it may have, but no answer came in time).
 *
 * Also answers what the agents' journals say about an operation id (query), without acting.
 */
import {
  batchResult,
  failedResults,
  OpsplaneError,
  OperationQueryResultSchema,
  RequestTimeoutError,
  type BatchAction,
  type BatchOperationResult,
  type ConfigItem,
  type JournalEntry,
  type OperationQueryEntry,
  type OperationResult,
  type PackageOpResult,
  type ResultReason,
} from '@opsplane/models';
import type { Logger } from '@opsplane/kit';
import { ConcurrencyLimiter } from '@opsplane/platform';
import type { AgentConnection } from './agent-connection.js';
import type { AgentRegistry } from './agent-registry.js';
import { AgentOfflineError, AgentReportedError, TooManyAgentsError } from './errors.js';
import type { ControllerMetrics } from './metrics.js';
import type { PeerForwarder } from './peer-forwarder.js';

/** What one batch asks every agent to do. */
export type BatchOp =
  | { op: 'action'; action: BatchAction; packages: string[] }
  | { op: 'configs'; package: string; configs: ConfigItem[]; config_file?: string | undefined };

export interface BatchRunOptions {
  /** A peer sent it: agents not connected here get `agent_not_connected` instead of being forwarded again. */
  forwarded: boolean;
  operationId: string;
  /** What is left of the caller's deadline; per-agent waits stay within it. */
  timeoutMs?: number | undefined;
}

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

/** Answers quicker than this are not worth sending: the agent could not act and answer in time. */
const MIN_AGENT_WAIT_MS = 50;

interface PeerResults {
  real: Map<string, OperationResult[]>;
  offline: Map<string, OperationResult[]>;
  /** Peers whose call failed: they may hold some of the agents. */
  failed: string[];
}
const NO_PEER_RESULTS: PeerResults = { real: new Map(), offline: new Map(), failed: [] };

function opName(op: BatchOp): string {
  return op.op === 'action' ? op.action : 'configs';
}

/** The agent's result as a batch result: its reason (or one derived from success), its pids and time. */
export function fromAgentResult(code: string, operationId: string, r: PackageOpResult): OperationResult {
  const reason: ResultReason = r.reason ?? (r.success ? 'done' : 'failed_on_agent');
  return {
    agent_code: code,
    package: r.package,
    success: r.success,
    ...(r.error !== undefined ? { error: r.error } : {}),
    ...(r.message !== undefined ? { message: r.message } : {}),
    reason,
    operation_id: operationId,
    ...(r.old_pid !== undefined ? { old_pid: r.old_pid } : {}),
    ...(r.new_pid !== undefined ? { new_pid: r.new_pid } : {}),
    ...(r.duration_ms !== undefined ? { agent_duration_ms: r.duration_ms } : {}),
    ...(r.replayed ? { replayed: true } : {}),
  };
}

/** A journal entry as the operations query answers it. */
function fromJournal(code: string, e: JournalEntry): OperationQueryEntry {
  const r = e.result;
  return {
    agent_code: code,
    package: e.package,
    state: e.state,
    action: e.action,
    ...(r
      ? {
          success: r.success,
          reason: r.reason ?? (r.success ? 'done' : 'failed_on_agent'),
          ...(r.error !== undefined ? { error: r.error } : {}),
          ...(r.message !== undefined ? { message: r.message } : {}),
          ...(r.old_pid !== undefined ? { old_pid: r.old_pid } : {}),
          ...(r.new_pid !== undefined ? { new_pid: r.new_pid } : {}),
          ...(r.duration_ms !== undefined ? { agent_duration_ms: r.duration_ms } : {}),
        }
      : {}),
  };
}

export class BatchDispatcher {
  private readonly opts: BatchDispatcherOptions;

  constructor(opts: BatchDispatcherOptions) {
    this.opts = opts;
  }

  /** Runs a batch under its operation id. */
  async run(agentsIn: readonly string[], op: BatchOp, run: BatchRunOptions): Promise<BatchOperationResult> {
    const started = performance.now();
    const agents = dedupe(agentsIn);
    if (agents.length > this.opts.maxAgents) throw new TooManyAgentsError(agents.length, this.opts.maxAgents);
    const asked = op.op === 'action' ? dedupe(op.packages) : [op.package];
    const normalized: BatchOp = op.op === 'action' ? { ...op, packages: asked } : op;
    const agentWaitMs = Math.max(
      MIN_AGENT_WAIT_MS,
      Math.min(this.opts.perAgentTimeoutMs, run.timeoutMs ?? Number.POSITIVE_INFINITY),
    );

    const local: string[] = [];
    const elsewhere: string[] = [];
    for (const a of agents) (this.opts.registry.connectionOf(a) ? local : elsewhere).push(a);

    const byAgent = new Map<string, OperationResult[]>();
    const limiter = new ConcurrencyLimiter(this.opts.concurrency);
    const localDone = limiter.map(local, async (code) => {
      byAgent.set(code, await this.runOnAgent(code, normalized, asked, run.operationId, agentWaitMs));
    });
    const peerDone: Promise<PeerResults> =
      run.forwarded || elsewhere.length === 0
        ? Promise.resolve(NO_PEER_RESULTS)
        : this.runOnPeers(elsewhere, normalized, run.operationId, agentWaitMs);
    const [, fromPeers] = await Promise.all([localDone, peerDone]);

    for (const code of elsewhere) {
      // Connected here meanwhile (it failed over to us while we asked the peers): ask it now.
      if (!fromPeers.real.has(code) && this.opts.registry.connectionOf(code)) {
        byAgent.set(code, await this.runOnAgent(code, normalized, asked, run.operationId, agentWaitMs));
        continue;
      }
      // Preference: the holder's real result > "offline" as we know it > "offline" as a peer knows it > not found.
      const chosen =
        fromPeers.real.get(code) ??
        (this.opts.registry.get(code) ? undefined : fromPeers.offline.get(code)) ??
        // A peer that failed may hold the agent now, whatever an old offline record here says.
        (fromPeers.failed.length > 0
          ? failedResults(
              [code],
              this.expectedPackages(code, asked),
              `peer_failed: controller(s) ${fromPeers.failed.join(', ')} of area '${this.opts.area}' did not answer; the agent may be held there`,
              'outcome_unknown',
              { operation_id: run.operationId },
            )
          : this.notReachable(code, asked, run.forwarded, run.operationId));
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

  /** What the agents' journals say about `operationId` (never acts). */
  async query(
    agentsIn: readonly string[],
    operationId: string,
    packages: readonly string[] | undefined,
    forwarded: boolean,
    timeoutMs?: number,
  ): Promise<OperationQueryEntry[]> {
    const agents = dedupe(agentsIn);
    if (agents.length > this.opts.maxAgents) throw new TooManyAgentsError(agents.length, this.opts.maxAgents);
    const waitMs = Math.max(MIN_AGENT_WAIT_MS, Math.min(this.opts.perAgentTimeoutMs, timeoutMs ?? Infinity));
    const local = agents.filter((a) => this.opts.registry.connectionOf(a));
    const elsewhere = agents.filter((a) => !this.opts.registry.connectionOf(a));
    const byAgent = new Map<string, OperationQueryEntry[]>();
    await new ConcurrencyLimiter(this.opts.concurrency).map(local, async (code) => {
      byAgent.set(code, await this.queryAgent(code, operationId, packages, waitMs));
    });
    if (!forwarded && elsewhere.length > 0 && this.opts.forwarder) {
      const answers = await this.opts.forwarder.post(
        '/api/v1/agents/operations',
        { agents: elsewhere, operation_id: operationId, ...(packages ? { packages } : {}) },
        waitMs + this.opts.peerTimeoutMarginMs,
        OperationQueryResultSchema,
      );
      for (const answer of answers.answers) {
        const grouped = new Map<string, OperationQueryEntry[]>();
        for (const e of answer.entries) {
          if (e.state === 'unreachable') continue;
          grouped.set(e.agent_code, [...(grouped.get(e.agent_code) ?? []), e]);
        }
        for (const [code, list] of grouped) if (!byAgent.has(code)) byAgent.set(code, list);
      }
    }
    return agents.flatMap(
      (code) => byAgent.get(code) ?? [{ agent_code: code, package: '', state: 'unreachable' as const }],
    );
  }

  private async queryAgent(
    code: string,
    operationId: string,
    packages: readonly string[] | undefined,
    waitMs: number,
  ): Promise<OperationQueryEntry[]> {
    const conn = this.opts.registry.connectionOf(code);
    if (!conn) return [{ agent_code: code, package: '', state: 'unreachable' }];
    try {
      const { entries } = await conn.request(
        { op: 'operations', operation_id: operationId, ...(packages ? { packages: [...packages] } : {}) },
        waitMs,
      );
      const found = entries.map((e) => fromJournal(code, e));
      const missing = (packages ?? []).filter((p) => !entries.some((e) => e.package === p));
      for (const p of missing) found.push({ agent_code: code, package: p, state: 'unknown' });
      return found.length > 0 ? found : [{ agent_code: code, package: '', state: 'unknown' }];
    } catch (err) {
      this.opts.logger.debug({ agent: code, err: (err as Error).message }, 'operations query failed');
      return [
        { agent_code: code, package: '', state: 'unreachable', error: this.describe(code, err, waitMs) },
      ];
    }
  }

  /** Packages a result list must cover for an agent: the ones asked for, or all it has. */
  private expectedPackages(code: string, asked: readonly string[]): string[] {
    if (asked.length > 0) return [...asked];
    return this.opts.registry.get(code)?.packages.map((p) => p.name) ?? [];
  }

  private async runOnAgent(
    code: string,
    op: BatchOp,
    asked: readonly string[],
    operationId: string,
    waitMs: number,
  ): Promise<OperationResult[]> {
    const conn = this.opts.registry.connectionOf(code);
    const expected = this.expectedPackages(code, asked);
    if (!conn) return this.notReachable(code, asked, false, operationId);
    try {
      const answer = await this.request(conn, op, operationId, waitMs);
      return this.matchResults(code, expected, asked.length === 0, answer, operationId);
    } catch (err) {
      return failedResults([code], expected, this.describe(code, err, waitMs), this.reasonOf(err), {
        operation_id: operationId,
      });
    }
  }

  private request(
    conn: AgentConnection,
    op: BatchOp,
    operationId: string,
    waitMs: number,
  ): Promise<{ results: PackageOpResult[] }> {
    if (op.op === 'action')
      return conn.request(
        { op: 'action', action: op.action, packages: op.packages, operation_id: operationId },
        waitMs,
      );
    return conn.request(
      {
        op: 'configs',
        package: op.package,
        configs: op.configs,
        ...(op.config_file ? { config_file: op.config_file } : {}),
        operation_id: operationId,
      },
      waitMs,
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
    operationId: string,
  ): OperationResult[] {
    const got = new Map(answer.results.map((r) => [r.package, r]));
    const names = allPackages ? dedupe([...expected, ...got.keys()]) : expected;
    if (names.length === 0) {
      return [
        {
          agent_code: code,
          package: '',
          success: true,
          message: 'agent has no packages',
          reason: 'done',
          operation_id: operationId,
        },
      ];
    }
    return names.map((pkg) => {
      const r = got.get(pkg);
      if (!r) {
        return {
          agent_code: code,
          package: pkg,
          success: false,
          error: `no_result: agent '${code}' returned no result for package '${pkg}'`,
          reason: 'outcome_unknown',
          operation_id: operationId,
        };
      }
      return fromAgentResult(code, operationId, r);
    });
  }

  /** Whether a failed request may have reached the agent. */
  private reasonOf(err: unknown): ResultReason {
    if (err instanceof RequestTimeoutError) return 'outcome_unknown';
    if (err instanceof AgentOfflineError) return err.mayHaveReceived ? 'outcome_unknown' : 'not_delivered';
    if (err instanceof AgentReportedError) return 'failed_on_agent';
    return 'outcome_unknown';
  }

  private describe(code: string, err: unknown, waitMs: number): string {
    if (err instanceof RequestTimeoutError) {
      return `timeout: agent '${code}' did not answer within ${waitMs} ms`;
    }
    if (err instanceof AgentOfflineError) return `agent_offline: ${err.message}`;
    if (err instanceof OpsplaneError) return `${err.code}: ${err.message}`;
    return `internal: ${(err as Error).message ?? String(err)}`;
  }

  /** Entries for an agent no controller could reach, saying why as precisely as we know. */
  private notReachable(
    code: string,
    asked: readonly string[],
    forwarded: boolean,
    operationId: string,
  ): OperationResult[] {
    const expected = this.expectedPackages(code, asked);
    const rec = this.opts.registry.get(code);
    const extra = { operation_id: operationId };
    if (rec && !rec.connection) {
      const since = new Date(rec.offlineSinceMs).toISOString();
      return failedResults(
        [code],
        expected,
        `agent_offline: agent '${code}' is offline (disconnected from controller '${this.opts.controllerId}' at ${since})`,
        'not_delivered',
        extra,
      );
    }
    if (forwarded) {
      return failedResults(
        [code],
        expected,
        `agent_not_connected: agent '${code}' is not connected to this controller`,
        'not_delivered',
        extra,
      );
    }
    return failedResults(
      [code],
      expected,
      `agent_not_found: agent '${code}' is not connected to any controller of area '${this.opts.area}'`,
      'not_delivered',
      extra,
    );
  }

  /**
   * Forwards the agents not held here to every peer, under the same operation id. Per agent,
   * keeps the results of the peer that holds it (`real`), and else those of a peer that knows it
   * as offline (`offline`).
   */
  private async runOnPeers(
    codes: string[],
    op: BatchOp,
    operationId: string,
    waitMs: number,
  ): Promise<PeerResults> {
    const fw = this.opts.forwarder;
    if (!fw || fw.peers().length === 0) return NO_PEER_RESULTS;
    const path = `/api/v1/agents/batch/${opName(op)}`;
    const common = { agents: codes, operation_id: operationId, timeout_ms: waitMs };
    const body =
      op.op === 'action'
        ? { ...common, packages: op.packages }
        : {
            ...common,
            package: op.package,
            configs: op.configs,
            ...(op.config_file ? { config_file: op.config_file } : {}),
          };
    const { results: perPeer, failed } = await fw.batch(path, body, waitMs + this.opts.peerTimeoutMarginMs);
    const wanted = new Set(codes);
    const out: PeerResults = { real: new Map(), offline: new Map(), failed };
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
