/** One event of a batch's live stream (Server-Sent Events on the wire). */
export interface BatchEvent {
  event: 'job' | 'result' | 'end';
  data: unknown;
  /** The result's seq, for resuming. */
  id?: number;
}

/**
 * Cross-area batch jobs as the API serves them. create() starts a job (batch-runner.ts), audits
 * the request (also when it is refused), and waits up to `wait` for it: finished → the job with
 * one result per (agent, package); still running → the job without results (poll get()). The
 * batch runs to the end either way; a client that goes away does not cancel it. Also the one
 * place batch rows become the API's BatchJob.
 */
import { NotFoundError, OpsplaneError } from '@opsplane/models';
import {
  iso,
  isoOrNull,
  type BatchCreate,
  type BatchJob,
  type BatchListQuery,
  type BatchListResponse,
  type BatchResult,
} from '@opsplane/api';
import type { ResultReason } from '@opsplane/models';
import type { BatchJobRow, BatchResultRow } from '../storage/schema.js';
import type { Store } from '../storage/store.js';
import { requireInAreas, type AreaActor } from './access.js';
import { REDACTED, type AuditTrail } from './audit-trail.js';
import type { BatchRunner } from './batch-runner.js';
import type { AuditChange } from '@opsplane/api';

export function toBatchResult(r: BatchResultRow): BatchResult {
  return {
    agent_code: r.agentCode,
    package: r.package,
    area: r.area,
    success: r.success,
    // Results recorded before operation ids existed have no reason: say what success says.
    reason: (r.reason as ResultReason | null) ?? (r.success ? 'done' : 'failed_on_agent'),
    ...(r.error !== null ? { error: r.error } : {}),
    ...(r.message !== null ? { message: r.message } : {}),
    ...r.details,
  };
}

export function toBatchJob(j: BatchJobRow, targets: number, results?: BatchResultRow[]): BatchJob {
  return {
    id: j.id,
    action: j.action,
    status: j.status as BatchJob['status'],
    operation_id: j.id,
    targets,
    deadline_at: isoOrNull(j.deadlineAt),
    requested_by: j.requestedBy,
    request: j.request,
    total: j.total,
    success: j.success,
    failed: j.failed,
    created_at: iso(j.createdAt),
    finished_at: isoOrNull(j.finishedAt),
    duration_ms: j.durationMs,
    ...(results ? { results: results.map(toBatchResult) } : {}),
  };
}

/** Config pushes to at most this many agents record each file's content before and after. */
export const CONFIG_AUDIT_MAX_AGENTS = 10;
const CONFIG_AUDIT_MAX_CHARS = 2000;
const SECRET_LINE =
  /^(\s*["']?[\w.-]*(?:pass(?:word|phrase)?|private_?key|secret|token|credential|api_?key)[\w.-]*["']?\s*[:=]\s*)(.+)$/gim;

/** A config file's text for the audit log: values of secret-looking keys replaced, long files cut. */
export function redactConfigText(text: string): string {
  const red = text.replace(SECRET_LINE, (_m, key: string, value: string) =>
    value.trim() === '' || value.trim() === '{' || value.trim() === '['
      ? `${key}${value}`
      : `${key}${REDACTED}`,
  );
  return red.length > CONFIG_AUDIT_MAX_CHARS ? `${red.slice(0, CONFIG_AUDIT_MAX_CHARS)}…` : red;
}

/** Reads a config file as it is on an agent now (undefined when it cannot be read). */
export type ConfigReader = (agent: string, pkg: string, file: string) => Promise<string | null | undefined>;

export class BatchService {
  constructor(
    private readonly store: Store,
    private readonly runner: BatchRunner,
    private readonly audit: AuditTrail,
    private readonly readConfig?: ConfigReader,
  ) {}

  /**
   * Starts a job; `finished` tells whether it ended within `waitMs` (then with its results).
   * The caller must be an operator in every area of the agents (else 403, nothing sent). A
   * config push to a few agents records each file before and after (secrets redacted).
   */
  async create(
    actor: AreaActor,
    body: BatchCreate,
    waitMs: number,
  ): Promise<{ finished: boolean; job: BatchJob }> {
    const action = `batch.${body.action}`;
    let started;
    let changes: AuditChange[] = [];
    try {
      started = await this.runner.start(body, actor.username, async (agents, areaOf) => {
        requireInAreas(actor, new Set(areaOf.values()), 'operator', `this batch (${agents.length} agents)`);
        if (
          body.action === 'configs' &&
          body.configs &&
          body.package &&
          agents.length <= CONFIG_AUDIT_MAX_AGENTS
        )
          changes = await this.configChanges(agents, body.package, body.configs);
      });
    } catch (e) {
      await this.audit.record(actor, {
        action,
        targetType: 'batch',
        result: 'failure',
        details: {
          agents: body.agents?.length ?? null,
          filter: body.filter ?? null,
          ...(e instanceof OpsplaneError ? { error: e.code, message: e.message } : { error: 'internal' }),
        },
      });
      throw e;
    }
    const { job, agents, done } = started;
    await this.audit.record(actor, {
      action,
      targetType: 'batch',
      targetId: job.id,
      result: 'success',
      changes,
      details: {
        agents,
        ...(body.filter ? { filter: body.filter } : {}),
        ...(body.packages ? { packages: body.packages } : {}),
        ...(body.package ? { package: body.package } : {}),
        ...(body.configs ? { config_files: body.configs.map((c) => c.file_name) } : {}),
      },
    });
    let timer: NodeJS.Timeout | undefined;
    const finished = await Promise.race([
      done.then(() => true),
      new Promise<false>((resolve) => {
        timer = setTimeout(() => resolve(false), waitMs);
      }),
    ]).finally(() => clearTimeout(timer));
    const current = await this.store.batches.get(job.id);
    if (!current) throw new NotFoundError(`batch ${job.id} vanished`);
    return finished && current.job.status !== 'running'
      ? { finished: true, job: toBatchJob(current.job, agents, current.results) }
      : { finished: false, job: toBatchJob(current.job, agents) };
  }

  /** Each pushed file before (as read from the agent now) and after, per agent. */
  private async configChanges(
    agents: readonly string[],
    pkg: string,
    configs: readonly { file_name: string; content: string }[],
  ): Promise<AuditChange[]> {
    const read = this.readConfig;
    const rows = await Promise.all(
      agents.flatMap((agent) =>
        configs.map(async (c): Promise<AuditChange> => {
          const before = read ? await read(agent, pkg, c.file_name).catch(() => undefined) : undefined;
          return {
            field: `${agent}/${pkg}/${c.file_name}`,
            before:
              before === undefined
                ? '(could not be read)'
                : before === null
                  ? null
                  : redactConfigText(before),
            after: redactConfigText(c.content),
          };
        }),
      ),
    );
    return rows.filter((r) => r.before !== r.after);
  }

  async list(q: BatchListQuery): Promise<BatchListResponse> {
    const { jobs, total } = await this.store.batches.list({
      page: q.page,
      pageSize: q.pageSize,
      action: q.action,
      status: q.status,
      requestedBy: q.requested_by,
    });
    const batches = await Promise.all(
      jobs.map(async (j) => toBatchJob(j, await this.store.batches.countTargets(j.id))),
    );
    return { batches, total, page: q.page, pageSize: q.pageSize };
  }

  async get(id: string): Promise<BatchJob> {
    const found = await this.store.batches.get(id);
    if (!found) throw new NotFoundError(`batch ${id} not found`);
    return toBatchJob(found.job, await this.store.batches.countTargets(id), found.results);
  }

  /**
   * The live events of a batch after result `after`: `job` (counts changed), `result` (each,
   * final), `end` (the finished job). The database is the source of truth (another server may
   * run the batch); the runner's events only make this look sooner.
   */
  async *follow(id: string, after: number, signal: AbortSignal): AsyncGenerator<BatchEvent | 'idle'> {
    const { store, runner } = this;
    const first = await store.batches.job(id);
    if (!first) throw new NotFoundError(`batch ${id} not found`);
    if (runner.stopping) {
      throw new OpsplaneError('shutting_down', 'the server is stopping; reconnect in a moment', {
        status: 503,
      });
    }
    const targets = await store.batches.countTargets(id);
    let wake: (() => void) | undefined;
    const onAny = (job: string) => {
      if (job === id) wake?.();
    };
    const onStop = () => wake?.();
    runner.on('results', onAny);
    runner.on('finished', onAny);
    signal.addEventListener('abort', onStop, { once: true });
    let lastShape = '';
    try {
      while (!signal.aborted && !runner.stopping) {
        const job = await store.batches.job(id);
        if (!job) return;
        for (const r of await store.batches.results(id, after, 1000)) {
          yield { event: 'result', data: toBatchResult(r), id: r.id };
          after = r.id;
        }
        const shape = JSON.stringify([job.status, job.total, job.success, job.failed]);
        if (shape !== lastShape) {
          lastShape = shape;
          yield { event: 'job', data: toBatchJob(job, targets) };
        }
        if (job.status !== 'running') {
          for (const r of await store.batches.results(id, after))
            yield { event: 'result', data: toBatchResult(r), id: r.id };
          yield { event: 'end', data: toBatchJob(job, targets) };
          return;
        }
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, 1000);
          wake = () => {
            clearTimeout(t);
            resolve();
          };
        });
        wake = undefined;
        yield 'idle';
      }
    } finally {
      runner.off('results', onAny);
      runner.off('finished', onAny);
      signal.removeEventListener('abort', onStop);
    }
  }
}
