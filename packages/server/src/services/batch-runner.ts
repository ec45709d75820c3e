/**
 * BatchRunner: start/stop/restart/configs across areas (guide §3.3) as recorded batch jobs.
 *
 * 1. The agents: the codes given, or the aggregated view's agents matching a filter.
 * 2. Their areas: the device inventory (function_area by agent code); agents without a device
 *    fall back to the area the aggregated view saw them in; the rest fail with agent_not_found.
 * 3. batchAcrossAreas groups them by area and runs the areas concurrently (max_workers), each
 *    through the area's controllers (freshest first, failing over), with a per-area deadline.
 *    The answer has exactly one result per (agent, package) — an area without an online
 *    controller, a dead controller or a timeout give failed results that say why.
 * 4. The job row is written before anything is sent; every result (with its area) and the
 *    counts when it is done. A job the server could not finish (it was stopped) ends 'failed'
 *    with a failed result for every (agent, package) saying so.
 *
 * Config file contents are never stored: the recorded request keeps each file's name, size
 * and SHA-256.
 */
import { createHash } from 'node:crypto';
import {
  failedResults,
  OpsplaneError,
  ValidationError,
  type BatchOperationResult,
  type OperationResult,
} from '@opsplane/models';
import {
  batchAcrossAreas,
  ConcurrencyLimiter,
  type ControllerClientPool,
  type CrossAreaBatchOp,
  type Logger,
} from '@opsplane/platform';
import type { BatchCreate } from '@opsplane/api';
import type { BatchJobRow } from '../storage/schema.js';
import type { Store } from '../storage/store.js';
import type { FleetView } from './fleet-view.js';

export interface BatchRunnerOptions {
  store: Store;
  pools: ControllerClientPool;
  view: FleetView;
  maxWorkers: number;
  perAreaTimeoutMs: number;
  logger: Logger;
}

export interface StartedBatch {
  job: BatchJobRow;
  agents: number;
  /** Settles when the job row is final (never rejects). */
  done: Promise<void>;
}

/** The request as recorded: config contents replaced by size and digest. */
export function recordedRequest(req: BatchCreate, resolved: number): Record<string, unknown> {
  const out: Record<string, unknown> = { ...req, resolved_agents: resolved };
  if (req.agents && req.agents.length > 1000) {
    out.agents = req.agents.slice(0, 1000);
    out.agents_truncated = req.agents.length;
  }
  if (req.configs) {
    out.configs = req.configs.map((c) => ({
      file_name: c.file_name,
      bytes: Buffer.byteLength(c.content, 'utf8'),
      sha256: createHash('sha256').update(c.content, 'utf8').digest('hex'),
    }));
  }
  return out;
}

export class BatchRunner {
  private readonly inflight = new Set<Promise<void>>();
  private readonly abort = new AbortController();
  private stopped = false;

  constructor(private readonly opts: BatchRunnerOptions) {}

  /** Resolves the agents, records the job and starts it; the caller may await `done`. */
  async start(req: BatchCreate, requestedBy: string): Promise<StartedBatch> {
    if (this.stopped)
      throw new OpsplaneError('unavailable', 'the server is stopping; no new batches', { status: 503 });
    const { store, view } = this.opts;
    let agents: string[];
    if (req.filter) {
      agents = view.select(req.filter).map((a) => a.agent_code);
      if (agents.length === 0) {
        const snap = view.snapshot();
        throw new ValidationError(
          `the filter matched no agent in the aggregated view (refreshed at ${snap.refreshedAt?.toISOString() ?? 'never'})`,
        );
      }
    } else {
      agents = [...new Set(req.agents ?? [])];
    }

    const areaOf = new Map<string, string>();
    const devices = await store.devices.areasOfAgents(agents);
    for (const code of agents) {
      const area = devices.get(code)?.area ?? view.get(code)?.area;
      if (area) areaOf.set(code, area);
    }

    const job = await store.batches.create({
      action: req.action,
      requestedBy,
      request: recordedRequest(req, agents.length),
    });
    const done = this.run(job, req, agents, areaOf);
    this.inflight.add(done);
    void done.finally(() => this.inflight.delete(done));
    return { job, agents: agents.length, done };
  }

  /** Aborts running batches and waits until their jobs are recorded as failed. Idempotent. */
  async stop(): Promise<void> {
    if (!this.stopped) {
      this.stopped = true;
      this.abort.abort(new Error('the server stopped before the batch finished'));
    }
    await Promise.allSettled([...this.inflight]);
  }

  private op(req: BatchCreate, agents: string[]): CrossAreaBatchOp {
    if (req.action === 'configs') {
      return {
        action: 'configs',
        package: req.package as string,
        configs: req.configs ?? [],
        ...(req.config_file ? { config_file: req.config_file } : {}),
        agents,
      };
    }
    return { action: req.action, packages: req.packages ?? [], agents };
  }

  private async run(
    job: BatchJobRow,
    req: BatchCreate,
    agents: string[],
    areaOf: Map<string, string>,
  ): Promise<void> {
    const { store, pools, logger } = this.opts;
    const started = performance.now();
    let result: BatchOperationResult;
    let status: 'done' | 'failed' = 'done';
    try {
      result = await batchAcrossAreas(pools, this.op(req, agents), (code) => areaOf.get(code), {
        limiter: new ConcurrencyLimiter(this.opts.maxWorkers),
        perAreaTimeoutMs: this.opts.perAreaTimeoutMs,
        signal: this.abort.signal,
        logger: logger.child({ batch: job.id }),
      });
    } catch (err) {
      status = 'failed';
      const why = err instanceof Error ? err.message : String(err);
      logger.error({ batch: job.id, err }, 'batch failed');
      const packages = req.action === 'configs' ? [req.package as string] : (req.packages ?? []);
      const results = failedResults(
        agents,
        [...new Set(packages)],
        `aborted: ${why}; the outcome on the agent is unknown`,
      );
      result = { total: results.length, success: 0, failed: results.length, results, duration_ms: 0 };
    }
    const durationMs = Math.round(performance.now() - started);
    try {
      await store.transaction(async (tx) => {
        await tx.batches.addResults(
          job.id,
          result.results.map((r: OperationResult) => ({ ...r, area: areaOf.get(r.agent_code) })),
        );
        await tx.batches.finish(job.id, status, {
          total: result.total,
          success: result.success,
          failed: result.failed,
          durationMs,
        });
      });
      logger.info(
        {
          batch: job.id,
          action: req.action,
          total: result.total,
          success: result.success,
          failed: result.failed,
          duration_ms: durationMs,
        },
        'batch finished',
      );
    } catch (err) {
      logger.error({ batch: job.id, err }, 'could not record the results of a batch');
    }
  }
}
