/** Atomic writes of key and certificate files, and the reading of PEM values that may be inline. */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { chmod, open, rename, rm } from 'node:fs/promises';

/** Writes through a temp file in the same dir (created with `mode`), fsynced, then renamed over. */
export async function writeFileAtomic(path: string, text: string, mode = 0o600): Promise<void> {
  const tmp = `${path}.${randomBytes(4).toString('hex')}.tmp`;
  const fh = await open(tmp, 'wx', mode);
  try {
    await fh.writeFile(text);
    await fh.sync();
  } finally {
    await fh.close();
  }
  try {
    await chmod(tmp, mode);
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
}

/** A PEM value given inline (it contains `-----BEGIN`) or as a file path. */
export function readPemSync(value: string): string {
  return value.includes('-----BEGIN') ? value : readFileSync(value, 'utf8');
}
