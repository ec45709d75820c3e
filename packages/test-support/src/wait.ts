/** Polling helpers for tests that wait on real systems (sleep and waitFor are @opsplane/kit's). */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export { sleep, waitFor, WaitTimeoutError, type WaitOptions } from '@opsplane/kit';

/** A fresh temp directory; remove it with the returned cleanup. */
export async function tempDir(
  prefix = 'opsplane-test-',
): Promise<{ path: string; cleanup: () => Promise<void> }> {
  const path = await mkdtemp(join(tmpdir(), prefix));
  return { path, cleanup: () => rm(path, { recursive: true, force: true }) };
}
