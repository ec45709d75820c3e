/** The shared runtime pieces: durations, backoff, sleep, SerialTask. */
import assert from 'node:assert/strict';
import { getEventListeners } from 'node:events';
import { describe, it } from 'node:test';
import { z } from 'zod';
import {
  backoffDelay,
  durationSchema,
  formatDuration,
  parseDuration,
  SerialTask,
  sleep,
} from '../src/index.js';

describe('durations', () => {
  it('parses Go-style durations and bare milliseconds; refuses the rest', () => {
    assert.equal(parseDuration('1m30s'), 90_000);
    assert.equal(parseDuration('250'), 250);
    assert.equal(parseDuration(' 2h '), 7_200_000);
    assert.throws(() => parseDuration('10 s'), RangeError);
    assert.throws(() => parseDuration('5x'), /invalid duration '5x'/);
    assert.equal(formatDuration(90_000), '90s');
    assert.equal(formatDuration(120_000), '2m');
    assert.equal(formatDuration(1500), '1500ms');
  });

  it('durationSchema wants a unit and keeps to its bounds', () => {
    const s = z.object({ t: durationSchema({ min: 100, max: 60_000 }) });
    assert.deepEqual(s.parse({ t: '1.5s' }), { t: 1500 });
    assert.match(s.safeParse({ t: '10' }).error?.message ?? '', /with a unit/);
    assert.match(s.safeParse({ t: 10 }).error?.message ?? '', /with a unit/);
    assert.match(s.safeParse({ t: '50ms' }).error?.message ?? '', /at least 100ms/);
    assert.match(s.safeParse({ t: '2m' }).error?.message ?? '', /at most 1m/);
  });
});

describe('backoffDelay', () => {
  it('doubles from the initial delay up to the cap, shortened by at most the jitter', () => {
    for (let i = 0; i < 200; i++) {
      const first = backoffDelay(1, 100, 1000);
      assert.ok(first >= 50 && first <= 100, `first ${first}`);
      const third = backoffDelay(3, 100, 1000, 0.2);
      assert.ok(third >= 320 && third <= 400, `third ${third}`);
      const capped = backoffDelay(40, 100, 1000, 0);
      assert.equal(capped, 1000);
    }
  });
});

describe('sleep', () => {
  it('leaves no abort listener behind, and an abort ends it at once', async () => {
    const ac = new AbortController();
    for (let i = 0; i < 50; i++) await sleep(1, ac.signal);
    assert.equal(getEventListeners(ac.signal, 'abort').length, 0);
    const t0 = Date.now();
    const long = sleep(60_000, ac.signal);
    ac.abort();
    await long;
    assert.ok(Date.now() - t0 < 1000);
    assert.equal(getEventListeners(ac.signal, 'abort').length, 0);
  });
});

describe('SerialTask', () => {
  it('never overlaps, and coalesces calls made during a run into one follow-up run', async () => {
    let running = 0;
    let maxRunning = 0;
    let runs = 0;
    const task = new SerialTask(async () => {
      running++;
      maxRunning = Math.max(maxRunning, running);
      runs++;
      await sleep(20);
      running--;
      return runs;
    });
    const first = task.run();
    const followers = [task.run(), task.run(), task.run()];
    assert.equal(task.busy, true);
    assert.equal(await first, 1);
    const after = await Promise.all(followers);
    assert.deepEqual(after, [2, 2, 2]);
    assert.equal(maxRunning, 1);
    await task.idle();
    assert.equal(task.busy, false);
  });

  it('a failed run does not stop the follow-up', async () => {
    let n = 0;
    const task = new SerialTask(async () => {
      n++;
      await sleep(5);
      if (n === 1) throw new Error('first fails');
      return n;
    });
    const a = task.run();
    const b = task.run();
    await assert.rejects(a, /first fails/);
    assert.equal(await b, 2);
  });
});
