/**
 * ControllerDiscovery — the platform's view of the controllers registered in etcd under
 * `<prefix><area>/<id>` (SYSTEM.md §1, §3). Owns: the in-memory map of controllers, one etcd
 * watch on the prefix, the resync loop that rebuilds the map after compaction or any watch
 * failure, the status timer that flips controllers offline when their heartbeat goes stale,
 * and delivery of update/delete callbacks.
 *
 * Two kinds of registration are controllers (models' readControllerValue): Opsplane's, whose
 * status comes from its heartbeat (fresh within staleAfterMs by its clock or ours), and the Go
 * system's (`function_area`, a 60 s lease re-put every 30 s, perhaps no `last_heartbeat`), whose
 * status comes from its lease: a key bound to a lease exists only while the lease lives (etcd
 * deletes it when the lease expires), so such a key is online for as long as it is there — no
 * heartbeat threshold to flap against Go's timing. A Go value put without a lease falls back to
 * its heartbeat (goStaleAfterMs, Go's own 90 s) or, with none, counts as online while present.
 * A Go value without `last_heartbeat` gets the time this process last saw it written.
 *
 * Invariants (where the Go version was wrong):
 * - the map always reflects one etcd revision: the snapshot is a range at revision R and the
 *   watch starts at R+1, so no event is missed or applied twice;
 * - the etcd3 Watcher's own reconnect/resume is never trusted (it resumes from the header
 *   revision of the last response, which etcd may send ahead of undelivered events): on any
 *   disconnect, cancel or error the watcher is dropped and the map is rebuilt by RESYNC — a
 *   fresh range, a diff against the map (callbacks only for real differences), a new watch;
 * - callbacks run after the map is updated (collect, then call), once per real change, never
 *   for an unchanged value; a throwing listener is logged and does not affect discovery.
 */
import { backoffDelay } from '@opsplane/kit';
import { EventEmitter } from 'node:events';
import { performance } from 'node:perf_hooks';
import { ClientClosedError, type Etcd3, type IKeyValue, type IWatchResponse, type Watcher } from 'etcd3';
import {
  ControllerUnavailableError,
  DEFAULT_CONTROLLER_PREFIX,
  OpsplaneError,
  RequestTimeoutError,
  parseControllerKey,
  readControllerValue,
  timestampMs,
  type Controller,
  type ControllerFlavor,
  type ControllerRegistration,
  type ControllerStatus,
} from '@opsplane/models';
import { createLogger, type Logger } from '@opsplane/kit';

export interface ControllerDiscoveryOptions {
  /** A controller is online while its heartbeat is at most this old. Default 30 000 ms. */
  staleAfterMs?: number;
  /**
   * The same for a Go registration put without a lease (a leased one is online while its key
   * exists). Default 90 000 ms, the Go discovery's own threshold (Go re-puts every 30 s).
   */
  goStaleAfterMs?: number;
  /** How often statuses are re-evaluated. Default staleAfterMs/10, clamped to [100, 5000] ms. */
  statusCheckIntervalMs?: number;
  /** Deadline of each snapshot range request. Default 5000 ms. */
  requestTimeoutMs?: number;
  /** First retry delay after a failed resync. Default 100 ms. */
  initialBackoffMs?: number;
  /** Largest retry delay between failed resyncs. Default 5000 ms. */
  maxBackoffMs?: number;
  /** start() rejects (and discovery stops) if not synced within this. 0 = wait forever. Default 30 000 ms. */
  startTimeoutMs?: number;
  logger?: Logger;
  /**
   * Test hook: runs after each snapshot range (with its revision) and before the snapshot is
   * applied and the watch is created. Lets tests change etcd inside the snapshot→watch window.
   * @internal
   */
  afterSnapshot?: (revision: bigint) => void | Promise<void>;
}

export type ResyncReason = 'initial' | 'disconnected' | 'canceled' | 'manual';

export interface ResyncInfo {
  reason: ResyncReason;
  /** The etcd revision the map now reflects. */
  revision: string;
  /** update callbacks the resync produced (new or changed controllers). */
  updated: number;
  /** delete callbacks the resync produced. */
  deleted: number;
  /** Failed attempts before this one succeeded. */
  failedAttempts: number;
  durationMs: number;
}

export interface ControllerDiscoveryStats {
  revision: string;
  controllers: number;
  resyncs: number;
  watchEvents: number;
  running: boolean;
}

export interface ControllerDiscoveryEvents {
  update: [controller: Controller];
  delete: [key: string];
  resync: [info: ResyncInfo];
  error: [error: Error];
}

interface Entry {
  /** The controller as handed out (with status); replaced, never mutated. */
  controller: Controller;
  /** Stable JSON of the parsed registration: equal values ⇔ equal strings. */
  canonical: string;
  modRevision: bigint;
  heartbeatMs: number;
  /** performance.now() when this process last saw a put of the key (lower bound after a resync). */
  observedPutAt: number | undefined;
  flavor: ControllerFlavor;
  /** The key's lease id as etcd reports it ('0': none). */
  lease: string;
  /** Whether the value carries its own last_heartbeat (else discovery fills it in). */
  ownHeartbeat: boolean;
}

type Emission = { type: 'update'; controller: Controller } | { type: 'delete'; key: string };

type Parsed =
  | { ok: true; rel: string; reg: ControllerRegistration; flavor: ControllerFlavor; ownHeartbeat: boolean }
  | { ok: false; rel: string | undefined; reason: string };

/** How a key was seen: its revision, lease, and when this process saw it written. */
interface Seen {
  modRevision: bigint;
  lease: string;
  observedPutAt: number | undefined;
  /** Wall clock of that observation, for a Go value without its own heartbeat. */
  observedWallMs: number;
}

const mono = () => performance.now();

/** JSON with object keys sorted, so that two equal values always serialize the same. */
function stableStringify(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(stableStringify).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    return `{${Object.keys(o)
      .filter((k) => o[k] !== undefined)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${stableStringify(o[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v) ?? 'null';
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<undefined>((resolve) => {
      timer = setTimeout(() => resolve(undefined), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

export class ControllerDiscovery extends EventEmitter<ControllerDiscoveryEvents> {
  readonly prefix: string;
  private readonly staleAfterMs: number;
  private readonly goStaleAfterMs: number;
  private readonly statusCheckIntervalMs: number;
  private readonly requestTimeoutMs: number;
  private readonly initialBackoffMs: number;
  private readonly maxBackoffMs: number;
  private readonly startTimeoutMs: number;
  private readonly log: Logger;
  private readonly afterSnapshot: ControllerDiscoveryOptions['afterSnapshot'];

  private readonly entries = new Map<string, Entry>();
  /** Keys with a bad value, by the mod revision already warned about (warn once per write). */
  private readonly badKeys = new Map<string, bigint>();
  /** The etcd revision the map reflects. */
  private revision = 0n;
  /** Bumped whenever the current watcher is abandoned; callbacks of older watchers compare it. */
  private generation = 0;
  private watcher: Watcher | undefined;
  private watchConnected = false;

  private started = false;
  private stopped = false;
  private stopPromise: Promise<void> | undefined;
  private startPromise: Promise<void> | undefined;
  private startWaiter: { resolve: () => void; reject: (e: Error) => void } | undefined;
  private startTimer: NodeJS.Timeout | undefined;

  private resyncPending = false;
  private resyncReason: ResyncReason = 'initial';
  private retryTimer: NodeJS.Timeout | undefined;
  private statusTimer: NodeJS.Timeout | undefined;
  private inflight: Promise<unknown> | undefined;
  /** Resync attempts since the watch was last connected. */
  private failures = 0;
  /** When the watch stopped being trustworthy: every write a resync finds is newer than this. */
  private watchLostAt: number | undefined;

  private resyncs = 0;
  private watchEvents = 0;

  constructor(
    private readonly etcd: Etcd3,
    prefix: string = DEFAULT_CONTROLLER_PREFIX,
    options: ControllerDiscoveryOptions = {},
  ) {
    super();
    if (prefix.length === 0) throw new RangeError('discovery prefix must not be empty');
    this.prefix = prefix;
    this.staleAfterMs = options.staleAfterMs ?? 30_000;
    this.goStaleAfterMs = options.goStaleAfterMs ?? 90_000;
    this.statusCheckIntervalMs =
      options.statusCheckIntervalMs ?? Math.min(5000, Math.max(100, Math.round(this.staleAfterMs / 10)));
    this.requestTimeoutMs = options.requestTimeoutMs ?? 5000;
    this.initialBackoffMs = options.initialBackoffMs ?? 100;
    this.maxBackoffMs = options.maxBackoffMs ?? 5000;
    this.startTimeoutMs = options.startTimeoutMs ?? 30_000;
    this.log = options.logger ?? createLogger('discovery', { prefix });
    this.afterSnapshot = options.afterSnapshot;
  }

  // ---------------------------------------------------------------- subscriptions

  /** Calls `cb` for every new or changed controller (value or status). Returns the unsubscribe. */
  onControllerUpdate(cb: (c: Controller) => void): () => void {
    this.on('update', cb);
    return () => void this.off('update', cb);
  }

  /** Calls `cb` with `area/id` when a controller disappears. Returns the unsubscribe. */
  onControllerDelete(cb: (key: string) => void): () => void {
    this.on('delete', cb);
    return () => void this.off('delete', cb);
  }

  // ---------------------------------------------------------------- lifecycle

  /** Loads the snapshot and establishes the watch; resolves once both are done. */
  start(): Promise<void> {
    if (this.stopped)
      return Promise.reject(new OpsplaneError('conflict', 'controller discovery was stopped'));
    if (this.startPromise) return this.startPromise;
    this.started = true;
    this.startPromise = new Promise<void>((resolve, reject) => {
      this.startWaiter = { resolve, reject };
    });
    if (this.startTimeoutMs > 0) {
      this.startTimer = setTimeout(() => {
        this.startTimer = undefined;
        const err = new RequestTimeoutError('controller discovery start', this.startTimeoutMs);
        this.failStart(err);
        void this.stop();
      }, this.startTimeoutMs);
    }
    // Unref'd: status checks alone must not keep a process alive.
    this.statusTimer = setInterval(() => this.checkStatuses(), this.statusCheckIntervalMs);
    this.statusTimer.unref();
    this.requestResync('initial');
    return this.startPromise;
  }

  /** Cancels the watch and every timer; no callback fires after it resolves. Idempotent. */
  stop(): Promise<void> {
    this.stopPromise ??= this.doStop();
    return this.stopPromise;
  }

  private async doStop(): Promise<void> {
    this.stopped = true;
    this.generation++;
    clearTimeout(this.retryTimer);
    clearTimeout(this.startTimer);
    clearInterval(this.statusTimer);
    this.retryTimer = this.startTimer = this.statusTimer = undefined;
    this.failStart(new OpsplaneError('conflict', 'controller discovery was stopped before it started'));
    const w = this.watcher;
    this.watcher = undefined;
    // A connected watcher is cancelled on the stream (etcd acknowledges); bounded so that a
    // dead etcd cannot hold stop() up.
    if (w)
      await withTimeout(
        w.cancel().catch(() => undefined),
        2000,
      );
    if (this.inflight) await this.inflight;
  }

  /** Forces a resync (fresh snapshot, diff, new watch). Mostly for operators and tests. */
  resync(): void {
    if (!this.started || this.stopped || this.resyncPending) return; // one is already on its way
    this.abandonWatcher(true);
    this.requestResync('manual');
  }

  // ---------------------------------------------------------------- queries

  /** Every known controller, sorted by area then id. */
  listControllers(): Controller[] {
    this.refreshStatusesNow();
    return this.sorted([...this.entries.values()]).map((e) => structuredClone(e.controller));
  }

  /** Every known controller of `area` (online or not), sorted by id. */
  listControllersByArea(area: string): Controller[] {
    this.refreshStatusesNow();
    return this.sorted([...this.entries.values()].filter((e) => e.controller.area === area)).map((e) =>
      structuredClone(e.controller),
    );
  }

  /** An online controller of `area` — the one with the freshest heartbeat. */
  getControllerByArea(area: string): Controller {
    this.refreshStatusesNow();
    let best: Entry | undefined;
    for (const e of this.entries.values()) {
      if (e.controller.area !== area || e.controller.status !== 'online') continue;
      if (
        !best ||
        e.heartbeatMs > best.heartbeatMs ||
        (e.heartbeatMs === best.heartbeatMs && (e.observedPutAt ?? -1) > (best.observedPutAt ?? -1))
      ) {
        best = e;
      }
    }
    if (!best) throw new ControllerUnavailableError(area);
    return structuredClone(best.controller);
  }

  getController(area: string, id: string): Controller | undefined {
    this.refreshStatusesNow();
    const e = this.entries.get(`${area}/${id}`);
    return e ? structuredClone(e.controller) : undefined;
  }

  stats(): ControllerDiscoveryStats {
    return {
      revision: this.revision.toString(),
      controllers: this.entries.size,
      resyncs: this.resyncs,
      watchEvents: this.watchEvents,
      running: this.started && !this.stopped && this.watchConnected,
    };
  }

  // ---------------------------------------------------------------- resync

  private requestResync(reason: ResyncReason): void {
    if (this.stopped) return;
    if (this.resyncPending) return; // the pending resync will create the next watcher
    this.resyncPending = true;
    this.resyncReason = reason;
    // The first attempt after a healthy watch is immediate; repeated failures back off.
    const delay =
      this.failures === 0 ? 0 : backoffDelay(this.failures, this.initialBackoffMs, this.maxBackoffMs);
    this.failures++;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      const p = this.runResync();
      this.inflight = p;
      void p.finally(() => {
        if (this.inflight === p) this.inflight = undefined;
      });
    }, delay);
  }

  private async runResync(): Promise<void> {
    // While a resync is pending there is no watcher and nothing else starts one, so only stop()
    // can intervene.
    const reason = this.resyncReason;
    const t0 = mono();
    let kvs: IKeyValue[];
    let revision: bigint;
    try {
      const res = await this.etcd
        .getAll()
        .prefix(this.prefix)
        .options({ deadline: Date.now() + this.requestTimeoutMs })
        .exec();
      kvs = res.kvs;
      revision = BigInt(res.header.revision);
      if (this.afterSnapshot) await this.afterSnapshot(revision);
    } catch (e) {
      if (this.stopped) return;
      this.resyncPending = false;
      if (e instanceof ClientClosedError) {
        // Retrying cannot help, and would keep the process alive forever.
        this.log.error('controller discovery: the etcd client was closed; stopping discovery');
        this.failStart(new OpsplaneError('conflict', 'the etcd client was closed'));
        void this.stop();
        return;
      }
      this.reportError(
        new OpsplaneError(
          'upstream_error',
          `controller discovery: reading ${this.prefix} from etcd failed: ${(e as Error).message}`,
          {
            cause: e,
          },
        ),
      );
      this.requestResync(reason);
      return;
    }
    if (this.stopped) return;

    const out = this.applySnapshot(kvs, revision, reason === 'initial');
    this.revision = revision;
    this.resyncPending = false;
    this.watchLostAt = undefined;
    this.resyncs++;
    this.watchFrom(revision + 1n);

    const info: ResyncInfo = {
      reason,
      revision: revision.toString(),
      updated: out.filter((o) => o.type === 'update').length,
      deleted: out.filter((o) => o.type === 'delete').length,
      failedAttempts: Math.max(0, this.failures - 1),
      durationMs: Math.round(mono() - t0),
    };
    this.log.info(info, 'controller discovery synced');
    this.dispatch(out);
    if (!this.stopped) this.safeEmit('resync', info);
  }

  /** Replaces the map with a snapshot; returns the callbacks the difference calls for. */
  private applySnapshot(kvs: readonly IKeyValue[], revision: bigint, initial: boolean): Emission[] {
    const out: Emission[] = [];
    const seen = new Set<string>();
    const snapshotKeys = new Set<string>();
    const now = Date.now();
    const m = mono();
    // Anything written since our last view was written after the watch was lost.
    const writtenAfter = initial ? undefined : (this.watchLostAt ?? m);
    for (const kv of kvs) {
      const key = kv.key.toString('utf8');
      snapshotKeys.add(key);
      const modRevision = BigInt(kv.mod_revision);
      const parsed = this.parse(key, kv.value, modRevision);
      if (!parsed.ok) continue; // a key that became invalid is deleted below (not in `seen`)
      seen.add(parsed.rel);
      const prev = this.entries.get(parsed.rel);
      const same = prev !== undefined && prev.modRevision === modRevision;
      const observed = same ? prev.observedPutAt : (writtenAfter ?? prev?.observedPutAt);
      const how: Seen = {
        modRevision,
        lease: String(kv.lease ?? '0'),
        observedPutAt: observed,
        // An unchanged key keeps the heartbeat filled in before (no spurious update).
        observedWallMs: same && !prev.ownHeartbeat ? timestampMs(prev.controller.last_heartbeat) : now,
      };
      this.upsert(parsed.rel, parsed, how, now, m, out);
    }
    for (const rel of [...this.entries.keys()]) {
      if (!seen.has(rel)) {
        this.entries.delete(rel);
        out.push({ type: 'delete', key: rel });
      }
    }
    for (const key of [...this.badKeys.keys()]) {
      if (!snapshotKeys.has(key)) this.badKeys.delete(key);
    }
    this.revision = revision;
    return out;
  }

  // ---------------------------------------------------------------- watch

  private watchFrom(startRevision: bigint): void {
    const gen = this.generation;
    // `.watcher()` rather than `.create()`: create() only settles on 'connected' or 'error',
    // so a disconnect before the first 'connected' would leave us without a handle to cancel.
    const w = this.etcd.watch().prefix(this.prefix).startRevision(startRevision.toString()).watcher();
    this.watcher = w;
    this.watchConnected = false;
    // These listeners stay attached for the watcher's whole life (an 'error' without a listener
    // would throw); once the generation moves on they do nothing.
    w.on('connected', () => {
      if (gen !== this.generation) return;
      this.watchConnected = true;
      this.failures = 0;
      this.finishStart();
    });
    w.on('data', (res: IWatchResponse) => {
      if (gen !== this.generation) return;
      // etcd3 rethrows listener exceptions as uncaught; never let one escape.
      try {
        this.onWatchData(res);
      } catch (e) {
        this.log.error({ err: e }, 'controller discovery: failed to apply watch events; resyncing');
        this.abandonWatcher(true);
        this.requestResync('canceled');
      }
    });
    w.on('disconnected', (err: Error) => {
      if (gen !== this.generation) return;
      this.log.warn({ err: err?.message }, 'controller discovery: watch disconnected; resyncing');
      this.abandonWatcher(true);
      this.requestResync('disconnected');
    });
    w.on('error', (err: Error) => {
      if (gen !== this.generation) return;
      // Compaction past our revision, or any other cancellation. The library has already
      // dropped this watcher; cancelling it again would confuse its stream bookkeeping.
      this.log.warn({ err: err?.message }, 'controller discovery: watch canceled by etcd; resyncing');
      this.abandonWatcher(false);
      this.requestResync('canceled');
    });
  }

  /** Stops listening to the current watcher (and cancels it, if it is still attached). */
  private abandonWatcher(cancel: boolean): void {
    this.generation++;
    this.watchLostAt ??= mono();
    this.watchConnected = false;
    const w = this.watcher;
    this.watcher = undefined;
    if (w && cancel) void w.cancel().catch(() => undefined);
  }

  private onWatchData(res: IWatchResponse): void {
    if (res.events.length === 0) return; // progress notification
    const out: Emission[] = [];
    const now = Date.now();
    const m = mono();
    for (const ev of res.events) {
      this.watchEvents++;
      const rev = BigInt(ev.kv.mod_revision);
      // Events of one transaction share a revision, so only strictly older ones are stale.
      if (rev < this.revision) continue;
      const key = ev.kv.key.toString('utf8');
      if (ev.type === 'Put') {
        const parsed = this.parse(key, ev.kv.value, rev);
        if (parsed.ok) {
          const prev = this.entries.get(parsed.rel);
          const seen: Seen = {
            modRevision: rev,
            lease: String(ev.kv.lease ?? '0'),
            observedPutAt: m,
            observedWallMs: now,
          };
          if (!prev || rev > prev.modRevision) this.upsert(parsed.rel, parsed, seen, now, m, out);
        } else if (parsed.rel !== undefined && this.entries.delete(parsed.rel)) {
          out.push({ type: 'delete', key: parsed.rel });
        }
      } else {
        this.badKeys.delete(key);
        const ref = parseControllerKey(this.prefix, key);
        if (ref) {
          const rel = `${ref.area}/${ref.id}`;
          const prev = this.entries.get(rel);
          if (prev && rev > prev.modRevision) {
            this.entries.delete(rel);
            out.push({ type: 'delete', key: rel });
          }
        }
      }
      if (rev > this.revision) this.revision = rev;
    }
    this.dispatch(out);
  }

  // ---------------------------------------------------------------- entries and status

  /** Validates a key and its value; warns (once per write) about anything that is not a controller. */
  private parse(key: string, value: Buffer, modRevision: bigint): Parsed {
    const ref = parseControllerKey(this.prefix, key);
    let reason: string;
    let rel: string | undefined;
    if (!ref) {
      reason = `key is not ${this.prefix}<area>/<id>`;
    } else {
      rel = `${ref.area}/${ref.id}`;
      let json: unknown;
      try {
        json = JSON.parse(value.toString('utf8'));
      } catch {
        json = undefined;
      }
      if (json === undefined) {
        reason = 'value is not JSON';
      } else {
        const r = readControllerValue(json, ref);
        if (!r.ok) {
          reason = r.reason;
        } else {
          this.badKeys.delete(key);
          return { ok: true, rel, reg: r.registration, flavor: r.flavor, ownHeartbeat: r.hasHeartbeat };
        }
      }
    }
    if (this.badKeys.get(key) !== modRevision) {
      this.badKeys.set(key, modRevision);
      this.log.warn(
        { key, modRevision: modRevision.toString(), reason },
        'controller discovery: skipping invalid entry',
      );
    }
    return { ok: false, rel, reason };
  }

  private upsert(
    rel: string,
    parsed: Extract<Parsed, { ok: true }>,
    seen: Seen,
    now: number,
    m: number,
    out: Emission[],
  ): void {
    const { flavor, ownHeartbeat } = parsed;
    const reg: ControllerRegistration = ownHeartbeat
      ? parsed.reg
      : { ...parsed.reg, last_heartbeat: new Date(seen.observedWallMs).toISOString() };
    const heartbeatMs = timestampMs(reg.last_heartbeat);
    const base = { flavor, lease: seen.lease, ownHeartbeat, heartbeatMs, observedPutAt: seen.observedPutAt };
    const status = this.statusFor(base, now, m);
    const canonical = stableStringify({ reg, flavor });
    const prev = this.entries.get(rel);
    if (prev && prev.canonical === canonical && prev.controller.status === status) {
      // Same value (e.g. a put of identical bytes): remember the write, no callback.
      prev.modRevision = seen.modRevision;
      prev.observedPutAt = seen.observedPutAt;
      prev.lease = seen.lease;
      return;
    }
    // flavor only for Go registrations: an Opsplane controller looks as it always did.
    const controller: Controller = flavor === 'go' ? { ...reg, status, flavor } : { ...reg, status };
    this.entries.set(rel, { controller, canonical, modRevision: seen.modRevision, ...base });
    out.push({ type: 'update', controller });
  }

  /**
   * Opsplane registrations: online iff the heartbeat is fresh by the controller's clock, or this
   * process saw the key written recently by its own clock (tolerates clock skew between
   * controller and platform). Go registrations: online while a leased key exists; else by their
   * heartbeat with Go's threshold, or, with neither lease nor heartbeat, while present.
   */
  private statusFor(
    e: Pick<Entry, 'flavor' | 'lease' | 'ownHeartbeat' | 'heartbeatMs' | 'observedPutAt'>,
    now: number,
    m: number,
  ): ControllerStatus {
    if (e.flavor === 'go') {
      if (e.lease !== '0' && e.lease !== '') return 'online';
      if (!e.ownHeartbeat) return 'online';
      return now - e.heartbeatMs <= this.goStaleAfterMs ||
        (e.observedPutAt !== undefined && m - e.observedPutAt <= this.goStaleAfterMs)
        ? 'online'
        : 'offline';
    }
    if (e.heartbeatMs > 0 && now - e.heartbeatMs <= this.staleAfterMs) return 'online';
    if (e.observedPutAt !== undefined && m - e.observedPutAt <= this.staleAfterMs) return 'online';
    return 'offline';
  }

  private collectStatusFlips(): Emission[] {
    const out: Emission[] = [];
    const now = Date.now();
    const m = mono();
    for (const e of this.entries.values()) {
      const status = this.statusFor(e, now, m);
      if (status !== e.controller.status) {
        e.controller = { ...e.controller, status };
        out.push({ type: 'update', controller: e.controller });
      }
    }
    return out;
  }

  private checkStatuses(): void {
    if (this.stopped) return;
    this.dispatch(this.collectStatusFlips());
  }

  /** Queries see current statuses; the flips they find are announced right after (not inside the query). */
  private refreshStatusesNow(): void {
    if (this.stopped || this.entries.size === 0) return;
    const out = this.collectStatusFlips();
    if (out.length > 0) queueMicrotask(() => this.dispatch(out));
  }

  private sorted(entries: Entry[]): Entry[] {
    return entries.sort(
      (a, b) =>
        a.controller.area.localeCompare(b.controller.area) || a.controller.id.localeCompare(b.controller.id),
    );
  }

  // ---------------------------------------------------------------- delivery

  private dispatch(out: readonly Emission[]): void {
    for (const ev of out) {
      if (this.stopped) return;
      if (ev.type === 'update') {
        const snapshot = structuredClone(ev.controller);
        for (const l of this.rawListeners('update')) this.callListener('update', l, snapshot);
      } else {
        for (const l of this.rawListeners('delete')) this.callListener('delete', l, ev.key);
      }
    }
  }

  private callListener(event: string, listener: (arg: never) => unknown, arg: unknown): void {
    try {
      const r = (listener as (a: unknown) => unknown).call(this, arg);
      if (r && typeof (r as Promise<unknown>).then === 'function') {
        (r as Promise<unknown>).then(undefined, (err: unknown) =>
          this.log.error({ err, event }, 'controller discovery: async listener rejected'),
        );
      }
    } catch (err) {
      this.log.error({ err, event }, 'controller discovery: listener threw');
    }
  }

  private safeEmit<K extends 'resync'>(event: K, ...args: ControllerDiscoveryEvents[K]): void {
    for (const l of this.rawListeners(event)) this.callListener(event, l, args[0]);
  }

  /** 'error' is emitted only when someone listens (an unheard 'error' would crash the process). */
  private reportError(err: Error): void {
    this.log.warn({ err: err.message }, 'controller discovery: etcd request failed; retrying');
    if (this.listenerCount('error') > 0) {
      for (const l of this.rawListeners('error')) this.callListener('error', l, err);
    }
  }

  private finishStart(): void {
    clearTimeout(this.startTimer);
    this.startTimer = undefined;
    const w = this.startWaiter;
    this.startWaiter = undefined;
    w?.resolve();
  }

  private failStart(err: Error): void {
    const w = this.startWaiter;
    this.startWaiter = undefined;
    w?.reject(err);
  }
}
