/**
 * Waiting: an abortable sleep that leaves no listener on the signal behind, and a polling
 * `waitFor` whose timeout says what it saw last.
 */

/** Resolves after `ms`, or at once when `signal` aborts (never rejects). */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise<void>((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const t = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}

/** Thrown by waitFor when the condition did not hold in time. */
export class WaitTimeoutError extends Error {
  override name = 'WaitTimeoutError';
}

export interface WaitOptions {
  /** Default 10 s. */
  timeoutMs?: number;
  /** Pause between probes. Default 50 ms. */
  intervalMs?: number;
  /** What is awaited, for the timeout message. */
  what?: string;
  /** Aborting ends the wait at once with the signal's reason. */
  signal?: AbortSignal;
  /**
   * Called before every probe; what it throws ends the wait at once (e.g. "the process being
   * waited for exited"). Errors thrown by the probe itself only count as "not yet".
   */
  check?: () => void | Promise<void>;
}

/**
 * Polls `fn` until it returns a truthy value (returned) or `timeoutMs` passes (throws a
 * WaitTimeoutError naming the last value or error, so failures say what was seen).
 */
export async function waitFor<T>(
  fn: () => T | Promise<T>,
  { timeoutMs = 10_000, intervalMs = 50, what = 'condition', signal, check }: WaitOptions = {},
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    if (signal?.aborted) throw signal.reason ?? new Error('aborted');
    await check?.();
    try {
      const v = await fn();
      if (v) return v as NonNullable<T>;
      last = v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) {
      const detail = last instanceof Error ? last.message : JSON.stringify(last);
      throw new WaitTimeoutError(`timed out after ${timeoutMs} ms waiting for ${what} (last: ${detail})`);
    }
    await sleep(intervalMs, signal);
  }
}
