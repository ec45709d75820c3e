/**
 * batchAcrossAreas: one batch (start/stop/restart/configs) over agents of many areas (guide
 * §3.3, done properly). Agents are grouped by area, each area's group goes to that area's
 * controllers (areas concurrently, bounded by a limiter), and the answer holds EXACTLY one
 * result per (agent, package) asked for — the guide's version dropped whole areas when a
 * controller was missing or failed, and trusted controllers to answer for everyone.
 *
 * Per area: controllers are tried freshest-heartbeat first. If a call fails, the group goes to
 * the next controller. Agents a controller answers for with agent_not_connected, agent_not_found,
 * agent_offline or agent_unavailable (it does not hold them; an agent is connected to just one
 * controller of its area) are tried on the next one too. Whatever is left gets a failed result
 * saying why. Results a controller forgot are filled in as failed; duplicates and results
 * nobody asked for are dropped.
 *
 * POSTs are never retried against the same controller (a lost answer does not mean the action
 * did not run), but a controller whose call failed may have acted before failing; moving on to
 * the next controller is the contract's choice of availability over at-most-once.
 */
import {
  AgentCodeSchema,
  AreaNameSchema,
  BatchConfigRequestSchema,
  PackageNameSchema,
  RequestTimeoutError,
  ValidationError,
  failedResults,
  formatIssues,
  mergeBatchResults,
  type BatchAction,
  type BatchOperationResult,
  type ConfigItem,
  type OperationResult,
} from '@opsplane/models';
import { ConcurrencyLimiter } from '../concurrency/limiter.js';
import type { ControllerClient } from '../client/controller-client.js';
import { createLogger, type Logger } from '@opsplane/kit';
import type { ControllerClientPool } from '../pool/controller-client-pool.js';
import { abortReason, resultError, toWireError } from './errors.js';

export type CrossAreaBatchOp =
  | {
      action: BatchAction;
      /** Empty or absent = every package of each agent. */
      packages?: readonly string[];
      /** The agents, when `groups` is an area resolver (ignored with a Map). */
      agents?: readonly string[];
    }
  | {
      action: 'configs';
      package: string;
      configs: readonly ConfigItem[];
      config_file?: string;
      agents?: readonly string[];
    };

/** Area of an agent; undefined (or a throw) when unknown. */
export type AreaResolver = (agentCode: string) => string | undefined | Promise<string | undefined>;

/** Agent codes grouped by area, or a resolver (then the agents come from `op.agents`). */
export type AgentGroups = ReadonlyMap<string, readonly string[]> | AreaResolver;

export interface BatchAcrossAreasOptions {
  /** Bounds how many areas are in flight. Default: a limiter of 10 (max_workers). */
  limiter?: ConcurrencyLimiter;
  /** Aborting rejects the whole call with the signal's reason. */
  signal?: AbortSignal;
  /**
   * Deadline for one area across all its controller attempts (per chunk, for areas larger than
   * maxAgentsPerRequest); what is left when it passes fails with 'timeout'.
   */
  perAreaTimeoutMs?: number;
  /** Agents per controller request; larger areas are split. Default 1000. */
  maxAgentsPerRequest?: number;
  logger?: Logger;
}

/** What the batch needs from the pool. */
export type BatchPool = Pick<ControllerClientPool, 'onlineControllers'>;

/**
 * Result codes meaning "this controller does not hold the agent" (the controller's own
 * prefixes, plus agent_unavailable): try the area's next controller.
 */
const NOT_HERE = /^(agent_not_connected|agent_not_found|agent_offline|agent_unavailable)\b/;

const pairKey = (agent: string, pkg: string) => `${agent}\u0000${pkg}`;

function uniq(xs: readonly string[]): string[] {
  return [...new Set(xs)];
}

/** Validates the operation up front: a malformed request is the caller's error, not an agent's. */
function checkOp(op: CrossAreaBatchOp): string[] {
  if (op.action === 'configs') {
    const parsed = BatchConfigRequestSchema.safeParse({
      agents: ['placeholder'],
      package: op.package,
      configs: op.configs,
      ...(op.config_file !== undefined ? { config_file: op.config_file } : {}),
    });
    if (!parsed.success) {
      throw new ValidationError(
        `invalid batch config request: ${formatIssues(parsed.error.issues)}`,
        parsed.error.issues,
      );
    }
    return [op.package];
  }
  if (!['start', 'stop', 'restart'].includes(op.action)) {
    throw new ValidationError(`unknown batch action '${String(op.action)}'`);
  }
  const pkgs = uniq(op.packages ?? []);
  for (const p of pkgs) {
    const r = PackageNameSchema.safeParse(p);
    if (!r.success) throw new ValidationError(`invalid package '${p}': ${formatIssues(r.error.issues)}`);
  }
  return pkgs;
}

/** One controller call for `agents` of the op. */
function callController(
  client: ControllerClient,
  op: CrossAreaBatchOp,
  agents: string[],
  packages: string[],
  signal: AbortSignal,
): Promise<BatchOperationResult> {
  if (op.action === 'configs') {
    return client.batchUpdateConfigs(
      {
        agents,
        package: op.package,
        configs: [...op.configs],
        ...(op.config_file !== undefined ? { config_file: op.config_file } : {}),
      },
      signal,
    );
  }
  return client.batchAction(op.action, { agents, packages }, signal);
}

/**
 * Exactly one result per asked (agent, package) from a controller's answer: extras and
 * duplicates dropped, gaps filled as failed. With no package list the packages are the
 * controller's to name; an agent it says nothing about gets one failed result with package ''.
 */
export function normalizeResults(
  results: readonly OperationResult[],
  agents: readonly string[],
  packages: readonly string[],
  missingError: string,
): Map<string, OperationResult[]> {
  const wantAgents = new Set(agents);
  const wantPkgs = new Set(packages);
  const seen = new Set<string>();
  const byAgent = new Map<string, OperationResult[]>(agents.map((a) => [a, []]));
  for (const r of results) {
    if (!wantAgents.has(r.agent_code)) continue;
    if (packages.length > 0 && !wantPkgs.has(r.package)) continue;
    const k = pairKey(r.agent_code, r.package);
    if (seen.has(k)) continue;
    seen.add(k);
    byAgent.get(r.agent_code)?.push(r);
  }
  for (const agent of agents) {
    const list = byAgent.get(agent) ?? [];
    if (packages.length > 0) {
      for (const pkg of packages) {
        if (!seen.has(pairKey(agent, pkg))) list.push(...failedResults([agent], [pkg], missingError));
      }
      // Keep the caller's package order.
      list.sort((a, b) => packages.indexOf(a.package) - packages.indexOf(b.package));
    } else if (list.length === 0) {
      list.push(...failedResults([agent], [], missingError));
    }
    byAgent.set(agent, list);
  }
  return byAgent;
}

export async function batchAcrossAreas(
  pool: BatchPool,
  op: CrossAreaBatchOp,
  groups: AgentGroups,
  options: BatchAcrossAreasOptions = {},
): Promise<BatchOperationResult> {
  const started = performance.now();
  const { signal } = options;
  if (signal?.aborted) throw abortReason(signal);
  const log = options.logger ?? createLogger('batch-across-areas');
  const packages = checkOp(op);
  const limiter = options.limiter ?? new ConcurrencyLimiter(10);

  /** Final results per agent, filled area by area; `order` is the caller's agent order. */
  const byAgent = new Map<string, OperationResult[]>();
  const order: string[] = [];
  const areaGroups = new Map<string, string[]>();
  const fail = (agent: string, code: string, message: string) =>
    byAgent.set(agent, failedResults([agent], packages, resultError(code, message)));

  const place = (agent: string, area: string | undefined) => {
    if (!AgentCodeSchema.safeParse(agent).success) {
      fail(agent, 'validation_failed', `invalid agent code '${agent}'`);
    } else if (area === undefined || area === '') {
      fail(agent, 'agent_not_found', `no area known for agent '${agent}'`);
    } else if (!AreaNameSchema.safeParse(area).success) {
      fail(agent, 'validation_failed', `invalid area '${area}' for agent '${agent}'`);
    } else {
      const g = areaGroups.get(area) ?? [];
      g.push(agent);
      areaGroups.set(area, g);
    }
  };

  // Each agent once, in the caller's order; a repeat (also across areas) is ignored so that
  // no (agent, package) gets two results.
  const seenAgents = new Set<string>();
  const admit = (agent: string): boolean => {
    if (seenAgents.has(agent)) return false;
    seenAgents.add(agent);
    order.push(agent);
    return true;
  };

  if (typeof groups === 'function') {
    const agents = op.agents ?? [];
    const fresh = agents.filter(admit);
    // Resolving may hit a database per agent: bounded by the same limiter.
    const areas = await limiter.mapSettled(fresh, (agent) => groups(agent), signal);
    fresh.forEach((agent, i) => {
      const r = areas[i];
      if (r?.status === 'fulfilled') {
        place(agent, r.value);
      } else {
        const e = toWireError(r?.reason);
        fail(agent, e.code, `resolving the area of agent '${agent}' failed: ${e.message}`);
      }
    });
  } else {
    if (op.agents !== undefined) {
      throw new ValidationError(
        'pass agents either in the area groups or in op.agents with an area resolver, not both',
      );
    }
    for (const [area, agents] of groups) for (const agent of agents) if (admit(agent)) place(agent, area);
  }
  if (signal?.aborted) throw abortReason(signal);

  const chunkSize = Math.max(1, Math.floor(options.maxAgentsPerRequest ?? 1000));
  const tasks: [string, string[]][] = [];
  for (const [area, agents] of areaGroups) {
    for (let i = 0; i < agents.length; i += chunkSize) tasks.push([area, agents.slice(i, i + chunkSize)]);
  }

  await limiter.map(
    tasks,
    async ([area, agents]) => {
      let results: Map<string, OperationResult[]>;
      try {
        results = await runArea(pool, op, area, agents, packages, options, log);
      } catch (err) {
        if (signal?.aborted) throw abortReason(signal);
        // Not expected; but a bug must not cost the caller the results of the other areas.
        log.error({ area, err }, 'batch across areas: area failed unexpectedly');
        const e = toWireError(err);
        results = new Map(
          agents.map((a) => [a, failedResults([a], packages, resultError(e.code, e.message))]),
        );
      }
      for (const [agent, rs] of results) byAgent.set(agent, rs);
    },
    signal,
  );

  const results = order.flatMap(
    (agent) => byAgent.get(agent) ?? failedResults([agent], packages, resultError('internal', 'no result')),
  );
  return mergeBatchResults(
    [{ total: 0, success: 0, failed: 0, results, duration_ms: 0 }],
    performance.now() - started,
  );
}

async function runArea(
  pool: BatchPool,
  op: CrossAreaBatchOp,
  area: string,
  agents: string[],
  packages: string[],
  options: BatchAcrossAreasOptions,
  log: Logger,
): Promise<Map<string, OperationResult[]>> {
  const { signal } = options;
  const out = new Map<string, OperationResult[]>();
  const controllers = pool.onlineControllers(area);
  if (controllers.length === 0) {
    const error = resultError('controller_unavailable', `no online controller for area '${area}'`);
    for (const a of agents) out.set(a, failedResults([a], packages, error));
    return out;
  }

  // One signal for the area: the caller's abort or the area's deadline, whichever first.
  const ac = new AbortController();
  const onAbort = () => ac.abort(signal?.reason);
  signal?.addEventListener('abort', onAbort, { once: true });
  const timeoutMs = options.perAreaTimeoutMs;
  const timer =
    timeoutMs !== undefined
      ? setTimeout(
          () => ac.abort(new RequestTimeoutError(`batch ${op.action} in area '${area}'`, timeoutMs)),
          timeoutMs,
        )
      : undefined;

  try {
    let remaining = agents;
    /** Answers of controllers that said "not here", used if no later controller does better. */
    const fallback = new Map<string, OperationResult[]>();
    let lastError: unknown;
    for (const pc of controllers) {
      if (remaining.length === 0 || ac.signal.aborted) break;
      try {
        const res = await callController(pc.client, op, remaining, packages, ac.signal);
        const normalized = normalizeResults(
          res.results,
          remaining,
          packages,
          resultError('upstream_error', `no result from controller '${pc.key}'`),
        );
        const next: string[] = [];
        for (const agent of remaining) {
          const rs = normalized.get(agent) ?? [];
          if (rs.length > 0 && rs.every((r) => !r.success && NOT_HERE.test(r.error ?? ''))) {
            fallback.set(agent, rs);
            next.push(agent);
          } else {
            out.set(agent, rs);
          }
        }
        remaining = next;
      } catch (err) {
        if (signal?.aborted) throw abortReason(signal);
        lastError = err;
        log.warn(
          {
            area,
            controller: pc.key,
            agents: remaining.length,
            err: err instanceof Error ? err.message : String(err),
          },
          'batch call to controller failed; trying the next controller of the area',
        );
      }
    }
    if (remaining.length > 0) {
      const cause = ac.signal.aborted && !signal?.aborted ? ac.signal.reason : lastError;
      const e =
        cause !== undefined
          ? toWireError(cause)
          : { code: 'agent_unavailable', message: `no controller of area '${area}' holds the agent` };
      const error = resultError(e.code, e.message);
      for (const agent of remaining)
        out.set(agent, fallback.get(agent) ?? failedResults([agent], packages, error));
    }
    return out;
  } finally {
    if (timer) clearTimeout(timer);
    signal?.removeEventListener('abort', onAbort);
  }
}
