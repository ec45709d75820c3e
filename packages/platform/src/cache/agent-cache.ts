/**
 * AgentCache: a TTL cache of agent records keyed by agent code (the guide's §5.3, corrected).
 *
 * The guide judged every entry by one global `lastSync`, so an entry written a second ago was
 * "expired" when the last full sync was old, and a months-old entry was "fresh" right after an
 * unrelated sync; it also had no way to stop N concurrent misses from hitting the controllers
 * N times. Here each entry carries its own write time, `lastSync` only describes full syncs,
 * and loads are single-flight: concurrent misses for a key share one loader call, and a full
 * sync is shared the same way. A write or invalidation that happens while a load runs wins
 * over that load's (older) result. No timers: expiry is checked on read, so nothing keeps the
 * process alive.
 */
import type { AggregatedAgent } from '../aggregate/aggregate-agents.js';

export interface AgentCacheOptions {
  /** Entry lifetime. Default 300 000 (the guide's cache.agent_ttl). */
  ttlMs?: number;
  /** Oldest-written entries are evicted beyond this. Default 100 000. */
  maxEntries?: number;
  /** Clock (ms), for tests. */
  now?: () => number;
}

export interface CacheEntry<V> {
  value: V;
  storedAt: number;
  expiresAt: number;
  stale: boolean;
}

interface Slot<V> {
  value: V;
  storedAt: number;
  /** Write sequence number: orders writes regardless of clock resolution. */
  seq: number;
}

export class AgentCache<V = AggregatedAgent> {
  readonly ttlMs: number;
  private readonly maxEntries: number;
  private readonly now: () => number;
  private readonly slots = new Map<string, Slot<V>>();
  private readonly inflight = new Map<string, { promise: Promise<V> }>();
  private syncing: Promise<void> | undefined;
  private seq = 0;
  /** Bumped by invalidateAll, so loads started before it are not cached. */
  private epoch = 0;
  private lastSyncAt: number | undefined;

  constructor(options: AgentCacheOptions = {}) {
    const ttl = options.ttlMs ?? 300_000;
    if (!Number.isFinite(ttl) || ttl <= 0) throw new RangeError(`ttlMs must be > 0, got ${ttl}`);
    const max = options.maxEntries ?? 100_000;
    if (!Number.isInteger(max) || max < 1)
      throw new RangeError(`maxEntries must be an integer >= 1, got ${max}`);
    this.ttlMs = ttl;
    this.maxEntries = max;
    this.now = options.now ?? Date.now;
  }

  /** Entries held, fresh or stale. */
  get size(): number {
    return this.slots.size;
  }

  /** When the last full sync (`replaceAll`/`syncAll`) completed, in ms; undefined if never. */
  get lastSync(): number | undefined {
    return this.lastSyncAt;
  }

  /** True when there was no full sync yet or the last one is older than the TTL. */
  isStale(): boolean {
    return this.lastSyncAt === undefined || this.now() - this.lastSyncAt >= this.ttlMs;
  }

  /** The fresh value, or undefined when missing or expired. */
  get(key: string): V | undefined {
    const slot = this.slots.get(key);
    return slot && !this.expired(slot) ? slot.value : undefined;
  }

  has(key: string): boolean {
    return this.get(key) !== undefined;
  }

  /** The entry even when expired (for stale-while-revalidate callers), with its timing. */
  peek(key: string): CacheEntry<V> | undefined {
    const slot = this.slots.get(key);
    if (!slot) return undefined;
    return {
      value: slot.value,
      storedAt: slot.storedAt,
      expiresAt: slot.storedAt + this.ttlMs,
      stale: this.expired(slot),
    };
  }

  /** Fresh values of the keys asked for; missing or expired keys are absent from the map. */
  getMany(keys: Iterable<string>): Map<string, V> {
    const out = new Map<string, V>();
    for (const key of keys) {
      const v = this.get(key);
      if (v !== undefined) out.set(key, v);
    }
    return out;
  }

  set(key: string, value: V): void {
    this.write(key, value, this.now());
  }

  setMany(entries: Iterable<readonly [string, V]>): void {
    const at = this.now();
    for (const [key, value] of entries) this.write(key, value, at);
  }

  /**
   * A full sync: the cache becomes exactly `entries` and `lastSync` is set. Entries written
   * after `sinceSeq` (i.e. while the sync's data was being fetched) are newer than the sync and
   * are kept.
   */
  replaceAll(entries: Iterable<readonly [string, V]>, sinceSeq = this.seq): void {
    const at = this.now();
    const incoming = new Map<string, V>();
    for (const [key, value] of entries) incoming.set(key, value);
    for (const [key, slot] of this.slots) {
      if (!incoming.has(key) && slot.seq <= sinceSeq) this.slots.delete(key);
    }
    for (const [key, value] of incoming) {
      const slot = this.slots.get(key);
      if (slot && slot.seq > sinceSeq) continue;
      this.write(key, value, at);
    }
    this.lastSyncAt = at;
  }

  /** Drops one entry and any load of it in flight (its result will not be cached). */
  invalidate(key: string): boolean {
    this.inflight.delete(key);
    // A write marker so that a load which started earlier sees the key changed.
    this.seq++;
    return this.slots.delete(key);
  }

  /** Drops everything, forgets the last sync, and disowns loads in flight. */
  invalidateAll(): void {
    this.slots.clear();
    this.inflight.clear();
    this.syncing = undefined;
    this.lastSyncAt = undefined;
    this.epoch++;
    this.seq++;
  }

  /** Removes expired entries; returns how many. */
  prune(): number {
    let n = 0;
    for (const [key, slot] of this.slots) {
      if (this.expired(slot)) {
        this.slots.delete(key);
        n++;
      }
    }
    return n;
  }

  /**
   * The fresh value, or the loader's result. Concurrent calls for the same key share one loader
   * call; a failed load is not cached and every waiter gets its error.
   */
  getOrLoad(key: string, loader: (key: string) => Promise<V>): Promise<V> {
    const fresh = this.get(key);
    if (fresh !== undefined) return Promise.resolve(fresh);
    const running = this.inflight.get(key);
    if (running) return running.promise;
    const startSeq = this.seq;
    const startEpoch = this.epoch;
    const entry: { promise: Promise<V> } = { promise: Promise.resolve(loader).then((load) => load(key)) };
    entry.promise = entry.promise.then((value) => {
      // Cache only if this load was not disowned (invalidate) and nothing newer was written.
      const slot = this.slots.get(key);
      if (this.inflight.get(key) === entry && this.epoch === startEpoch && (!slot || slot.seq <= startSeq)) {
        this.write(key, value, this.now());
      }
      return value;
    });
    this.inflight.set(key, entry);
    const clear = () => {
      if (this.inflight.get(key) === entry) this.inflight.delete(key);
    };
    entry.promise.then(clear, clear);
    return entry.promise;
  }

  /**
   * Full refresh through `loader` (e.g. aggregateAgents), single-flight: callers arriving while
   * a sync runs share it. Resolves once the cache holds the result.
   */
  syncAll(loader: () => Promise<Iterable<readonly [string, V]>>): Promise<void> {
    if (this.syncing) return this.syncing;
    const startSeq = this.seq;
    const startEpoch = this.epoch;
    const p = (async () => {
      const entries = await loader();
      if (this.epoch === startEpoch) this.replaceAll(entries, startSeq);
    })();
    this.syncing = p;
    const clear = () => {
      if (this.syncing === p) this.syncing = undefined;
    };
    p.then(clear, clear);
    return p;
  }

  private expired(slot: Slot<V>): boolean {
    return this.now() - slot.storedAt >= this.ttlMs;
  }

  private write(key: string, value: V, at: number): void {
    // Re-insert so Map order is write order, which eviction relies on.
    this.slots.delete(key);
    this.slots.set(key, { value, storedAt: at, seq: ++this.seq });
    while (this.slots.size > this.maxEntries) {
      const oldest = this.slots.keys().next();
      if (oldest.done) break;
      this.slots.delete(oldest.value);
    }
  }
}
