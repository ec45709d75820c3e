/**
 * Periodic health checking of one package while its process runs (Docker's semantics): during
 * `start_period` failed probes do not count (the service may still be coming up); after it,
 * `retries` consecutive failures make it `unhealthy`; one success makes it `healthy`. Also
 * answers "did the package come up healthy?" for config updates.
 */
import type { HealthStatus, ServiceHealth } from '@opsplane/models';
import type { Logger } from '../log.js';
import type { HealthCheckSpec } from '../packages/manifest.js';
import { formatDuration } from '@opsplane/kit';
import { runProbe, type ProbeContext, type ProbeResult } from './checks.js';

export type Verdict = { healthy: true; message: string } | { healthy: false; reason: string };

/** For `process` checks "healthy" means "still up after this long". */
const MIN_PROCESS_SETTLE_MS = 1000;
const FIRST_PROBE_MAX_DELAY_MS = 200;

export class HealthMonitor {
  private timer: NodeJS.Timeout | undefined;
  private inFlight = false;
  private generation = 0;
  private startedAt = 0;
  private active = false;
  private status: HealthStatus = 'unknown';
  private message = 'not checked yet';
  private checkedAt: string | undefined;
  private latencyMs: number | undefined;
  private consecutiveFailures = 0;
  /** Failures outside the start-period grace, toward `retries`. */
  private countedFailures = 0;
  private everHealthy = false;
  private readonly listeners = new Set<(r: ProbeResult) => void>();

  constructor(
    private readonly name: string,
    private spec: HealthCheckSpec,
    private ctx: ProbeContext,
    private readonly logger: Logger,
  ) {}

  get checkType(): HealthCheckSpec['type'] {
    return this.spec.type;
  }

  /** After a manifest reload. Takes effect at the next begin(). */
  reconfigure(spec: HealthCheckSpec, ctx: ProbeContext): void {
    this.spec = spec;
    this.ctx = ctx;
  }

  /** The process (re)started at `startedAt`: forget old results and start probing. */
  begin(startedAt: number): void {
    this.end();
    this.active = true;
    this.startedAt = startedAt;
    this.message = 'starting';
    this.schedule(Math.min(this.spec.intervalMs, FIRST_PROBE_MAX_DELAY_MS));
  }

  /** The process is gone: stop probing. */
  end(): void {
    this.generation++;
    this.active = false;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.status = 'unknown';
    this.message = 'not running';
    this.checkedAt = undefined;
    this.latencyMs = undefined;
    this.consecutiveFailures = 0;
    this.countedFailures = 0;
    this.everHealthy = false;
  }

  private schedule(ms: number): void {
    const gen = this.generation;
    this.timer = setTimeout(() => void this.probe(gen), ms);
  }

  private inStartPeriod(): boolean {
    return Date.now() - this.startedAt < this.spec.startPeriodMs;
  }

  private async probe(gen: number): Promise<void> {
    if (gen !== this.generation || !this.active) return;
    if (!this.inFlight) {
      this.inFlight = true;
      try {
        const r = await runProbe(this.spec, this.ctx);
        if (gen === this.generation) this.record(r);
      } catch (e) {
        this.logger.warn({ err: e }, 'health probe threw');
      } finally {
        this.inFlight = false;
      }
    }
    if (gen === this.generation && this.active) this.schedule(this.spec.intervalMs);
  }

  private record(r: ProbeResult): void {
    const before = this.status;
    this.checkedAt = new Date().toISOString();
    this.latencyMs = r.latencyMs;
    if (r.ok) {
      this.status = 'healthy';
      this.consecutiveFailures = 0;
      this.countedFailures = 0;
      this.everHealthy = true;
      this.message = r.message;
    } else {
      this.consecutiveFailures++;
      if (this.inStartPeriod() && !this.everHealthy) {
        this.message = `starting: ${r.message}`;
      } else {
        this.countedFailures++;
        if (this.countedFailures >= this.spec.retries) {
          this.status = 'unhealthy';
          this.message = r.message;
        } else {
          // Keep the previous status until `retries` failures in a row: one blip is not an outage.
          this.message = `failing (${this.countedFailures}/${this.spec.retries}): ${r.message}`;
        }
      }
    }
    if (before !== this.status) {
      this.logger[this.status === 'unhealthy' ? 'warn' : 'info'](
        { package: this.name, status: this.status, message: this.message },
        'package health changed',
      );
    }
    for (const l of this.listeners) l(r);
  }

  get healthStatus(): HealthStatus {
    return this.status;
  }

  get everPassed(): boolean {
    return this.everHealthy;
  }

  current(): ServiceHealth {
    return {
      name: this.name,
      status: this.status,
      message: this.message,
      check_type: this.spec.type,
      checked_at: this.checkedAt ?? new Date().toISOString(),
      ...(this.latencyMs !== undefined ? { latency_ms: this.latencyMs } : {}),
      consecutive_failures: this.consecutiveFailures,
    };
  }

  /** How long a config update should wait for a verdict, bounded. */
  verdictBudgetMs(cap = 120_000): number {
    const s = this.spec;
    return Math.min(cap, Math.max(3000, s.startPeriodMs + (s.retries + 2) * (s.intervalMs + s.timeoutMs)));
  }

  /**
   * Waits for the first verdict after begin(): healthy on the first passing probe (for
   * `process` checks: when the process is still up after max(start_period, 1s)); unhealthy once
   * the status turns unhealthy (`retries` failures after start_period), on exit, or when
   * `budgetMs` passes.
   */
  waitForVerdict(budgetMs: number, exited: Promise<unknown>): Promise<Verdict> {
    return new Promise<Verdict>((resolve) => {
      let done = false;
      const timers: NodeJS.Timeout[] = [];
      const finish = (v: Verdict) => {
        if (done) return;
        done = true;
        for (const t of timers) clearTimeout(t);
        this.listeners.delete(onResult);
        resolve(v);
      };
      const onResult = (r: ProbeResult) => {
        if (this.spec.type === 'process') return;
        if (r.ok) finish({ healthy: true, message: r.message });
        else if (this.status === 'unhealthy') finish({ healthy: false, reason: r.message });
      };
      void exited.then((info) => {
        const what =
          info && typeof info === 'object' && 'description' in info ? String(info.description) : 'exited';
        finish({ healthy: false, reason: `process ${what}` });
      });
      if (this.spec.type === 'process') {
        const settle = Math.max(this.spec.startPeriodMs, MIN_PROCESS_SETTLE_MS);
        const wait = Math.max(0, this.startedAt + settle - Date.now());
        timers.push(
          setTimeout(
            () => finish({ healthy: true, message: `process up for ${formatDuration(settle)}` }),
            wait,
          ),
        );
      } else if (this.status === 'healthy') {
        finish({ healthy: true, message: this.message });
        return;
      }
      this.listeners.add(onResult);
      timers.push(
        setTimeout(
          () =>
            finish({
              healthy: false,
              reason: `no passing health check within ${formatDuration(budgetMs)} (last: ${this.message})`,
            }),
          budgetMs,
        ),
      );
    });
  }
}
