/**
 * WebhookOutbox: alert notifications, delivered at least once. enqueue() writes one outbox row
 * per webhook that wants the alert's kind, in the same transaction as the alert change it
 * reports — so a crash never loses one. The leader's delivery loop (start/stop follow the
 * cluster leadership) POSTs due rows oldest first, in order per (alert, webhook), retrying
 * network errors, timeouts, 408, 429 and 5xx with exponential backoff up to max_attempts.
 *
 * Every attempt of a notification carries the same body, signature
 * (`x-opsplane-signature: sha256=<hex HMAC-SHA256(secret, body)>`) and key — `Idempotency-Key`
 * and `x-opsplane-delivery`, `alert:<id>:<event>` — so a receiver can drop the repeat that
 * at-least-once implies (a leader that died after sending, before recording it).
 *
 * Outcomes are counted in opsplane_alert_notifications_total{result}: delivered, retried (an
 * attempt that failed and will be tried again), failed (gave up). Webhooks are logged by origin
 * only: their paths often carry credentials.
 */
import { createHmac } from 'node:crypto';
import type { Counter } from 'prom-client';
import type { Alert, AlertKind, AlertStatus } from '@opsplane/api';
import { sleep, type Logger } from '@opsplane/kit';
import type { SecretValue } from '../config.js';
import type { OutboxRow } from '../storage/schema.js';
import type { Store } from '../storage/store.js';

export interface WebhookTarget {
  url: string;
  secret?: SecretValue | undefined;
  kinds?: readonly AlertKind[] | undefined;
}

export interface WebhookOutboxOptions {
  store: Store;
  webhooks: readonly WebhookTarget[];
  timeoutMs: number;
  maxAttempts: number;
  /** First retry delay; doubles per attempt up to maxBackoffMs. */
  backoffMs?: number;
  maxBackoffMs?: number;
  /** How often due rows are looked for (they are also kicked after an enqueue). */
  pollMs?: number;
  counter?: Counter<'result'>;
  logger: Logger;
  userAgent?: string;
}

/** `sha256=<hex>` of the body under the webhook's secret, as sent in x-opsplane-signature. */
export function signBody(secret: string, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
}

const originOf = (url: string): string => {
  try {
    return new URL(url).origin;
  } catch {
    return '<bad url>';
  }
};

const RETRYABLE_STATUS = (s: number) => s >= 500 || s === 408 || s === 429;

export class WebhookOutbox {
  private running = false;
  private loop: Promise<void> | undefined;
  private wake: (() => void) | undefined;
  private abort = new AbortController();

  constructor(private readonly o: WebhookOutboxOptions) {}

  get webhookCount(): number {
    return this.o.webhooks.length;
  }

  /** Queues the event for every webhook that wants this kind, in the caller's transaction. */
  async enqueue(tx: Store, event: AlertStatus, alert: Alert): Promise<void> {
    const key = `alert:${alert.id}:${event}`;
    const items = this.o.webhooks.flatMap((hook, target) =>
      hook.kinds && !hook.kinds.includes(alert.kind)
        ? []
        : [{ key, target, event, payload: { event, alert } }],
    );
    await tx.outbox.enqueue(items);
  }

  /** Delivers due notifications until stop() (the leader runs this). */
  start(): void {
    if (this.running || this.o.webhooks.length === 0) return;
    this.running = true;
    this.abort = new AbortController();
    this.loop = this.run();
  }

  kick(): void {
    this.wake?.();
  }

  /** Stops delivering; an attempt in flight is abandoned (its row stays due, for the next leader). */
  async stop(): Promise<void> {
    this.running = false;
    this.abort.abort(new Error('no longer delivering'));
    this.wake?.();
    await this.loop;
  }

  /** Resolves once nothing is due now (tests). */
  async idle(): Promise<void> {
    for (;;) {
      const due = await this.o.store.outbox.due(1);
      if (due.length === 0 || !this.running) return;
      await sleep(50);
    }
  }

  private count(result: 'delivered' | 'retried' | 'failed'): void {
    this.o.counter?.inc({ result });
  }

  private async run(): Promise<void> {
    while (this.running) {
      try {
        const due = await this.o.store.outbox.due(50);
        await Promise.all(due.map((row) => this.deliver(row)));
        if (due.length > 0) continue;
      } catch (err) {
        if (this.running)
          this.o.logger.warn(
            { err: (err as Error).message },
            'webhook outbox: cannot read due notifications',
          );
      }
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, this.o.pollMs ?? 1000);
        this.wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
      this.wake = undefined;
    }
  }

  /** One attempt; its outcome is recorded on the row (never throws). */
  private async deliver(row: OutboxRow): Promise<void> {
    const hook = this.o.webhooks[row.target];
    const log = this.o.logger.child({ webhook: hook ? originOf(hook.url) : row.target, key: row.key });
    if (!hook) {
      await this.o.store.outbox
        .attemptFailed(row.id, 'no such webhook any more (configuration changed)', undefined)
        .catch(() => undefined);
      return;
    }
    const body = JSON.stringify(row.payload);
    const attempt = row.attempts + 1;
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      'user-agent': this.o.userAgent ?? 'opsplane-server',
      'x-opsplane-event': row.event,
      'x-opsplane-delivery': row.key,
      'idempotency-key': row.key,
      'x-opsplane-attempt': String(attempt),
    };
    if (hook.secret) headers['x-opsplane-signature'] = signBody(hook.secret.reveal(), body);
    let why: string;
    let retryable: boolean;
    try {
      const res = await fetch(hook.url, {
        method: 'POST',
        headers,
        body,
        // A redirect is an answer to look at, not to follow (it would resend to a third party).
        redirect: 'manual',
        signal: AbortSignal.any([this.abort.signal, AbortSignal.timeout(this.o.timeoutMs)]),
      });
      await res.body?.cancel().catch(() => undefined);
      if (res.ok) {
        await this.o.store.outbox.delivered(row.id);
        this.count('delivered');
        log.debug({ attempt, status: res.status }, 'alert notification delivered');
        return;
      }
      why = `HTTP ${res.status}`;
      retryable = RETRYABLE_STATUS(res.status);
    } catch (e) {
      if (this.abort.signal.aborted) return;
      const err = e as Error;
      why = err.name === 'TimeoutError' ? `no answer within ${this.o.timeoutMs} ms` : err.message;
      if (err.cause instanceof Error) why += ` (${err.cause.message})`;
      retryable = true;
    }
    const giveUp = !retryable || attempt >= this.o.maxAttempts;
    const backoff = Math.min((this.o.backoffMs ?? 500) * 2 ** (attempt - 1), this.o.maxBackoffMs ?? 30_000);
    await this.o.store.outbox
      .attemptFailed(row.id, why, giveUp ? undefined : backoff)
      .catch((err: unknown) =>
        log.warn({ err: (err as Error).message }, 'webhook outbox: cannot record an attempt'),
      );
    if (giveUp) {
      this.count('failed');
      log.warn({ attempt, reason: why }, 'alert notification failed; giving up');
    } else {
      this.count('retried');
      log.info({ attempt, reason: why, retry_in_ms: backoff }, 'alert notification failed; will retry');
    }
  }
}
