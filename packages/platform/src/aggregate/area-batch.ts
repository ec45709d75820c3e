/**
 * One area's part of a cross-area batch, run so that its results are true when controllers die
 * or hang mid-request. Every call carries the batch's operation id, and agents journal it: the
 * same id never acts twice on an agent, so sending it again is always safe.
 *
 * Round 1 sends each controller the agents it holds (by the caller's hint; the rest to the
 * freshest controller, which forwards to its peers), all controllers at once — a stalled
 * controller delays only its own agents. Agents a controller says it does not hold are asked of
 * the area's other controllers once (not every controller forwards). An agent whose controller failed (refused, reset, timed
 * out) or that lost its connection mid-request is not guessed about: the following rounds ask
 * the area's other controllers, each for the agents it holds itself, until the agent shows up
 * where it failed over to. There the same operation id is sent again: the agent answers with its
 * recorded result (`replayed`) if it had acted, waits for the run in flight, or acts now if the
 * operation never reached it. A failed controller gets a cool-down before it is asked again.
 *
 * At the batch's deadline, an agent still without an answer is `outcome_unknown` if the
 * operation may have reached it, else `not_delivered`. Agents that no healthy controller holds
 * and that no failure touched are `not_delivered` at once (they are offline or unknown).
 */
import {
  failedResults,
  type BatchOperationResult,
  type OperationResult,
  type ResultReason,
} from '@opsplane/models';
import type { Logger } from '@opsplane/kit';
import { sleep } from '@opsplane/kit';
import { ControllerConnectionError } from '../client/errors.js';
import type { BatchCallOptions } from '../client/controller-client.js';
import type { PooledController } from '../pool/controller-client-pool.js';
import type { CrossAreaBatchOp } from './batch-across-areas.js';
import { normalizeResults } from './batch-across-areas.js';
import { abortReason, resultError, toWireError } from './errors.js';

/** Result errors meaning "this controller does not hold the agent (now)". */
const NOT_HERE = /^(agent_not_connected|agent_not_found|agent_offline|agent_unavailable)\b/;

/** Reasons that come from the agent itself: final. */
const AGENT_SAYS: ReadonlySet<ResultReason | undefined> = new Set(['done', 'failed_on_agent', 'interrupted']);

export interface AreaBatchOptions {
  area: string;
  op: CrossAreaBatchOp;
  agents: readonly string[];
  packages: readonly string[];
  operationId: string;
  /** Epoch ms: the whole batch ends here. */
  deadline: number;
  /** One controller call never waits longer than this (below the deadline). */
  callTimeoutMs: number;
  /** Pause between the rounds that look for agents after a failure. */
  pollMs: number;
  /** How long to look for agents where they fail over to (below the deadline). */
  failoverWaitMs: number;
  controllers: () => PooledController[];
  holderOf?: ((agent: string) => string | undefined) | undefined;
  signal?: AbortSignal | undefined;
  onFinal: (results: OperationResult[]) => void;
  logger: Logger;
}

export async function runAreaBatch(o: AreaBatchOptions): Promise<Map<string, OperationResult[]>> {
  const out = new Map<string, OperationResult[]>();
  const pending = new Set(o.agents);
  const attempts = new Map<string, number>();
  /** Agents the operation may have reached: at the deadline they are outcome_unknown, not not_delivered. */
  const mayHaveReached = new Set<string>();
  /** Agents a failure touched: worth looking for on the other controllers. */
  const searching = new Set<string>();
  /** The last "not here" answer per agent, used if nothing better comes. */
  const lastNotHere = new Map<string, OperationResult[]>();
  const lastWhy = new Map<string, string>();
  const failedAt = new Map<string, number>();
  /** Which controllers an agent was sent to. */
  const askedBy = new Map<string, Set<string>>();
  const cooldownMs = Math.max(2000, o.callTimeoutMs);

  const finish = (agent: string, results: OperationResult[]) => {
    if (!pending.delete(agent)) return;
    const n = attempts.get(agent) ?? 1;
    const final = results.map((r) => ({ ...r, operation_id: o.operationId, attempts: n }));
    out.set(agent, final);
    o.onFinal(final);
  };

  const call = async (pc: PooledController, agents: string[], heldOnly: boolean): Promise<void> => {
    const remaining = o.deadline - Date.now();
    if (remaining <= 0 || agents.length === 0) return;
    for (const a of agents) {
      attempts.set(a, (attempts.get(a) ?? 0) + 1);
      askedBy.set(a, (askedBy.get(a) ?? new Set()).add(pc.key));
    }
    const timeoutMs = Math.min(o.callTimeoutMs, remaining);
    let res: BatchOperationResult;
    try {
      res = await callController(pc, o.op, agents, o.packages, o.operationId, o.signal, {
        heldOnly,
        timeoutMs,
      });
    } catch (err) {
      if (o.signal?.aborted) throw abortReason(o.signal);
      failedAt.set(pc.key, Date.now());
      const neverSent = err instanceof ControllerConnectionError && err.neverSent;
      const e = toWireError(err);
      o.logger.warn(
        { area: o.area, controller: pc.key, agents: agents.length, err: e.message, neverSent },
        'batch call to a controller failed; looking for its agents on the other controllers',
      );
      for (const a of agents) {
        if (!neverSent) mayHaveReached.add(a);
        searching.add(a);
        lastWhy.set(a, resultError(e.code, `controller '${pc.key}': ${e.message}`));
      }
      return;
    }
    const byAgent = normalizeResults(
      res.results,
      agents,
      o.packages,
      resultError('upstream_error', `no result from controller '${pc.key}'`),
    );
    for (const agent of agents) {
      if (!pending.has(agent)) continue;
      const rs = byAgent.get(agent) ?? [];
      if (rs.length > 0 && rs.every((r) => AGENT_SAYS.has(r.reason ?? (r.success ? 'done' : undefined)))) {
        finish(agent, rs);
      } else if (rs.length > 0 && rs.every((r) => !r.success && NOT_HERE.test(r.error ?? ''))) {
        lastNotHere.set(agent, rs);
      } else if (rs.some((r) => r.reason === 'outcome_unknown' && !isOmission(r))) {
        // The agent lost its connection mid-request, or did not answer in time, or a peer
        // failed: ask again by id where it is now (its journal answers without acting twice).
        mayHaveReached.add(agent);
        searching.add(agent);
        lastWhy.set(agent, rs.find((r) => !r.success)?.error ?? 'outcome unknown');
      } else {
        // The agent's own answer, or what an answering controller says (also when it left a
        // package out, or when it is an older controller that gives no reason).
        finish(agent, rs);
      }
    }
  };

  // Round 1: every controller its own agents, at once.
  const online = o.controllers();
  if (online.length === 0) {
    const error = resultError('controller_unavailable', `no online controller for area '${o.area}'`);
    for (const a of o.agents) finish(a, failedResults([a], o.packages, error, 'not_delivered'));
    return out;
  }
  const byKey = new Map(online.map((pc) => [pc.key, pc]));
  const groups = new Map<PooledController, string[]>();
  for (const a of o.agents) {
    const hinted = o.holderOf?.(a);
    const pc = (hinted !== undefined ? byKey.get(hinted) : undefined) ?? online[0]!;
    groups.set(pc, [...(groups.get(pc) ?? []), a]);
  }
  await Promise.all([...groups].map(([pc, agents]) => call(pc, agents, false)));

  // Agents the controller asked did not hold (not every controller forwards to its peers — a Go
  // controller does not): ask the area's other controllers once, each for what it holds.
  const notHeld = [...pending].filter((a) => !searching.has(a));
  if (notHeld.length > 0) {
    const others = online.filter((pc) => !failedAt.has(pc.key));
    await Promise.all(
      others.map((pc) => {
        const ask = notHeld.filter((a) => pending.has(a) && !askedBy.get(a)?.has(pc.key));
        return ask.length > 0 ? call(pc, ask, true) : undefined;
      }),
    );
  }

  // Agents no healthy controller holds, untouched by any failure: offline or unknown — final now.
  for (const a of [...pending]) {
    if (searching.has(a)) continue;
    finish(
      a,
      lastNotHere.get(a) ??
        failedResults(
          [a],
          o.packages,
          lastWhy.get(a) ?? 'agent_unavailable: not held by any controller',
          'not_delivered',
        ),
    );
  }

  // Later rounds: look for the agents a failure touched, where they failed over to — until the
  // failover bound, or until the area has no controller left that could hold them (a dead
  // controller leaves discovery when its lease expires).
  const searchUntil = Math.min(o.deadline, Date.now() + o.failoverWaitMs);
  while (pending.size > 0 && Date.now() < searchUntil) {
    if (o.signal?.aborted) throw abortReason(o.signal);
    await sleep(Math.min(o.pollMs, Math.max(0, searchUntil - Date.now())), o.signal);
    const listed = o.controllers();
    if (listed.length === 0) break;
    const now = Date.now();
    const candidates = listed.filter((pc) => now - (failedAt.get(pc.key) ?? -Infinity) >= cooldownMs);
    if (candidates.length === 0) continue;
    const agents = [...pending];
    await Promise.all(candidates.map((pc) => call(pc, agents, true)));
  }

  for (const a of [...pending]) {
    const reached = mayHaveReached.has(a);
    const why = lastWhy.get(a) ?? 'no controller of the area answered for the agent';
    const error = reached
      ? `outcome_unknown: no answer from the agent in time (${why})`
      : `not_delivered: the agent did not show up on any controller of area '${o.area}' (${why})`;
    finish(
      a,
      lastNotHere.get(a) && !reached
        ? withReason(lastNotHere.get(a)!, 'not_delivered')
        : failedResults([a], o.packages, error, reached ? 'outcome_unknown' : 'not_delivered'),
    );
  }
  return out;
}

/** A result the controller's answer lacked (filled in by normalizeResults): asking again will not help. */
const isOmission = (r: OperationResult) => /^(upstream_error: no result|no_result:)/.test(r.error ?? '');

const withReason = (rs: OperationResult[], reason: ResultReason) => rs.map((r) => ({ ...r, reason }));

function callController(
  pc: PooledController,
  op: CrossAreaBatchOp,
  agents: string[],
  packages: readonly string[],
  operationId: string,
  signal: AbortSignal | undefined,
  opts: BatchCallOptions,
): Promise<BatchOperationResult> {
  const timeout_ms = Math.max(100, Math.floor((opts.timeoutMs ?? 30_000) - 250));
  if (op.action === 'configs') {
    return pc.client.batchUpdateConfigs(
      {
        agents,
        package: op.package,
        configs: [...op.configs],
        ...(op.config_file !== undefined ? { config_file: op.config_file } : {}),
        operation_id: operationId,
        timeout_ms,
      },
      signal,
      opts,
    );
  }
  return pc.client.batchAction(
    op.action,
    { agents, packages: [...packages], operation_id: operationId, timeout_ms },
    signal,
    opts,
  );
}
