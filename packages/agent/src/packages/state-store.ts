/**
 * data_dir/state.json: what must survive an agent restart — per package the operator's desired
 * state and the identity (pid + /proc start time) of the process we left running. Written
 * atomically; writes are coalesced so a burst of changes costs one or two writes.
 */
import { mkdir, readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Logger } from '../log.js';
import { z } from 'zod';
import { writeFileAtomic } from '../util/atomic-file.js';

export const PackageStateRecordSchema = z.object({
  desired: z.enum(['running', 'stopped']),
  pid: z.number().int().positive().optional(),
  start_time: z.string().optional(),
  started_at: z.string().optional(),
  /**
   * Written durably before the process is spawned and passed to it as OPSPLANE_SPAWN_ID: a
   * package started just before an agent crash is found by it and adopted, never started twice.
   */
  spawn_id: z.string().optional(),
});
export type PackageStateRecord = z.infer<typeof PackageStateRecordSchema>;

const StateFileSchema = z.object({
  version: z.literal(1),
  packages: z.record(z.string(), PackageStateRecordSchema),
});

export class StateStore {
  private writing: Promise<void> | undefined;
  private dirty = false;

  constructor(
    readonly path: string,
    private readonly snapshot: () => Record<string, PackageStateRecord>,
    private readonly logger: Logger,
  ) {}

  /** The recorded state; empty when there is none or it is unreadable (logged). */
  async load(): Promise<Record<string, PackageStateRecord>> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT')
        this.logger.warn({ err: e }, 'cannot read state file');
      return {};
    }
    try {
      const parsed = StateFileSchema.safeParse(JSON.parse(text));
      if (parsed.success) return parsed.data.packages;
      this.logger.warn({ path: this.path }, 'state file has an unexpected shape; ignoring it');
    } catch (e) {
      this.logger.warn({ err: e, path: this.path }, 'state file is not JSON; ignoring it');
    }
    return {};
  }

  /** Schedules a write of the current snapshot; resolves when a write covering it has finished. */
  save(): Promise<void> {
    if (this.writing) {
      // The running loop re-checks `dirty` after its current write, so it covers this change.
      this.dirty = true;
      return this.writing;
    }
    this.writing = this.writeLoop().finally(() => {
      this.writing = undefined;
    });
    return this.writing;
  }

  private async writeLoop(): Promise<void> {
    do {
      this.dirty = false;
      const body = JSON.stringify({ version: 1, packages: this.snapshot() }, null, 2) + '\n';
      try {
        await mkdir(dirname(this.path), { recursive: true });
        await writeFileAtomic(this.path, body, 0o600);
      } catch (e) {
        this.logger.error({ err: e, path: this.path }, 'cannot write state file');
      }
    } while (this.dirty);
  }
}
