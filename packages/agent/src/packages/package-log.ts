/**
 * A package's stdout/stderr file, `data_dir/logs/<pkg>.log`. The child writes to the file
 * descriptor directly (O_APPEND) — no pipe through the agent — so a package keeps logging while
 * the agent restarts. Size is capped by copy-truncate rotation (`.1`, `.2`, …), which works with
 * writers that keep the file open; a few lines written during the copy may be lost.
 */
import { closeSync, openSync } from 'node:fs';
import { appendFile, copyFile, mkdir, rename, rm, stat, truncate } from 'node:fs/promises';
import { dirname } from 'node:path';

export class PackageLog {
  constructor(
    readonly path: string,
    private readonly maxBytes: number,
    private readonly keep: number,
  ) {}

  /** Opens the log for a child's stdout+stderr; the caller closes the fd after spawning. */
  async openForChild(banner: string): Promise<number> {
    await mkdir(dirname(this.path), { recursive: true });
    await this.rotateIfNeeded();
    await appendFile(this.path, `--- opsplane-agent ${new Date().toISOString()} ${banner}\n`);
    return openSync(this.path, 'a');
  }

  static closeFd(fd: number): void {
    try {
      closeSync(fd);
    } catch {
      // already closed
    }
  }

  async rotateIfNeeded(): Promise<boolean> {
    const st = await stat(this.path).catch(() => undefined);
    if (!st || st.size < this.maxBytes) return false;
    if (this.keep === 0) {
      await truncate(this.path, 0);
      return true;
    }
    await rm(`${this.path}.${this.keep}`, { force: true });
    for (let i = this.keep - 1; i >= 1; i--) {
      await rename(`${this.path}.${i}`, `${this.path}.${i + 1}`).catch(() => undefined);
    }
    await copyFile(this.path, `${this.path}.1`);
    await truncate(this.path, 0);
    return true;
  }
}
