/**
 * BatchRunner: start/stop/restart/configs across areas (guide §3.3) as recorded batch jobs whose
 * results are true under faults.
 *
 * 1. The agents: the codes given, or the aggregated view's agents matching a filter.
 * 2. Their areas: the device inventory (function_area by agent code); agents without a device
 *    fall back to the area the aggregated view saw them in; the rest fail with agent_not_found.
 * 3. The job row and its targets are written before anything is sent; the job's id is the
 *    operation id the agents journal, so no agent ever acts twice on it — not on a retry after a
 *    controller died, not when a restarted server asks again.
 * 4. batchAcrossAreas runs the areas concurrently under ONE deadline (the request's `timeout`,
 *    else server.batch_timeout), each controller with the agents it holds (the view knows which),
 *    looking for agents where they failed over to when a controller dies or hangs.
 * 5. Results are written and announced as they become final (progress, live streams); the
 *    job's counts follow. A job the server could not finish (it was stopped) is reconciled by
 *    the next start (batch-reconciler.ts).
 *
 * Config file contents are never stored: the recorded request keeps each file's name, size and
 * SHA-256.
 */
import { createHash } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { failedResults, OpsplaneError, ValidationError, type OperationResult } from '@opsplane/models';
import {
  batchAcrossAreas,
  ConcurrencyLimiter,
  type ControllerClientPool,
  type CrossAreaBatchOp,
} from '@opsplane/platform';
import { SerialTask, type Logger } from '@opsplane/kit';
import type { BatchCreate } from '@opsplane/api';
import type { BatchResultInput } from '../storage/batches-repo.js';
import { retryWhileUnavailable } from '../storage/database.js';
import type { BatchJobRow, BatchResultRow } from '../storage/schema.js';
import type { Store } from '../storage/store.js';
import type { FleetView } from './fleet-view.js';

export interface BatchRunnerOptions {
  store: Store;
  pools: ControllerClientPool;
  view: FleetView;
  maxWorkers: number;
  /** The batch deadline when the request names none. */
  defaultTimeoutMs: number;
  /** One controller call (controller.api_timeout). */
  callTimeoutMs: number;
  /** How long to look for the agents of a failed controller where they fail over to. */
  failoverWaitMs: number;
  /** Owner of the jobs this replica runs, and the lease it keeps renewing on them. */
  replicaId: string;
  leaseMs: number;
  logger: Logger;
}

export interface BatchEvents {
  /** Results of a job that became final (already stored). */
  results: [jobId: string, rows: BatchResultRow[]];
  /** A job finished (stored). */
  finished: [jobId: string];
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

/** A batch result as storage keeps it. */
export function resultInput(r: OperationResult, area: string | undefined): BatchResultInput {
  return {
    agentCode: r.agent_code,
    package: r.package,
    area: area ?? null,
    success: r.success,
    reason: r.reason ?? (r.success ? 'done' : 'failed_on_agent'),
    error: r.error ?? null,
    message: r.message ?? null,
    details: {
      ...(r.old_pid !== undefined ? { old_pid: r.old_pid } : {}),
      ...(r.new_pid !== undefined ? { new_pid: r.new_pid } : {}),
      ...(r.agent_duration_ms !== undefined ? { agent_duration_ms: r.agent_duration_ms } : {}),
      ...(r.replayed ? { replayed: true } : {}),
      ...(r.attempts !== undefined ? { attempts: r.attempts } : {}),
    },
  };
}

export class BatchRunner extends EventEmitter<BatchEvents> {
  private readonly inflight = new Set<Promise<void>>();
  private readonly abort = new AbortController();
  private stopped = false;
  private readonly leaseTimer: NodeJS.Timeout;

  constructor(private readonly opts: BatchRunnerOptions) {
    super();
    this.setMaxListeners(0);
    // Our running jobs (run or being reconciled here) stay ours while this keeps succeeding.
    this.leaseTimer = setInterval(
      () => {
        opts.store.batches
          .renewLeases(opts.replicaId, opts.leaseMs)
          .catch((err: unknown) =>
            opts.logger.warn({ err: (err as Error).message }, 'cannot renew batch leases'),
          );
      },
      Math.max(500, Math.floor(opts.leaseMs / 3)),
    );
    this.leaseTimer.unref();
  }

  get replicaId(): string {
    return this.opts.replicaId;
  }

  get stopping(): boolean {
    return this.stopped;
  }

  /**
   * Resolves the agents, records the job with its targets and starts it; the caller may await
   * `done`. `beforeStart` sees the agents and their areas before anything is written or sent
   * (the role check per area; what a config push replaces) and may refuse by throwing.
   */
  async start(
    req: BatchCreate,
    requestedBy: string,
    beforeStart?: (agents: readonly string[], areaOf: ReadonlyMap<string, string>) => Promise<void>,
  ): Promise<StartedBatch> {
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

    await beforeStart?.(agents, areaOf);
    const timeoutMs = req.timeout ?? this.opts.defaultTimeoutMs;
    const job = await store.transaction((tx) =>
      tx.batches.create({
        action: req.action,
        requestedBy,
        request: recordedRequest(req, agents.length),
        deadlineAt: new Date(Date.now() + timeoutMs),
        targets: agents.map((a) => ({ agentCode: a, area: areaOf.get(a) ?? null })),
        owner: this.opts.replicaId,
        leaseMs: this.opts.leaseMs,
      }),
    );
    const done = this.run(job, req, agents, areaOf, timeoutMs);
    this.inflight.add(done);
    void done.finally(() => this.inflight.delete(done));
    return { job, agents: agents.length, done };
  }

  /**
   * Stops running batches and waits until what they learned is recorded; their jobs stay
   * `running` for the next start to reconcile (the outcome on the agents is not known here).
   * Idempotent.
   */
  async stop(): Promise<void> {
    if (!this.stopped) {
      this.stopped = true;
      this.abort.abort(new Error('the server stopped before the batch finished'));
    }
    await Promise.allSettled([...this.inflight]);
    clearInterval(this.leaseTimer);
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
    timeoutMs: number,
  ): Promise<void> {
    const { store, pools, view, logger } = this.opts;
    const log = logger.child({ batch: job.id });
    const started = performance.now();
    // Results are written in arrival order, one write at a time; counts follow at most every 500 ms.
    let queue: Promise<void> = Promise.resolve();
    const counts = new SerialTask(() => store.batches.refreshCounts(job.id));
    let lastCounts = 0;
    // The database may be away for a while: results wait for it rather than being lost.
    const durable = <T>(fn: () => Promise<T>) =>
      retryWhileUnavailable(fn, {
        signal: this.abort.signal,
        onRetry: (err) =>
          log.warn(
            { err: (err as Error).message },
            'database unavailable; will record batch results when it is back',
          ),
      });
    const record = (results: OperationResult[]) => {
      queue = queue
        .then(async () => {
          const rows = await durable(() =>
            store.batches.upsertResults(
              job.id,
              results.map((r) => resultInput(r, areaOf.get(r.agent_code))),
            ),
          );
          this.emit('results', job.id, rows);
          if (Date.now() - lastCounts > 500) {
            lastCounts = Date.now();
            await counts.run().catch(() => undefined); // progress only: the end sets them anyway
          }
        })
        .catch((err: unknown) => log.error({ err }, 'could not record batch results'));
    };
    let status: 'done' | 'failed' | undefined = 'done';
    try {
      await batchAcrossAreas(pools, this.op(req, agents), (code) => areaOf.get(code), {
        limiter: new ConcurrencyLimiter(this.opts.maxWorkers),
        operationId: job.id,
        timeoutMs,
        callTimeoutMs: this.opts.callTimeoutMs,
        failoverWaitMs: this.opts.failoverWaitMs,
        holderOf: (code) => {
          const v = view.get(code);
          return v && v.status === 'online' ? `${v.area}/${v.controller_id}` : undefined;
        },
        onResults: record,
        signal: this.abort.signal,
        logger: log,
      });
    } catch (err) {
      if (this.abort.signal.aborted) {
        // The server is stopping: what is recorded stays; the next start asks the agents for the rest.
        status = undefined;
        log.warn('batch cut off by the server stopping; the next start reconciles it');
      } else {
        status = 'failed';
        log.error({ err }, 'batch failed');
      }
    }
    await queue;
    if (status === undefined) return;
    if (status === 'failed') {
      // Not expected (a bug): the agents that got no result may or may not have been reached.
      const missing = await store.batches.targetsWithoutResults(job.id).catch(() => []);
      const packages = req.action === 'configs' ? [req.package as string] : (req.packages ?? []);
      await store.batches
        .upsertResults(
          job.id,
          missing.flatMap((t) =>
            failedResults([t.agentCode], packages, 'internal: the batch failed', 'outcome_unknown').map((r) =>
              resultInput(r, t.area ?? undefined),
            ),
          ),
        )
        .catch((err: unknown) => log.error({ err }, 'could not record the results of a failed batch'));
    }
    const durationMs = Math.round(performance.now() - started);
    try {
      const done = await durable(() => store.batches.finish(job.id, status, durationMs, this.opts.replicaId));
      this.emit('finished', job.id);
      log.info(
        {
          action: req.action,
          total: done?.total,
          success: done?.success,
          failed: done?.failed,
          duration_ms: durationMs,
        },
        'batch finished',
      );
    } catch (err) {
      log.error({ err }, 'could not record the end of a batch');
    }
  }
}
