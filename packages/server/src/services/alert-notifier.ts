/**
 * AlertNotifier: delivers `{event: 'firing'|'resolved', alert}` to the configured webhooks
 * (POST, JSON). notify() only queues — evaluation never waits for a webhook. Each delivery is
 * tried up to max_attempts times with a per-request timeout and exponential backoff; network
 * errors, timeouts, 408, 429 and 5xx are retried, other answers are final. Notifications of one
 * alert to one webhook go out in order (a `resolved` never overtakes its `firing`); different
 * alerts go out concurrently. The body is identical on every attempt, so is its signature
 * (`x-opsplane-signature: sha256=<hex HMAC-SHA256(secret, body)>`) and the delivery id
 * (`x-opsplane-delivery`, for receivers that de-duplicate).
 *
 * Outcomes are counted in opsplane_alert_notifications_total{result}: delivered, retried (an
 * attempt that failed and will be tried again), failed (gave up), dropped (queue full or
 * server stopping). Webhooks are logged by origin only: their paths often carry credentials.
 */
import { createHmac, randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { Counter } from 'prom-client';
import type { Alert, AlertKind, AlertStatus } from '@opsplane/api';
import type { SecretValue } from '../config.js';
import { sleep } from '@opsplane/kit';

export interface WebhookTarget {
  url: string;
  secret?: SecretValue | undefined;
  kinds?: readonly AlertKind[] | undefined;
}

export interface AlertNotifierOptions {
  webhooks: readonly WebhookTarget[];
  timeoutMs: number;
  maxAttempts: number;
  /** First retry delay; doubles per attempt up to maxBackoffMs. */
  backoffMs?: number;
  maxBackoffMs?: number;
  /** Deliveries queued or running at most; more are dropped (a dead receiver must not eat memory). */
  maxQueued?: number;
  counter?: Counter<'result'>;
  logger: Logger;
  userAgent?: string;
}

export type DeliveryResult = 'delivered' | 'retried' | 'failed' | 'dropped';

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

export class AlertNotifier {
  readonly #opts: AlertNotifierOptions;
  readonly #abort = new AbortController();
  readonly #inFlight = new Set<Promise<void>>();
  /** Tail of each (webhook, alert) chain, for ordering. */
  readonly #chains = new Map<string, Promise<void>>();
  #stopped = false;

  constructor(opts: AlertNotifierOptions) {
    this.#opts = opts;
  }

  get webhookCount(): number {
    return this.#opts.webhooks.length;
  }

  /** Queues the event for every webhook that wants this kind; returns at once. */
  notify(event: AlertStatus, alert: Alert): void {
    if (this.#stopped) return;
    const body = JSON.stringify({ event, alert });
    this.#opts.webhooks.forEach((hook, i) => {
      if (hook.kinds && !hook.kinds.includes(alert.kind)) return;
      if (this.#inFlight.size >= (this.#opts.maxQueued ?? 1000)) {
        this.#count('dropped');
        this.#opts.logger.warn(
          { webhook: originOf(hook.url), alert: alert.id, event },
          'alert notification dropped: too many deliveries pending',
        );
        return;
      }
      const key = `${i}:${alert.id}`;
      const prev = this.#chains.get(key) ?? Promise.resolve();
      const p = prev.then(() => this.#deliver(hook, event, alert, body));
      this.#chains.set(key, p);
      this.#inFlight.add(p);
      void p.finally(() => {
        this.#inFlight.delete(p);
        if (this.#chains.get(key) === p) this.#chains.delete(key);
      });
    });
  }

  /** Resolves when everything queued so far is delivered or given up (tests, shutdown). */
  async idle(): Promise<void> {
    while (this.#inFlight.size > 0) await Promise.allSettled([...this.#inFlight]);
  }

  /** Lets running deliveries finish for up to `graceMs`, then abandons the rest (counted dropped). */
  async stop(graceMs = 2000): Promise<void> {
    this.#stopped = true;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.idle(), new Promise<void>((r) => (timer = setTimeout(r, graceMs)))]);
    clearTimeout(timer);
    this.#abort.abort(new Error('server stopping'));
    await this.idle();
  }

  #count(result: DeliveryResult): void {
    this.#opts.counter?.inc({ result });
  }

  /** Never rejects: every outcome is counted and logged here. */
  async #deliver(hook: WebhookTarget, event: AlertStatus, alert: Alert, body: string): Promise<void> {
    const { maxAttempts, timeoutMs, logger } = this.#opts;
    const delivery = randomUUID();
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      'user-agent': this.#opts.userAgent ?? 'opsplane-server',
      'x-opsplane-event': event,
      'x-opsplane-delivery': delivery,
    };
    if (hook.secret) headers['x-opsplane-signature'] = signBody(hook.secret.reveal(), body);
    const log = logger.child({ webhook: originOf(hook.url), alert: alert.id, event, delivery });
    let backoff = this.#opts.backoffMs ?? 500;
    for (let attempt = 1; ; attempt++) {
      if (this.#abort.signal.aborted) return this.#count('dropped');
      let why: string;
      let retryable: boolean;
      try {
        const res = await fetch(hook.url, {
          method: 'POST',
          headers: { ...headers, 'x-opsplane-attempt': String(attempt) },
          body,
          // A redirect is an answer to look at, not to follow (it would resend to a third party).
          redirect: 'manual',
          signal: AbortSignal.any([this.#abort.signal, AbortSignal.timeout(timeoutMs)]),
        });
        await res.body?.cancel().catch(() => undefined);
        if (res.ok) {
          this.#count('delivered');
          log.debug({ attempt, status: res.status }, 'alert notification delivered');
          return;
        }
        why = `HTTP ${res.status}`;
        retryable = RETRYABLE_STATUS(res.status);
      } catch (e) {
        if (this.#abort.signal.aborted) return this.#count('dropped');
        const err = e as Error;
        why = err.name === 'TimeoutError' ? `no answer within ${timeoutMs} ms` : err.message;
        if (err.cause instanceof Error) why += ` (${err.cause.message})`;
        retryable = true;
      }
      if (!retryable || attempt >= maxAttempts) {
        this.#count('failed');
        log.warn({ attempt, reason: why }, 'alert notification failed; giving up');
        return;
      }
      this.#count('retried');
      log.info({ attempt, reason: why, retry_in_ms: backoff }, 'alert notification failed; will retry');
      await sleep(backoff, this.#abort.signal);
      backoff = Math.min(backoff * 2, this.#opts.maxBackoffMs ?? 30_000);
    }
  }
}
