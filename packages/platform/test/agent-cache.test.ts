import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { AgentCache } from '../src/index.js';

function clock(start = 1_000_000) {
  let t = start;
  return { now: () => t, advance: (ms: number) => (t += ms) };
}

const deferred = <T>() => {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
};

describe('AgentCache', () => {
  test('each entry expires ttl after its own write, not after the last sync', () => {
    const c = clock();
    const cache = new AgentCache<string>({ ttlMs: 1000, now: c.now });
    cache.replaceAll([['a', 'A']]);
    c.advance(900);
    cache.set('b', 'B');
    c.advance(200); // a is 1100 ms old, b 200 ms
    assert.equal(cache.get('a'), undefined);
    assert.equal(cache.get('b'), 'B');
    assert.equal(cache.peek('a')?.stale, true);
    assert.equal(cache.peek('a')?.value, 'A');
    assert.equal(cache.peek('b')?.stale, false);
    assert.equal(cache.isStale(), true, 'the last full sync is older than the ttl');
  });

  test('lastSync and isStale describe full syncs', () => {
    const c = clock();
    const cache = new AgentCache<string>({ ttlMs: 1000, now: c.now });
    assert.equal(cache.lastSync, undefined);
    assert.equal(cache.isStale(), true);
    cache.replaceAll([
      ['a', 'A'],
      ['b', 'B'],
    ]);
    assert.equal(cache.lastSync, c.now());
    assert.equal(cache.isStale(), false);
    cache.replaceAll([['b', 'B2']]);
    assert.equal(cache.get('a'), undefined, 'a full sync drops what it no longer lists');
    assert.equal(cache.get('b'), 'B2');
    c.advance(1000);
    assert.equal(cache.isStale(), true);
  });

  test('getMany returns only fresh hits; invalidate and invalidateAll', () => {
    const c = clock();
    const cache = new AgentCache<number>({ ttlMs: 100, now: c.now });
    cache.setMany([
      ['a', 1],
      ['b', 2],
    ]);
    c.advance(50);
    cache.set('c', 3);
    c.advance(60);
    assert.deepEqual([...cache.getMany(['a', 'b', 'c', 'zz'])], [['c', 3]]);
    assert.equal(cache.invalidate('c'), true);
    assert.equal(cache.invalidate('c'), false);
    assert.equal(cache.prune(), 2);
    assert.equal(cache.size, 0);
    cache.replaceAll([['x', 9]]);
    cache.invalidateAll();
    assert.equal(cache.size, 0);
    assert.equal(cache.lastSync, undefined);
  });

  test('getOrLoad: concurrent misses call the loader once', async () => {
    const cache = new AgentCache<string>({ ttlMs: 1000 });
    let calls = 0;
    const d = deferred<string>();
    const loader = async (k: string) => {
      calls++;
      return `${k}:${await d.promise}`;
    };
    const all = Promise.all([
      cache.getOrLoad('a', loader),
      cache.getOrLoad('a', loader),
      cache.getOrLoad('a', loader),
    ]);
    d.resolve('v');
    assert.deepEqual(await all, ['a:v', 'a:v', 'a:v']);
    assert.equal(calls, 1);
    assert.equal(await cache.getOrLoad('a', loader), 'a:v');
    assert.equal(calls, 1, 'a fresh hit does not load');
  });

  test('getOrLoad: a failed load is not cached and reaches every waiter', async () => {
    const cache = new AgentCache<string>({ ttlMs: 1000 });
    let calls = 0;
    const failing = async () => {
      calls++;
      throw new Error('controller down');
    };
    const results = await Promise.allSettled([cache.getOrLoad('a', failing), cache.getOrLoad('a', failing)]);
    assert.deepEqual(
      results.map((r) => r.status),
      ['rejected', 'rejected'],
    );
    assert.equal(calls, 1);
    assert.equal(await cache.getOrLoad('a', async () => 'ok'), 'ok');
  });

  test('getOrLoad: a write or invalidation during the load wins over its result', async () => {
    const cache = new AgentCache<string>({ ttlMs: 1000 });
    const d1 = deferred<string>();
    const p1 = cache.getOrLoad('a', () => d1.promise);
    cache.set('a', 'newer');
    d1.resolve('older');
    assert.equal(await p1, 'older');
    assert.equal(cache.get('a'), 'newer');

    const d2 = deferred<string>();
    const p2 = cache.getOrLoad('b', () => d2.promise);
    cache.invalidate('b');
    // A caller after the invalidation does not join the disowned load.
    const p3 = cache.getOrLoad('b', async () => 'fresh');
    d2.resolve('stale');
    assert.equal(await p2, 'stale');
    assert.equal(await p3, 'fresh');
    assert.equal(cache.get('b'), 'fresh');
  });

  test('syncAll is single-flight and keeps writes made while it ran', async () => {
    const c = clock();
    const cache = new AgentCache<string>({ ttlMs: 1000, now: c.now });
    let calls = 0;
    const d = deferred<[string, string][]>();
    const loader = () => {
      calls++;
      return d.promise;
    };
    const s1 = cache.syncAll(loader);
    const s2 = cache.syncAll(loader);
    cache.set('b', 'written-during-sync');
    d.resolve([
      ['a', 'A'],
      ['b', 'B-from-sync'],
    ]);
    await Promise.all([s1, s2]);
    assert.equal(calls, 1);
    assert.equal(cache.get('a'), 'A');
    assert.equal(cache.get('b'), 'written-during-sync');
    assert.equal(cache.lastSync, c.now());
    await assert.rejects(
      cache.syncAll(async () => Promise.reject(new Error('x'))),
      /x/,
    );
    assert.equal(cache.get('a'), 'A', 'a failed sync changes nothing');
  });

  test('evicts the oldest writes beyond maxEntries', () => {
    const cache = new AgentCache<number>({ ttlMs: 1000, maxEntries: 2 });
    cache.set('a', 1);
    cache.set('b', 2);
    cache.set('a', 11); // rewrite makes a the newest
    cache.set('c', 3);
    assert.equal(cache.get('b'), undefined);
    assert.equal(cache.get('a'), 11);
    assert.equal(cache.get('c'), 3);
  });
});
