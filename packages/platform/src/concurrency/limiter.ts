/**
 * ConcurrencyLimiter: at most `max` tasks run at once; the rest wait in FIFO order. The
 * TypeScript form of the guide's WorkerPool (§5.4), without its flaws: callers get each task's
 * result or error back, waiting tasks can be cancelled with an AbortSignal, and `map` never
 * creates a promise per item up front (it pulls items lazily with at most `max` workers).
 *
 * A task must not call `run` on the limiter it runs on and wait for the result: with every
 * slot taken by such tasks nothing could proceed.
 */

interface Waiter {
  start: () => void;
  cancel: (reason: unknown) => void;
}

function abortReason(signal: AbortSignal): unknown {
  return signal.reason ?? new DOMException('This operation was aborted', 'AbortError');
}

export class ConcurrencyLimiter {
  readonly max: number;
  private running = 0;
  private readonly queue: Waiter[] = [];
  private head = 0;

  constructor(max: number) {
    if (!Number.isInteger(max) || max < 1)
      throw new RangeError(`concurrency limit must be an integer >= 1, got ${max}`);
    this.max = max;
  }

  /** Tasks running now. */
  get active(): number {
    return this.running;
  }

  /** Tasks waiting for a slot. */
  get pending(): number {
    return this.queue.length - this.head;
  }

  /**
   * Runs `fn` when a slot is free and settles with its outcome. An abort while waiting removes
   * the task from the queue and rejects with the signal's reason; once started, `fn` owns the
   * signal (pass it on if it should stop).
   */
  async run<T>(fn: () => T | PromiseLike<T>, signal?: AbortSignal): Promise<T> {
    if (signal?.aborted) throw abortReason(signal);
    if (this.running >= this.max) await this.waitForSlot(signal);
    else this.running++;
    try {
      return await fn();
    } finally {
      this.release();
    }
  }

  /**
   * Applies `fn` to every item with this limiter's concurrency; results in input order. Rejects
   * with the first error, after which no further items are started (those already running
   * finish on their own).
   */
  async map<T, R>(
    items: Iterable<T>,
    fn: (item: T, index: number) => R | PromiseLike<R>,
    signal?: AbortSignal,
  ): Promise<R[]> {
    const results: R[] = [];
    let failed = false;
    await this.workers(items, signal, async (item, index) => {
      if (failed) return false;
      try {
        results[index] = await this.run(() => fn(item, index), signal);
        return true;
      } catch (err) {
        failed = true;
        throw err;
      }
    });
    return results;
  }

  /** Like `map`, but every item runs and each one's outcome is reported, in input order. */
  async mapSettled<T, R>(
    items: Iterable<T>,
    fn: (item: T, index: number) => R | PromiseLike<R>,
    signal?: AbortSignal,
  ): Promise<PromiseSettledResult<R>[]> {
    const results: PromiseSettledResult<R>[] = [];
    await this.workers(items, signal, async (item, index) => {
      try {
        results[index] = { status: 'fulfilled', value: await this.run(() => fn(item, index), signal) };
      } catch (reason) {
        if (signal?.aborted) throw reason;
        results[index] = { status: 'rejected', reason };
      }
      return true;
    });
    return results;
  }

  /**
   * Up to `max` workers share one iterator, so items are pulled only as slots free up. A
   * worker stops when `step` returns false or throws; the first throw rejects the whole.
   */
  private async workers<T>(
    items: Iterable<T>,
    signal: AbortSignal | undefined,
    step: (item: T, index: number) => Promise<boolean>,
  ): Promise<void> {
    const it = items[Symbol.iterator]();
    let next = 0;
    let done = false;
    const pull = (): { item: T; index: number } | undefined => {
      if (done) return undefined;
      const r = it.next();
      if (r.done) {
        done = true;
        return undefined;
      }
      return { item: r.value, index: next++ };
    };
    const worker = async () => {
      for (let job = pull(); job; job = pull()) {
        if (signal?.aborted) throw abortReason(signal);
        if (!(await step(job.item, job.index))) {
          done = true;
          return;
        }
      }
    };
    // At most `max` workers, and none more than there are items to start with.
    const workers: Promise<void>[] = [];
    for (let i = 0; i < this.max && !done; i++) {
      const job = pull();
      if (!job) break;
      workers.push(
        (async () => {
          if (signal?.aborted) throw abortReason(signal);
          if (!(await step(job.item, job.index))) {
            done = true;
            return;
          }
          await worker();
        })(),
      );
    }
    await Promise.all(workers);
  }

  private waitForSlot(signal?: AbortSignal): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const onAbort = () => waiter.cancel(abortReason(signal as AbortSignal));
      const waiter: Waiter = {
        start: () => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        },
        cancel: (reason) => {
          const i = this.queue.indexOf(waiter, this.head);
          if (i >= 0) this.queue.splice(i, 1);
          reject(reason);
        },
      };
      this.queue.push(waiter);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  private release(): void {
    if (this.head < this.queue.length) {
      const next = this.queue[this.head++] as Waiter;
      // Compact now and then so a long-lived limiter does not keep a growing array.
      if (this.head > 1024 && this.head * 2 > this.queue.length) {
        this.queue.splice(0, this.head);
        this.head = 0;
      }
      // The slot passes directly to the next waiter: `running` stays the same.
      next.start();
    } else {
      this.running--;
    }
  }
}
