/**
 * The agent's journal of recent operations (data_dir/operations.jsonl): for each (operation id,
 * package) whether it is in flight, done or was interrupted, and its result. It is what makes an
 * operation id act at most once on this agent, across reconnects, controller failovers, retries
 * by the platform and agent restarts:
 *
 * - run() writes the intent (`in_flight`) durably BEFORE acting and the result after, and only
 *   then answers. An id seen again is answered from the journal (`replayed`), or waits for the
 *   run in flight in this process — it never acts twice.
 * - An entry still in flight when the agent starts again was cut off by the agent's own crash:
 *   it becomes `interrupted` (its effect is whatever the package's state now shows), and is never
 *   run again.
 *
 * The file is append-only JSON lines (one fsync per group of concurrent writes) and is compacted
 * when it holds far more lines than live entries. Entries are bounded by count and age; an id
 * older than that would act again, which is documented (`max_age`).
 */
import { mkdir, open, readFile, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import {
  JournalEntrySchema,
  type JournalEntry,
  type OperationState,
  type PackageOpResult,
} from '@opsplane/models';
import type { Logger } from '../log.js';
import { writeFileAtomic } from '../util/atomic-file.js';

export interface OperationJournalOptions {
  /** Most entries kept (oldest dropped first). Default 5000. */
  maxEntries?: number;
  /** Entries older than this are dropped. Default 24 h. */
  maxAgeMs?: number;
  now?: () => number;
}

const key = (operationId: string, pkg: string) => `${operationId}\u0000${pkg}`;

export class OperationJournal {
  private readonly entries = new Map<string, JournalEntry>();
  private readonly running = new Map<string, Promise<PackageOpResult>>();
  private readonly maxEntries: number;
  private readonly maxAgeMs: number;
  private readonly now: () => number;
  private fh: FileHandle | undefined;
  private lines = 0;
  /** Lines waiting for the next group write, and who waits for it. */
  private queued: string[] = [];
  private waiters: { resolve: () => void; reject: (e: Error) => void }[] = [];
  private loop: Promise<void> | undefined;

  constructor(
    readonly path: string,
    private readonly logger: Logger,
    opts: OperationJournalOptions = {},
  ) {
    this.maxEntries = opts.maxEntries ?? 5000;
    this.maxAgeMs = opts.maxAgeMs ?? 24 * 3600_000;
    this.now = opts.now ?? Date.now;
  }

  /**
   * Reads the journal; entries a previous run left in flight become `interrupted`. Rewrites the
   * file compacted. Call once, before the agent takes requests.
   */
  async open(): Promise<{ interrupted: JournalEntry[] }> {
    await mkdir(dirname(this.path), { recursive: true });
    const interrupted: JournalEntry[] = [];
    let text = '';
    try {
      text = await readFile(this.path, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
    for (const line of text.split('\n')) {
      if (!line.trim()) continue;
      try {
        const parsed = JournalEntrySchema.safeParse(JSON.parse(line));
        // A torn last line (a crash mid-write) is skipped: its write was never acknowledged.
        if (parsed.success) this.entries.set(key(parsed.data.operation_id, parsed.data.package), parsed.data);
      } catch {
        this.logger.warn({ path: this.path }, 'skipping an unreadable operations journal line');
      }
    }
    const at = new Date(this.now()).toISOString();
    for (const e of this.entries.values()) {
      if (e.state !== 'in_flight') continue;
      e.state = 'interrupted';
      e.finished_at = at;
      e.result = {
        package: e.package,
        success: false,
        reason: 'interrupted',
        error: `interrupted: the agent stopped while it ran ${e.action} (started ${e.started_at})`,
      };
      interrupted.push(e);
    }
    this.prune();
    await this.compact();
    return { interrupted };
  }

  async close(): Promise<void> {
    await this.flush();
    await this.fh?.close();
    this.fh = undefined;
  }

  get(operationId: string, pkg: string): JournalEntry | undefined {
    return this.entries.get(key(operationId, pkg));
  }

  /** Entries of an operation id (optionally only these packages). */
  list(operationId: string, packages?: readonly string[]): JournalEntry[] {
    const out: JournalEntry[] = [];
    for (const e of this.entries.values()) {
      if (e.operation_id === operationId && (!packages || packages.includes(e.package))) out.push(e);
    }
    return out;
  }

  /**
   * Runs `act` for (operation id, package) at most once. The intent is durable before `act`
   * starts and the result before this resolves. A known id answers from the journal (marked
   * `replayed`); one in flight here is awaited.
   */
  async run(
    operationId: string,
    pkg: string,
    action: string,
    act: () => Promise<PackageOpResult>,
  ): Promise<PackageOpResult> {
    const k = key(operationId, pkg);
    const inFlight = this.running.get(k);
    if (inFlight) return { ...(await inFlight), replayed: true };
    const known = this.entries.get(k);
    if (known) {
      if (known.action !== action) {
        return {
          package: pkg,
          success: false,
          reason: 'failed_on_agent',
          error: `operation_id_reused: operation '${operationId}' was a ${known.action} of '${pkg}', not a ${action}`,
        };
      }
      if (known.result) return { ...known.result, replayed: true };
    }
    const run = this.execute(k, operationId, pkg, action, act);
    this.running.set(k, run);
    try {
      return await run;
    } finally {
      this.running.delete(k);
    }
  }

  private async execute(
    k: string,
    operationId: string,
    pkg: string,
    action: string,
    act: () => Promise<PackageOpResult>,
  ): Promise<PackageOpResult> {
    const entry: JournalEntry = {
      operation_id: operationId,
      package: pkg,
      action,
      state: 'in_flight',
      started_at: new Date(this.now()).toISOString(),
    };
    this.entries.set(k, entry);
    // Not durable → not acted: a failed write answers a failure and leaves nothing behind.
    try {
      await this.append(entry);
    } catch (e) {
      this.entries.delete(k);
      return {
        package: pkg,
        success: false,
        reason: 'failed_on_agent',
        error: `journal_unavailable: cannot record the operation before acting: ${(e as Error).message}`,
      };
    }
    let result: PackageOpResult;
    try {
      result = await act();
    } catch (e) {
      result = { package: pkg, success: false, error: `internal: ${(e as Error).message}` };
    }
    result = { ...result, reason: result.reason ?? (result.success ? 'done' : 'failed_on_agent') };
    const done: JournalEntry = {
      ...entry,
      state: 'done' satisfies OperationState,
      finished_at: new Date(this.now()).toISOString(),
      result,
    };
    this.entries.set(k, done);
    try {
      await this.append(done);
    } catch (e) {
      // Acted, but the journal could not say so: a restart would report it interrupted, never run it again.
      this.logger.error(
        { err: e, operation_id: operationId, package: pkg },
        'cannot record an operation result',
      );
    }
    this.prune();
    if (this.lines > 4 * Math.max(this.entries.size, 100)) await this.compact().catch(() => undefined);
    return result;
  }

  /** Drops entries beyond the count and age bounds (never one in flight). */
  private prune(): void {
    const oldest = this.now() - this.maxAgeMs;
    for (const [k, e] of this.entries) {
      if (this.entries.size <= this.maxEntries && Date.parse(e.started_at) >= oldest) break;
      if (e.state !== 'in_flight') this.entries.delete(k);
    }
  }

  /** Rewrites the file with the live entries only (atomically), and reopens it for appending. */
  private async compact(): Promise<void> {
    await this.flush();
    await this.fh?.close();
    this.fh = undefined;
    const body = [...this.entries.values()].map((e) => JSON.stringify(e) + '\n').join('');
    await writeFileAtomic(this.path, body, 0o600);
    this.lines = this.entries.size;
  }

  /** Appends a line; resolves once it (and whatever was queued with it) is on disk. */
  private append(entry: JournalEntry): Promise<void> {
    this.queued.push(JSON.stringify(entry) + '\n');
    const done = new Promise<void>((resolve, reject) => this.waiters.push({ resolve, reject }));
    this.kick();
    return done;
  }

  private kick(): void {
    if (this.loop) return;
    this.loop = this.writeLoop().finally(() => {
      this.loop = undefined;
      if (this.queued.length > 0) this.kick();
    });
  }

  /** Group commit: whatever was queued meanwhile goes out in one write and one fsync. */
  private async writeLoop(): Promise<void> {
    while (this.queued.length > 0) {
      const lines = this.queued;
      const waiters = this.waiters;
      this.queued = [];
      this.waiters = [];
      try {
        this.fh ??= await open(this.path, 'a', 0o600);
        await this.fh.appendFile(lines.join(''));
        await this.fh.datasync();
        this.lines += lines.length;
        for (const w of waiters) w.resolve();
      } catch (e) {
        await this.fh?.close().catch(() => undefined);
        this.fh = undefined;
        for (const w of waiters) w.reject(e as Error);
      }
    }
  }

  private async flush(): Promise<void> {
    while (this.loop) await this.loop;
  }
}
