/**
 * The wait for a (re)started agent, against scripted controller answers: accepted at the first
 * answer that shows a connection newer than the one before the restart, never on the old
 * connection, never by comparing two controllers' clocks.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { AgentNotFoundError } from '@opsplane/models';
import {
  AgentNotOnlineError,
  DeploymentCancelledError,
  onlineBaseline,
  waitOnline,
  type AgentSighting,
  type OnlineWatch,
} from '../src/index.js';

type Answer = AgentSighting | 'unlisted' | Error;

/** A watch whose look() plays `answers` in order (the last one repeats). */
function scripted(answers: Answer[], opts: Partial<OnlineWatch> = {}) {
  let i = 0;
  const watch: OnlineWatch & { looks: () => number } = {
    agent: 'web-01',
    area: 'eu',
    timeoutMs: 2_000,
    pollMs: 20,
    ...opts,
    look: () => {
      const a = answers[Math.min(i, answers.length - 1)]!;
      i++;
      if (a === 'unlisted') return Promise.reject(new AgentNotFoundError('web-01'));
      if (a instanceof Error) return Promise.reject(a);
      return Promise.resolve(a);
    },
    looks: () => i,
  };
  return watch;
}

const at = (ms: number) => new Date(Date.UTC(2025, 0, 1) + ms).toISOString();
const seen = (hbMs: number, o: Partial<AgentSighting> = {}): AgentSighting => ({
  controller: 'ctl-a',
  status: 'online',
  version: '1.0.0',
  lastHeartbeat: at(hbMs),
  ...o,
});
const signal = () => new AbortController().signal;

describe('waiting for a restarted agent to be online', () => {
  it('accepts at once an agent that said hello before the first question after its restart', async () => {
    // Before the restart the agent's last heartbeat was at 10 s. It restarts and connects again
    // (hello at 10.3 s) before the walk asks; its next heartbeat would come 5 s later. Taking the
    // first answer after the restart as the baseline (the old logic) waits for that heartbeat;
    // the baseline from before the restart accepts the hello.
    const w = scripted(
      [seen(10_000), seen(10_300, { version: '2.0.0' }), seen(15_300, { version: '2.0.0' })],
      {
        pollMs: 5_000,
        timeoutMs: 30_000,
      },
    );
    const since = await onlineBaseline(w);
    const started = Date.now();
    const r = await waitOnline(w, since, { version: '2.0.0', signal: signal() });
    assert.equal(r.controller, 'ctl-a');
    assert.equal(w.looks(), 2, 'one question before the restart, one after');
    assert.ok(Date.now() - started < 1_000, 'no poll interval waited');
  });

  it('never takes the old connection, still listed online, for a new one', async () => {
    const w = scripted([
      seen(10_000),
      seen(10_000), // the controller has not noticed the old socket close yet
      seen(10_050, { status: 'offline' }),
      seen(10_400),
    ]);
    const r = await waitOnline(w, await onlineBaseline(w), { signal: signal() });
    assert.equal(r.controller, 'ctl-a');
    assert.equal(w.looks(), 4);
  });

  it('waits for the expected version', async () => {
    const w = scripted([seen(1_000), seen(2_000, { version: '1.0.0' }), seen(3_000, { version: '2.0.0' })]);
    await waitOnline(w, await onlineBaseline(w), { version: '2.0.0', signal: signal() });
    assert.equal(w.looks(), 3);
  });

  it('accepts any online answer for an agent no controller listed before', async () => {
    const w = scripted(['unlisted', 'unlisted', seen(5)]);
    const since = await onlineBaseline(w);
    assert.deepEqual(since, { kind: 'unlisted' });
    await waitOnline(w, since, { signal: signal() });
    assert.equal(w.looks(), 3);
  });

  it('takes the first answer as the baseline when the controllers could not be asked before', async () => {
    const w = scripted([new Error('controller unavailable'), seen(7_000), seen(7_000), seen(12_000)]);
    const since = await onlineBaseline(w);
    assert.deepEqual(since, { kind: 'unknown' });
    await waitOnline(w, since, { signal: signal() });
    assert.equal(w.looks(), 4);
  });

  it("never compares two controllers' clocks", async () => {
    // ctl-b's clock runs far ahead of ctl-a's: its first answer is its own baseline, not "newer".
    const w = scripted([
      seen(1_000, { controller: 'ctl-a' }),
      seen(900_000, { controller: 'ctl-b' }),
      seen(900_000, { controller: 'ctl-b' }),
      seen(905_000, { controller: 'ctl-b' }),
    ]);
    const r = await waitOnline(w, await onlineBaseline(w), { signal: signal() });
    assert.equal(r.controller, 'ctl-b');
    assert.equal(w.looks(), 4);
  });

  it('gives up at the deadline with the last answer in the message', async () => {
    const w = scripted([seen(1_000), seen(2_000, { version: '1.0.0' })], { timeoutMs: 100 });
    await assert.rejects(
      waitOnline(w, await onlineBaseline(w), { version: '2.0.0', signal: signal() }),
      (e: unknown) =>
        e instanceof AgentNotOnlineError &&
        e.code === 'agent_not_online' &&
        e.status === 504 &&
        /agent web-01 did not show up online through the controllers of area eu within 0 s \(last: online as version 1\.0\.0, not 2\.0\.0\)/.test(
          e.message,
        ),
    );
  });

  it('stops when the signal aborts, with the cancellation it carries', async () => {
    const w = scripted([seen(1_000)], { timeoutMs: 60_000, pollMs: 10_000 });
    const since = await onlineBaseline(w);
    const ac = new AbortController();
    setTimeout(() => ac.abort(new DeploymentCancelledError()), 20);
    await assert.rejects(
      waitOnline(w, since, { signal: ac.signal }),
      (e: unknown) => e instanceof DeploymentCancelledError && e.message === 'cancelled by an operator',
    );
    const stop = new AbortController();
    stop.abort('shutdown');
    await assert.rejects(
      waitOnline(w, since, { signal: stop.signal }),
      (e: unknown) => e instanceof DeploymentCancelledError && e.message === 'stopped: shutdown',
    );
  });
});
