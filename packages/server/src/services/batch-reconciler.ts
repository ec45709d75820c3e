/**
 * Reconciles batch jobs a server left `running` when it stopped (crashed, or was stopped while
 * a batch ran): the agents they addressed are asked, by the job's operation id, what they did
 * (their journals answer, and never act). Every (agent, package) gets its true result:
 * done / failed_on_agent / interrupted from the agent's journal; not_delivered when the agent has
 * no record of the id (the batch never reached it); outcome_unknown — and the job `interrupted` —
 * only where no controller holds the agent within the wait, or the operation is still running.
 *
 * Runs in the background after start: discovery must have synced and agents may still be
 * reconnecting, so it waits for both (bounded).
 */
import { failedResults, type OperationQueryEntry, type OperationResult } from '@opsplane/models';
import { queryOperationAcrossAreas, type ControllerClientPool } from '@opsplane/platform';
import { sleep, type Logger } from '@opsplane/kit';
import type { Store } from '../storage/store.js';
import type { BatchJobRow } from '../storage/schema.js';
import { resultInput, type BatchRunner } from './batch-runner.js';

export interface BatchReconcilerOptions {
  store: Store;
  pools: ControllerClientPool;
  runner: BatchRunner;
  /** True once discovery has read etcd. */
  synced: () => boolean;
  /** How long to look for the agents of a job. */
  waitMs: number;
  /** This replica, which takes jobs over under a lease like the ones it runs. */
  replicaId: string;
  leaseMs: number;
  /** An embedded database: every job left running at start is ours (no other replica exists). */
  exclusiveDatabase: boolean;
  logger: Logger;
}

/** A journal entry as a batch result. */
export function resultFromJournal(e: OperationQueryEntry, operationId: string): OperationResult {
  const base = { agent_code: e.agent_code, package: e.package, operation_id: operationId };
  switch (e.state) {
    case 'done':
    case 'interrupted':
      return {
        ...base,
        success: e.success ?? false,
        reason:
          e.reason ?? (e.state === 'interrupted' ? 'interrupted' : e.success ? 'done' : 'failed_on_agent'),
        ...(e.error !== undefined ? { error: e.error } : {}),
        ...(e.message !== undefined ? { message: e.message } : {}),
        ...(e.old_pid !== undefined ? { old_pid: e.old_pid } : {}),
        ...(e.new_pid !== undefined ? { new_pid: e.new_pid } : {}),
        ...(e.agent_duration_ms !== undefined ? { agent_duration_ms: e.agent_duration_ms } : {}),
      };
    case 'in_flight':
      return {
        ...base,
        success: false,
        reason: 'outcome_unknown',
        error: 'outcome_unknown: the agent was still running the operation when the server gave up waiting',
      };
    case 'unknown':
      return {
        ...base,
        success: false,
        reason: 'not_delivered',
        error:
          'not_delivered: the agent has no record of the operation — it never reached the agent (the server stopped first)',
      };
    case 'unreachable':
      return {
        ...base,
        success: false,
        reason: 'outcome_unknown',
        error: `outcome_unknown: no controller held the agent while the server asked${e.error ? ` (${e.error})` : ''}`,
      };
  }
}

export class BatchReconciler {
  private readonly abort = new AbortController();
  private running: Promise<void> | undefined;
  private firstPass = true;

  constructor(private readonly o: BatchReconcilerOptions) {}

  /**
   * Keeps looking (every half lease) for running jobs nobody holds — their replica died or was
   * stopped — and takes them over to reconcile. A job whose owner still renews its lease is
   * never touched.
   */
  start(): void {
    this.running ??= this.loop();
  }

  async stop(): Promise<void> {
    this.abort.abort();
    await this.running;
  }

  /** One look now (tests). */
  async pass(): Promise<void> {
    await this.takeOverAndReconcile();
  }

  private async loop(): Promise<void> {
    while (!this.abort.signal.aborted) {
      try {
        await this.takeOverAndReconcile();
      } catch (err) {
        if (!this.abort.signal.aborted)
          this.o.logger.warn({ err: (err as Error).message }, 'batch reconciliation failed');
      }
      await sleep(Math.max(1000, Math.floor(this.o.leaseMs / 2)), this.abort.signal);
    }
  }

  private async takeOverAndReconcile(): Promise<void> {
    const anyOwner = this.firstPass && this.o.exclusiveDatabase;
    const jobs = await this.o.store.batches.takeOver(this.o.replicaId, this.o.leaseMs, anyOwner);
    this.firstPass = false;
    if (jobs.length === 0) return;
    this.o.logger.warn(
      { jobs: jobs.length },
      'batch jobs left running by a stopped server: asking their agents',
    );
    for (let waited = 0; !this.o.synced() && waited < this.o.waitMs; waited += 250) {
      await sleep(250, this.abort.signal);
      if (this.abort.signal.aborted) return;
    }
    for (const job of jobs) {
      if (this.abort.signal.aborted) return;
      await this.reconcile(job);
    }
  }

  private async reconcile(job: BatchJobRow): Promise<void> {
    const { store, logger } = this.o;
    const log = logger.child({ batch: job.id });
    const missing = await store.batches.targetsWithoutResults(job.id);
    const groups = new Map<string, string[]>();
    const results: OperationResult[] = [];
    const areaOf = new Map<string, string>();
    for (const t of missing) {
      if (!t.area) {
        results.push(
          ...failedResults(
            [t.agentCode],
            [],
            `agent_not_found: no area known for agent '${t.agentCode}'`,
            'not_delivered',
            {
              operation_id: job.id,
            },
          ),
        );
        continue;
      }
      areaOf.set(t.agentCode, t.area);
      groups.set(t.area, [...(groups.get(t.area) ?? []), t.agentCode]);
    }
    const answers = await queryOperationAcrossAreas(this.o.pools, groups, job.id, {
      timeoutMs: this.o.waitMs,
      signal: this.abort.signal,
      logger: log,
    });
    for (const entries of answers.values())
      for (const e of entries) results.push(resultFromJournal(e, job.id));
    const rows = await store.batches.upsertResults(
      job.id,
      results.map((r) => resultInput(r, areaOf.get(r.agent_code))),
    );
    this.o.runner.emit('results', job.id, rows);
    const unknown = results.filter((r) => r.reason === 'outcome_unknown').length;
    const done = await store.batches.finish(
      job.id,
      unknown > 0 ? 'interrupted' : 'done',
      null,
      this.o.replicaId,
    );
    this.o.runner.emit('finished', job.id);
    log.warn(
      { learned: results.length - unknown, outcome_unknown: unknown, status: done?.status },
      'batch job reconciled with what its agents did',
    );
  }
}
