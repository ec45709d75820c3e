/**
 * One async job that never overlaps itself and coalesces requests: run() while a run is going
 * returns a single follow-up run shared by every caller meanwhile. The agent view's refresh, the
 * alert evaluation, the device status sync and the deployment queue's claim pass all work so.
 */
export class SerialTask<T> {
  #running: Promise<T> | undefined;
  #followUp: Promise<T> | undefined;

  constructor(private readonly fn: () => Promise<T>) {}

  /** Resolves (or rejects) with a run that started after this call. */
  run(): Promise<T> {
    if (!this.#running) return this.#start();
    this.#followUp ??= this.#running
      .catch(() => undefined)
      .then(() => {
        this.#followUp = undefined;
        return this.#start();
      });
    return this.#followUp;
  }

  get busy(): boolean {
    return this.#running !== undefined;
  }

  /** Resolves when nothing runs or is due to run (never rejects). */
  async idle(): Promise<void> {
    while (this.#running || this.#followUp) await Promise.allSettled([this.#running, this.#followUp]);
  }

  #start(): Promise<T> {
    const p = this.fn().finally(() => {
      if (this.#running === p) this.#running = undefined;
    });
    this.#running = p;
    return p;
  }
}
