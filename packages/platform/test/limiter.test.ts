import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ConcurrencyLimiter } from '../src/index.js';

const tick = (ms = 1) => new Promise<void>((r) => setTimeout(r, ms));

describe('ConcurrencyLimiter', () => {
  test('never runs more than max at once and runs everything', async () => {
    const lim = new ConcurrencyLimiter(3);
    let running = 0;
    let peak = 0;
    const out = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        lim.run(async () => {
          running++;
          peak = Math.max(peak, running);
          await tick(Math.random() * 5);
          running--;
          return i;
        }),
      ),
    );
    assert.equal(peak, 3);
    assert.deepEqual(
      out,
      Array.from({ length: 20 }, (_, i) => i),
    );
    assert.equal(lim.active, 0);
    assert.equal(lim.pending, 0);
  });

  test('run: an error belongs to its own task only', async () => {
    const lim = new ConcurrencyLimiter(1);
    const a = lim.run(async () => {
      throw new Error('boom');
    });
    const b = lim.run(() => 'ok');
    const c = lim.run(() => {
      throw new TypeError('sync boom');
    });
    await assert.rejects(a, /boom/);
    assert.equal(await b, 'ok');
    await assert.rejects(c, TypeError);
    assert.equal(lim.active, 0);
  });

  test('map preserves input order whatever the completion order', async () => {
    const lim = new ConcurrencyLimiter(4);
    const items = [50, 10, 30, 0, 20, 5];
    const out = await lim.map(items, async (ms, i) => {
      await tick(ms);
      return `${i}:${ms}`;
    });
    assert.deepEqual(
      out,
      items.map((ms, i) => `${i}:${ms}`),
    );
  });

  test('map pulls items lazily: at most max are started ahead', async () => {
    const lim = new ConcurrencyLimiter(2);
    let pulled = 0;
    let started = 0;
    function* gen() {
      for (let i = 0; i < 10; i++) {
        pulled++;
        yield i;
      }
    }
    const maxAhead: number[] = [];
    await lim.map(gen(), async () => {
      started++;
      maxAhead.push(pulled - started);
      await tick();
    });
    assert.equal(pulled, 10);
    assert.ok(Math.max(...maxAhead) <= 2, `pulled ahead ${Math.max(...maxAhead)}`);
  });

  test('map rejects with the first error and starts no further items', async () => {
    const lim = new ConcurrencyLimiter(2);
    const started: number[] = [];
    await assert.rejects(
      lim.map([0, 1, 2, 3, 4, 5, 6, 7], async (i) => {
        started.push(i);
        await tick(i === 1 ? 1 : 10);
        if (i === 1) throw new Error(`item ${i} failed`);
        return i;
      }),
      /item 1 failed/,
    );
    await tick(30);
    assert.ok(started.length <= 3, `started ${started.join(',')}`);
  });

  test('mapSettled reports every item in order', async () => {
    const lim = new ConcurrencyLimiter(3);
    const res = await lim.mapSettled([1, 2, 3, 4], async (i) => {
      await tick(5 - i);
      if (i % 2 === 0) throw new Error(`even ${i}`);
      return i * 10;
    });
    assert.deepEqual(
      res.map((r) => (r.status === 'fulfilled' ? r.value : (r.reason as Error).message)),
      [10, 'even 2', 30, 'even 4'],
    );
  });

  test('an abort removes queued tasks, and map stops', async () => {
    const lim = new ConcurrencyLimiter(1);
    let release!: () => void;
    const blocker = lim.run(() => new Promise<void>((r) => (release = r)));
    const ac = new AbortController();
    let ran = false;
    const queued = lim.run(() => {
      ran = true;
    }, ac.signal);
    assert.equal(lim.pending, 1);
    ac.abort();
    await assert.rejects(queued, { name: 'AbortError' });
    assert.equal(lim.pending, 0);
    release();
    await blocker;
    assert.equal(ran, false);
    assert.equal(lim.active, 0);
    await assert.rejects(
      lim.run(() => 1, AbortSignal.abort()),
      { name: 'AbortError' },
    );
    await assert.rejects(
      lim.map([1, 2, 3], (i) => i, AbortSignal.abort()),
      { name: 'AbortError' },
    );
  });

  test('a limiter is shared fairly between concurrent maps', async () => {
    const lim = new ConcurrencyLimiter(2);
    let running = 0;
    let peak = 0;
    const work = async (i: number) => {
      running++;
      peak = Math.max(peak, running);
      await tick(2);
      running--;
      return i;
    };
    const [a, b] = await Promise.all([lim.map([1, 2, 3, 4], work), lim.map([5, 6, 7], work)]);
    assert.deepEqual(a, [1, 2, 3, 4]);
    assert.deepEqual(b, [5, 6, 7]);
    assert.equal(peak, 2);
  });

  test('rejects a nonsensical limit', () => {
    assert.throws(() => new ConcurrencyLimiter(0), RangeError);
    assert.throws(() => new ConcurrencyLimiter(1.5), RangeError);
  });
});
