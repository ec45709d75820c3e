/**
 * data_dir/distribution/: the desired state the platform last gave (desired.json) and the
 * convergence record (status.json: the reported DistributionStatus plus what the converger
 * needs to resume — the version each package ran before a switch, for a rollback after a
 * restart). Both are replaced atomically, so a crash leaves the old or the new file.
 */
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import {
  DesiredStateSchema,
  DistributionStatusSchema,
  type DesiredState,
  type DistributionStatus,
} from '@opsplane/models';
import type { Logger } from '../log.js';
import { writeFileAtomic } from '../util/atomic-file.js';

const RecordSchema = z.object({
  status: DistributionStatusSchema,
  /** Per package: the version that ran before the switch in flight ('' = none). */
  previous: z.record(z.string(), z.string()).default({}),
  /** Per package: `<sha256>` of an artifact that failed its install at `revision` (not retried). */
  failed: z.record(z.string(), z.object({ sha256: z.string(), revision: z.number() })).default({}),
  /** Per package: the policy config_hash last written (a different one is a policy change, not drift). */
  applied_configs: z.record(z.string(), z.string()).default({}),
});
export type ConvergenceRecord = z.infer<typeof RecordSchema>;

export class DesiredStore {
  readonly dir: string;

  constructor(
    dataDir: string,
    private readonly logger: Logger,
  ) {
    this.dir = join(dataDir, 'distribution');
  }

  private async readJson(file: string): Promise<unknown> {
    try {
      return JSON.parse(await readFile(join(this.dir, file), 'utf8'));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT')
        this.logger.warn({ file, err: (e as Error).message }, 'unreadable distribution file; ignoring it');
      return undefined;
    }
  }

  async loadDesired(): Promise<DesiredState | undefined> {
    const raw = await this.readJson('desired.json');
    if (raw === undefined) return undefined;
    const p = DesiredStateSchema.safeParse(raw);
    return p.success ? p.data : undefined;
  }

  async loadRecord(): Promise<ConvergenceRecord | undefined> {
    const raw = await this.readJson('status.json');
    if (raw === undefined) return undefined;
    const p = RecordSchema.safeParse(raw);
    return p.success ? p.data : undefined;
  }

  async saveDesired(d: DesiredState): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    await writeFileAtomic(join(this.dir, 'desired.json'), JSON.stringify(d, null, 2) + '\n', 0o600);
  }

  async saveRecord(r: ConvergenceRecord): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    await writeFileAtomic(join(this.dir, 'status.json'), JSON.stringify(r, null, 2) + '\n', 0o600);
  }
}

export type { DistributionStatus };
