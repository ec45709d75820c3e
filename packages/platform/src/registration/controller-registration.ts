/**
 * ControllerRegistration — how a controller announces itself in etcd (SYSTEM.md §1): the key
 * `<prefix><area>/<id>` bound to a lease (default TTL 10 s) that is kept alive, and a value that
 * is rewritten every refreshIntervalMs (≤ 10 s) with a new last_heartbeat and agent_count.
 * Owns: the lease and its keepalive loop, the refresh timer, the retry loop that registers
 * again — new lease, new put — whenever the lease is lost (expired during an etcd outage,
 * revoked, no keepalive acknowledged for a TTL), and the clean removal of the key on stop().
 *
 * The keepalive is our own (one LeaseKeepAlive exchange every TTL/3, as the Go client does)
 * rather than etcd3's autoKeepAlive: that one re-arms a TTL-long timer from late responses after
 * it is torn down (keeping a stopped process alive) and retries in a tight loop during outages.
 *
 * etcd being unreachable never throws out of the background loops: failures are logged and
 * reported as 'error' events (only when someone listens — an unheard 'error' would crash).
 */
import { backoffDelay } from '@opsplane/kit';
import { EventEmitter } from 'node:events';
import { performance } from 'node:perf_hooks';
import { ClientClosedError, EtcdLeaseInvalidError, type Etcd3, type Lease } from 'etcd3';
import {
  ControllerRegistrationSchema,
  DEFAULT_CONTROLLER_PREFIX,
  OpsplaneError,
  RequestTimeoutError,
  ValidationError,
  controllerKey,
  formatIssues,
  nowTimestamp,
  type ControllerRegistration as RegistrationValue,
} from '@opsplane/models';
import { createLogger, type Logger } from '@opsplane/kit';

export interface ControllerRegistrationOptions {
  /** Key prefix. Default 'controllers/'. */
  prefix?: string;
  area: string;
  id: string;
  /** Where the platform reaches this controller's HTTP API (host:port or URL). */
  address: string;
  version: string;
  metadata?: Record<string, unknown>;
  /** Lease TTL. Default 10 s. */
  ttlSeconds?: number;
  /** How often the value is rewritten. Default 5000 ms; at most 10 000 ms (the contract). */
  refreshIntervalMs?: number;
  /** Current number of connected agents, read at every write. */
  agentCount?: () => number;
  /** The controller's start time (RFC 3339). Default: when the registration was constructed. */
  startTime?: string;
  /** start() waits for the first successful registration. Default true. */
  waitForRegistration?: boolean;
  /** How long start() waits before rejecting (registration keeps retrying). Default 30 000 ms. */
  registrationTimeoutMs?: number;
  /** Deadline of each etcd request. Default 5000 ms. */
  requestTimeoutMs?: number;
  /** First retry delay after a failed registration. Default 200 ms. */
  initialBackoffMs?: number;
  /** Largest retry delay. Default 5000 ms. */
  maxBackoffMs?: number;
  logger?: Logger;
}

export interface RegisteredInfo {
  key: string;
  /** Lease id (decimal string, as etcd3 returns it). */
  leaseId: string;
  /** How many times this registration has registered (1 = first time). */
  generation: number;
}

export interface ControllerRegistrationEvents {
  registered: [info: RegisteredInfo];
  lost: [error: Error];
  error: [error: Error];
}

const MAX_REFRESH_INTERVAL_MS = 10_000;

export class ControllerRegistration extends EventEmitter<ControllerRegistrationEvents> {
  readonly key: string;
  private readonly base: Omit<RegistrationValue, 'last_heartbeat' | 'agent_count'>;
  private readonly ttlSeconds: number;
  private readonly refreshIntervalMs: number;
  private readonly agentCount: (() => number) | undefined;
  private readonly waitForRegistration: boolean;
  private readonly registrationTimeoutMs: number;
  private readonly requestTimeoutMs: number;
  private readonly initialBackoffMs: number;
  private readonly maxBackoffMs: number;
  private readonly log: Logger;

  private lease: Lease | undefined;
  private currentLeaseId: string | undefined;
  private lastAgentCount = 0;
  private registrations = 0;
  private failures = 0;
  private started = false;
  private stopped = false;
  private stopPromise: Promise<void> | undefined;
  private startPromise: Promise<void> | undefined;
  private startWaiter: { resolve: () => void; reject: (e: Error) => void } | undefined;
  private startTimer: NodeJS.Timeout | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private refreshTimer: NodeJS.Timeout | undefined;
  private keepaliveTimer: NodeJS.Timeout | undefined;
  private keepaliveInflight: Promise<void> | undefined;
  /** performance.now() of the last keepalive etcd acknowledged for the current lease. */
  private lastKeepaliveAt = 0;
  /** Leases given up while etcd was unreachable; revoked (best effort) once registered again. */
  private abandonedLeases: Lease[] = [];
  /** etcd writes of this key run one at a time, so that no refresh can land after stop's delete. */
  private chain: Promise<void> = Promise.resolve();

  constructor(
    private readonly etcd: Etcd3,
    opts: ControllerRegistrationOptions,
  ) {
    super();
    const prefix = opts.prefix ?? DEFAULT_CONTROLLER_PREFIX;
    this.ttlSeconds = opts.ttlSeconds ?? 10;
    this.refreshIntervalMs = opts.refreshIntervalMs ?? 5000;
    if (!Number.isInteger(this.ttlSeconds) || this.ttlSeconds < 1) {
      throw new ValidationError(`ttlSeconds must be a whole number of seconds >= 1, got ${this.ttlSeconds}`);
    }
    if (!(this.refreshIntervalMs > 0 && this.refreshIntervalMs <= MAX_REFRESH_INTERVAL_MS)) {
      throw new ValidationError(
        `refreshIntervalMs must be in (0, ${MAX_REFRESH_INTERVAL_MS}] (controllers rewrite their key at least every 10 s), got ${this.refreshIntervalMs}`,
      );
    }
    const sample = ControllerRegistrationSchema.safeParse({
      id: opts.id,
      address: opts.address,
      area: opts.area,
      start_time: opts.startTime ?? nowTimestamp(),
      version: opts.version,
      last_heartbeat: nowTimestamp(),
      agent_count: 0,
      metadata: opts.metadata ?? {},
    });
    if (!sample.success) {
      throw new ValidationError(`invalid controller registration: ${formatIssues(sample.error.issues)}`);
    }
    const { last_heartbeat: _hb, agent_count: _ac, ...base } = sample.data;
    this.base = base;
    this.key = controllerKey(prefix, opts.area, opts.id);
    this.agentCount = opts.agentCount;
    this.waitForRegistration = opts.waitForRegistration ?? true;
    this.registrationTimeoutMs = opts.registrationTimeoutMs ?? 30_000;
    this.requestTimeoutMs = opts.requestTimeoutMs ?? 5000;
    this.initialBackoffMs = opts.initialBackoffMs ?? 200;
    this.maxBackoffMs = opts.maxBackoffMs ?? 5000;
    this.log = opts.logger ?? createLogger('registration', { key: this.key });
  }

  /** True while the key is written under a live lease (as far as this process knows). */
  get registered(): boolean {
    return this.lease !== undefined && !this.stopped;
  }

  get leaseId(): string | undefined {
    return this.currentLeaseId;
  }

  /**
   * Registers (lease + put + keepalive + refresh loop). With waitForRegistration (default) it
   * resolves after the first successful registration and rejects with RequestTimeoutError after
   * registrationTimeoutMs — registration then keeps retrying in the background until stop().
   */
  start(): Promise<void> {
    if (this.stopped)
      return Promise.reject(new OpsplaneError('conflict', 'controller registration was stopped'));
    if (this.startPromise) return this.startPromise;
    this.started = true;
    if (this.waitForRegistration) {
      this.startPromise = new Promise<void>((resolve, reject) => {
        this.startWaiter = { resolve, reject };
      });
      if (this.registrationTimeoutMs > 0) {
        this.startTimer = setTimeout(() => {
          this.startTimer = undefined;
          this.settleStart(
            new RequestTimeoutError(`controller registration of ${this.key}`, this.registrationTimeoutMs),
          );
        }, this.registrationTimeoutMs);
      }
    } else {
      this.startPromise = Promise.resolve();
    }
    this.scheduleRegister(0);
    return this.startPromise;
  }

  /** Writes the value now (registers first if the lease is gone). Rejects if etcd refuses. */
  refresh(): Promise<void> {
    if (!this.started || this.stopped) {
      return Promise.reject(new OpsplaneError('conflict', 'controller registration is not running'));
    }
    return this.enqueue(async () => {
      if (this.stopped) return;
      if (!this.lease) {
        clearTimeout(this.retryTimer);
        this.retryTimer = undefined;
        try {
          await this.registerOnce();
        } catch (e) {
          this.scheduleRegister(this.backoff());
          throw e;
        }
        return;
      }
      await this.writeValue(true);
    });
  }

  /** Deletes the key, revokes the lease and clears every timer. Idempotent. */
  stop(): Promise<void> {
    this.stopPromise ??= this.doStop();
    return this.stopPromise;
  }

  private async doStop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    clearTimeout(this.refreshTimer);
    clearTimeout(this.keepaliveTimer);
    clearTimeout(this.startTimer);
    this.retryTimer = this.refreshTimer = this.keepaliveTimer = this.startTimer = undefined;
    this.settleStart(
      new OpsplaneError('conflict', 'controller registration was stopped before it registered'),
    );
    await this.chain;
    if (this.keepaliveInflight) await this.keepaliveInflight;
    await Promise.allSettled(
      this.abandonedLeases.splice(0).map((l) => l.revoke({ deadline: this.deadline() })),
    );
    const lease = this.lease;
    const leaseId = this.currentLeaseId;
    this.lease = undefined;
    if (!lease || leaseId === undefined) return;
    try {
      // Only our own key: if another process took it over (other lease), it is not ours to delete.
      await this.etcd
        .if(this.key, 'Lease', '==', leaseId)
        .then(this.etcd.delete().key(this.key))
        .options({ deadline: this.deadline() })
        .commit();
    } catch (e) {
      this.log.warn(
        { err: (e as Error).message },
        'could not delete the registration key; it expires with its lease',
      );
    }
    try {
      await lease.revoke({ deadline: this.deadline() });
    } catch (e) {
      lease.release();
      this.log.warn(
        { err: (e as Error).message },
        'could not revoke the registration lease; it expires by itself',
      );
    }
    this.log.info({ key: this.key }, 'controller deregistered');
  }

  // ---------------------------------------------------------------- internals

  private enqueue(fn: () => Promise<void>): Promise<void> {
    const p = this.chain.then(fn);
    this.chain = p.catch(() => undefined);
    return p;
  }

  private deadline(): number {
    return Date.now() + this.requestTimeoutMs;
  }

  private backoff(): number {
    this.failures++;
    return backoffDelay(this.failures, this.initialBackoffMs, this.maxBackoffMs);
  }

  private scheduleRegister(delayMs: number): void {
    if (this.stopped) return;
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      void this.enqueue(async () => {
        if (this.stopped || this.lease) return;
        try {
          await this.registerOnce();
        } catch (e) {
          if (e instanceof ClientClosedError) return this.onClientClosed();
          this.reportError(e, 'registration failed; retrying');
          this.scheduleRegister(this.backoff());
        }
      });
    }, delayMs);
  }

  /** Grants a lease and writes the key under it; on success the lease becomes current. */
  private async registerOnce(): Promise<void> {
    const lease = this.etcd.lease(this.ttlSeconds, { autoKeepAlive: false, deadline: this.deadline() });
    // Attached before anything can fire: a loss during registration just fails this attempt.
    lease.on('lost', (err: Error) => this.onLeaseLost(lease, err));
    let leaseId: string;
    try {
      leaseId = String(await lease.grant());
      await this.etcd
        .put(this.key)
        .value(this.value())
        .lease(leaseId)
        .options({ deadline: this.deadline() })
        .exec();
      if (lease.revoked()) throw new EtcdLeaseInvalidError(leaseId);
    } catch (e) {
      void lease.revoke({ deadline: this.deadline() }).catch(() => undefined);
      throw e;
    }
    if (this.stopped) {
      // stop() ran while we were registering: undo (revoking the lease deletes the key bound to it).
      await lease.revoke({ deadline: this.deadline() }).catch(() => undefined);
      return;
    }
    this.lease = lease;
    this.currentLeaseId = leaseId;
    this.lastKeepaliveAt = performance.now();
    this.failures = 0;
    this.registrations++;
    // The key now hangs on the new lease, so revoking old ones (if etcd still has them) is safe.
    for (const l of this.abandonedLeases.splice(0))
      void l.revoke({ deadline: this.deadline() }).catch(() => undefined);
    this.scheduleKeepalive();
    this.scheduleRefresh();
    const info: RegisteredInfo = { key: this.key, leaseId, generation: this.registrations };
    this.log.info(info, 'controller registered');
    this.settleStart();
    this.emitSafe('registered', info);
  }

  private onLeaseLost(lease: Lease, err: Error): void {
    if (lease !== this.lease || this.stopped) return;
    this.lease = undefined;
    lease.release();
    this.abandonedLeases.push(lease);
    clearTimeout(this.refreshTimer);
    clearTimeout(this.keepaliveTimer);
    this.refreshTimer = this.keepaliveTimer = undefined;
    this.log.warn(
      { err: err?.message, leaseId: this.currentLeaseId },
      'registration lease lost; registering again',
    );
    this.emitSafe('lost', err);
    this.scheduleRegister(0);
  }

  private scheduleKeepalive(delayMs = (this.ttlSeconds * 1000) / 3): void {
    clearTimeout(this.keepaliveTimer);
    if (this.stopped) return;
    this.keepaliveTimer = setTimeout(() => {
      this.keepaliveTimer = undefined;
      const p = this.keepaliveOnce();
      this.keepaliveInflight = p;
      void p.finally(() => {
        if (this.keepaliveInflight === p) this.keepaliveInflight = undefined;
      });
    }, delayMs);
  }

  /** One keepalive exchange; decides whether the lease is still ours. */
  private async keepaliveOnce(): Promise<void> {
    const lease = this.lease;
    if (!lease || this.stopped) return;
    const ttlMs = this.ttlSeconds * 1000;
    try {
      await lease.keepaliveOnce({ deadline: Date.now() + Math.min(this.requestTimeoutMs, ttlMs) });
      if (lease === this.lease) this.lastKeepaliveAt = performance.now();
    } catch (e) {
      if (lease !== this.lease || this.stopped) return;
      if (e instanceof ClientClosedError) return this.onClientClosed();
      if (e instanceof EtcdLeaseInvalidError) {
        // etcd answered: the lease has expired or was revoked.
        this.onLeaseLost(lease, e);
        return;
      }
      const silentFor = performance.now() - this.lastKeepaliveAt;
      if (silentFor > ttlMs) {
        // Not acknowledged for a whole TTL: etcd has (or will have) dropped the lease and the key.
        this.onLeaseLost(
          lease,
          new OpsplaneError(
            'upstream_error',
            `no keepalive acknowledged for ${Math.round(silentFor)} ms (TTL ${ttlMs} ms)`,
            {
              cause: e,
            },
          ),
        );
        return;
      }
      this.reportError(e, 'lease keepalive failed; retrying');
      // Retry sooner than the regular interval: the lease is running out.
      if (lease === this.lease) this.scheduleKeepalive(Math.min(500, (this.ttlSeconds * 1000) / 3));
      return;
    }
    if (lease === this.lease) this.scheduleKeepalive();
  }

  private scheduleRefresh(): void {
    clearTimeout(this.refreshTimer);
    if (this.stopped) return;
    this.refreshTimer = setTimeout(() => {
      this.refreshTimer = undefined;
      void this.enqueue(() => this.writeValue(false)).finally(() => {
        if (this.lease && !this.refreshTimer) this.scheduleRefresh();
      });
    }, this.refreshIntervalMs);
  }

  /** Rewrites the value under the current lease. */
  private async writeValue(throwErrors: boolean): Promise<void> {
    const lease = this.lease;
    const leaseId = this.currentLeaseId;
    if (this.stopped || !lease || leaseId === undefined) return;
    try {
      await this.etcd
        .put(this.key)
        .value(this.value())
        .lease(leaseId)
        .options({ deadline: this.deadline() })
        .exec();
    } catch (e) {
      if (e instanceof ClientClosedError) {
        this.onClientClosed();
      } else if (e instanceof EtcdLeaseInvalidError) {
        this.onLeaseLost(lease, e);
      } else {
        this.reportError(e, 'heartbeat write failed; will retry');
      }
      if (throwErrors) throw e;
    }
  }

  private value(): string {
    if (this.agentCount) {
      try {
        const n = this.agentCount();
        if (Number.isInteger(n) && n >= 0) this.lastAgentCount = n;
      } catch (e) {
        this.log.warn({ err: (e as Error).message }, 'agentCount() threw; keeping the last count');
      }
    }
    const v: RegistrationValue = {
      ...this.base,
      last_heartbeat: nowTimestamp(),
      agent_count: this.lastAgentCount,
    };
    return JSON.stringify(v);
  }

  /** Retrying on a closed client cannot help (and would keep the process alive forever). */
  private onClientClosed(): void {
    if (this.stopped) return;
    this.log.error('the etcd client was closed; stopping registration');
    this.settleStart(new OpsplaneError('conflict', 'the etcd client was closed'));
    void this.stop();
  }

  private settleStart(err?: Error): void {
    const w = this.startWaiter;
    if (!w) return;
    this.startWaiter = undefined;
    clearTimeout(this.startTimer);
    this.startTimer = undefined;
    if (err) w.reject(err);
    else w.resolve();
  }

  private emitSafe<K extends 'registered' | 'lost'>(
    event: K,
    ...args: ControllerRegistrationEvents[K]
  ): void {
    for (const l of this.rawListeners(event)) {
      try {
        (l as (...a: unknown[]) => unknown).apply(this, args);
      } catch (err) {
        this.log.error({ err, event }, 'registration listener threw');
      }
    }
  }

  private reportError(e: unknown, what: string): void {
    const err =
      e instanceof Error
        ? new OpsplaneError(
            'upstream_error',
            `controller registration of ${this.key}: ${what}: ${e.message}`,
            { cause: e },
          )
        : new OpsplaneError(
            'upstream_error',
            `controller registration of ${this.key}: ${what}: ${String(e)}`,
          );
    this.log.warn({ err: err.message }, what);
    if (this.listenerCount('error') > 0) {
      for (const l of this.rawListeners('error')) {
        try {
          (l as (e: Error) => unknown).call(this, err);
        } catch (le) {
          this.log.error({ err: le }, 'registration error listener threw');
        }
      }
    }
  }
}
