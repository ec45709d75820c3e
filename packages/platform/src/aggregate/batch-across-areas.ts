/**
 * batchAcrossAreas: one batch (start/stop/restart/configs) over agents of many areas (guide
 * §3.3, done properly). Agents are grouped by area and the areas run concurrently (bounded by a
 * limiter); the answer holds EXACTLY one result per (agent, package) asked for — the guide's
 * version dropped whole areas when a controller was missing or failed.
 *
 * The batch has one operation id (the caller's, or a new one) that the agents journal, and one
 * deadline (`timeoutMs`) across every controller and retry. Within an area (area-batch.ts) each
 * controller gets the agents it holds, at once; when a controller dies or hangs mid-request its
 * agents are looked for where they fail over to and asked again by the same id — they never act
 * twice, and their results are what they did, not a guess. Every result says why it is what it
 * is (`reason`: done, failed_on_agent, interrupted, not_delivered, outcome_unknown).
 */
import {
  AgentCodeSchema,
  AreaNameSchema,
  BatchConfigRequestSchema,
  PackageNameSchema,
  ValidationError,
  failedResults,
  formatIssues,
  mergeBatchResults,
  type BatchAction,
  type BatchOperationResult,
  type ConfigItem,
  type OperationResult,
} from '@opsplane/models';
import { randomUUID } from 'node:crypto';
import { ConcurrencyLimiter } from '../concurrency/limiter.js';
import { runAreaBatch } from './area-batch.js';
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
  /** Bounds how many areas (chunks) are in flight. Default: a limiter of 10 (max_workers). */
  limiter?: ConcurrencyLimiter;
  /** Aborting rejects the whole call with the signal's reason. */
  signal?: AbortSignal;
  /** The batch's operation id; the same id never acts twice on an agent. Default: a new one. */
  operationId?: string;
  /** One deadline for the whole batch, across controllers and retries. Default 120 s. */
  timeoutMs?: number;
  /** One controller call never waits longer (below the deadline). Default 30 s. */
  callTimeoutMs?: number;
  /** Pause between the rounds that look for agents after a controller failed. Default 500 ms. */
  pollMs?: number;
  /**
   * How long to look for the agents of a controller that failed mid-request where they fail over
   * to (agents notice a hung controller after 3 heartbeats). Default 45 s; never past the deadline.
   */
  failoverWaitMs?: number;
  /** Where the caller believes an agent is held now (`area/id`), so each controller gets its own agents. */
  holderOf?: (agentCode: string) => string | undefined;
  /** Results as they become final (progress); called once per agent. */
  onResults?: (results: OperationResult[]) => void;
  /** Agents per controller request; larger areas are split. Default 1000. */
  maxAgentsPerRequest?: number;
  logger?: Logger;
}

/** What the batch needs from the pool. */
export type BatchPool = Pick<ControllerClientPool, 'onlineControllers'>;

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
        if (!seen.has(pairKey(agent, pkg)))
          list.push(...failedResults([agent], [pkg], missingError, 'outcome_unknown'));
      }
      // Keep the caller's package order.
      list.sort((a, b) => packages.indexOf(a.package) - packages.indexOf(b.package));
    } else if (list.length === 0) {
      list.push(...failedResults([agent], [], missingError, 'outcome_unknown'));
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
    byAgent.set(agent, failedResults([agent], packages, resultError(code, message), 'not_delivered'));

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

  const operationId = options.operationId ?? `batch-${randomUUID()}`;
  const deadline = Date.now() + (options.timeoutMs ?? 120_000);
  const onResults = options.onResults;
  if (onResults) {
    // What failed before any controller was asked (validation, no area) is final already.
    for (const agent of order) {
      const rs = byAgent.get(agent);
      if (rs) onResults(rs.map((r) => ({ ...r, operation_id: operationId })));
    }
  }
  await limiter.map(
    tasks,
    async ([area, agents]) => {
      let results: Map<string, OperationResult[]>;
      try {
        results = await runAreaBatch({
          area,
          op,
          agents,
          packages,
          operationId,
          deadline,
          callTimeoutMs: options.callTimeoutMs ?? 30_000,
          pollMs: options.pollMs ?? 500,
          failoverWaitMs: options.failoverWaitMs ?? 45_000,
          controllers: () => pool.onlineControllers(area),
          holderOf: options.holderOf,
          signal,
          onFinal: (rs) => onResults?.(rs),
          logger: log,
        });
      } catch (err) {
        if (signal?.aborted) throw abortReason(signal);
        // Not expected; but a bug must not cost the caller the results of the other areas.
        log.error({ area, err }, 'batch across areas: area failed unexpectedly');
        const e = toWireError(err);
        results = new Map(
          agents.map((a) => [
            a,
            failedResults([a], packages, resultError(e.code, e.message), 'outcome_unknown', {
              operation_id: operationId,
            }),
          ]),
        );
        for (const rs of results.values()) onResults?.(rs);
      }
      for (const [agent, rs] of results) byAgent.set(agent, rs);
    },
    signal,
  );

  const results = order.flatMap(
    (agent) =>
      byAgent.get(agent) ??
      failedResults([agent], packages, resultError('internal', 'no result'), 'outcome_unknown', {
        operation_id: operationId,
      }),
  );
  return mergeBatchResults(
    [{ total: 0, success: 0, failed: 0, results, duration_ms: 0 }],
    performance.now() - started,
  );
}
