/**
 * The server's DeploymentReporter, one per running deployment: keeps the steps in the deployment
 * row and the log in deployment_logs, both announced to live listeners (through the sink).
 *
 * It also turns an operator's cancel — a flag in the row, set by whichever server took the
 * request — into an abort of the walk (`cancelled`), only where the walk may stop without
 * cutting a command short: after each step, and every 500 ms while the agent is awaited online.
 * close() stops that polling; call it when the walk ends.
 */
import type { DeploymentReporter, LogLevel, StepStatus } from '@opsplane/deploy';
import { DeploymentCancelledError } from '@opsplane/deploy';
import type { DeploymentRow, StoredStep } from '../storage/schema.js';

/** Where the recorder writes: persist and announce. */
export interface RecorderSink {
  appendLog(id: string, level: LogLevel, step: string | null, message: string): Promise<void>;
  saveSteps(id: string, steps: StoredStep[]): Promise<void>;
  isCancelRequested(id: string): Promise<boolean>;
}

const CANCEL_POLL_MS = 500;

export class DeploymentRecorder implements DeploymentReporter {
  #steps: StoredStep[];
  readonly #cancel = new AbortController();
  #poll: NodeJS.Timeout | undefined;
  #checking = false;

  constructor(
    private readonly sink: RecorderSink,
    private readonly row: DeploymentRow,
  ) {
    this.#steps = row.steps.map((s) => ({ ...s }));
  }

  /** Aborts (reason: DeploymentCancelledError) once an operator's cancel is seen. */
  get cancelled(): AbortSignal {
    return this.#cancel.signal;
  }

  /** Every step pending again: a resumed deployment runs them all. */
  async reset(): Promise<void> {
    this.#steps = this.#steps.map((s) => ({
      ...s,
      status: 'pending',
      startedAt: null,
      finishedAt: null,
      message: null,
    }));
    await this.sink.saveSteps(this.row.id, this.#steps);
  }

  #stepOf(name: string): StoredStep {
    let s = this.#steps.find((x) => x.name === name);
    if (!s) {
      s = { name, status: 'pending', startedAt: null, finishedAt: null, message: null };
      this.#steps.push(s);
    }
    return s;
  }

  async stepStarted(step: string): Promise<void> {
    const s = this.#stepOf(step);
    s.status = 'running';
    s.startedAt = new Date().toISOString();
    await this.sink.saveSteps(this.row.id, this.#steps);
    if (step === 'wait_online') {
      this.#poll = setInterval(() => void this.checkCancel(), CANCEL_POLL_MS);
    }
  }

  async stepFinished(step: string, status: StepStatus, message?: string): Promise<void> {
    this.#stopPolling();
    const s = this.#stepOf(step);
    s.status = status;
    s.finishedAt = new Date().toISOString();
    s.message = message ?? null;
    if (status === 'failed') {
      // What follows a failed step will not run.
      for (const other of this.#steps) if (other.status === 'pending') other.status = 'skipped';
    }
    await this.sink.saveSteps(this.row.id, this.#steps);
    await this.checkCancel();
  }

  log(level: LogLevel, message: string, step?: string): Promise<void> {
    return this.sink.appendLog(this.row.id, level, step ?? null, message);
  }

  /** Looks at the cancel flag once; aborts `cancelled` when it is set. A failed look is retried later. */
  async checkCancel(): Promise<void> {
    if (this.#cancel.signal.aborted || this.#checking) return;
    this.#checking = true;
    try {
      if (await this.sink.isCancelRequested(this.row.id)) {
        this.#stopPolling();
        this.#cancel.abort(new DeploymentCancelledError());
      }
    } catch {
      // The database is unreachable for a moment: the next look tries again.
    } finally {
      this.#checking = false;
    }
  }

  close(): void {
    this.#stopPolling();
  }

  #stopPolling(): void {
    clearInterval(this.#poll);
    this.#poll = undefined;
  }
}
