/**
 * `opsplane deploy` / `opsplane deployments` without a server: the progress display (terminal
 * frames redrawn in place, plain lines for pipes, widths, NO_COLOR), the Server-Sent Events
 * parser and reconnecting reader, and the command-line checks (usage errors, exit 2). The runs
 * against the real deployment API live with the server's end-to-end tests.
 */
/* eslint-disable no-control-regex -- what is under test is escape codes */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { Deployment, Rollout } from '@opsplane/api';
import { UsageError } from '../src/command.js';
import {
  ProgressDisplay,
  bar,
  colorEnabled,
  deploymentRow,
  formatLogLine,
  formatRow,
  frameLines,
  layoutFor,
  plainLine,
  rolloutHeader,
  sanitize,
  truncate,
  type ProgressRow,
} from '../src/client/progress.js';
import { SseParser, sseEvents, type SseEvent } from '../src/client/sse.js';
import { deploymentRequest } from '../src/commands/deploy.js';
import { rolloutSummary } from '../src/commands/deployments.js';

const MAIN = fileURLToPath(new URL('../src/main.js', import.meta.url));
const ANY_ESCAPE = /\x1b/;
const stripAnsi = (s: string) => s.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '');

const row = (over: Partial<ProgressRow> = {}): ProgressRow => ({
  key: 'd1',
  label: 'web-01',
  status: 'running',
  done: 5,
  total: 9,
  step: 'upload',
  ...over,
});

function deployment(over: Partial<Deployment> = {}): Deployment {
  const names = ['connect', 'detect', 'upload', 'install', 'start'];
  return {
    id: '11111111-1111-4111-8111-111111111111',
    rollout_id: '22222222-2222-4222-8222-222222222222',
    type: 'install',
    device_id: '33333333-3333-4333-8333-333333333333',
    device_name: 'web-01',
    area: 'area-1',
    version: '1.4.0',
    status: 'running',
    attempt: 1,
    retry_of: null,
    cancel_requested: false,
    steps: names.map((name, i) => ({
      name,
      status: i < 2 ? 'succeeded' : i === 2 ? 'running' : 'pending',
      started_at: null,
      finished_at: null,
      message: null,
    })),
    error: null,
    error_code: null,
    requested_by: 'admin',
    created_at: '2025-01-01T00:00:00Z',
    started_at: '2025-01-01T00:00:01Z',
    finished_at: null,
    duration_ms: null,
    ...over,
  };
}

/** A terminal of `columns`×`rows` that records what is written to it. */
function fakeTerminal(columns = 80, rows = 24, color = true) {
  const writes: string[] = [];
  const display = new ProgressDisplay({
    mode: 'tty',
    write: (s) => writes.push(s),
    columns: () => columns,
    rows: () => rows,
    color,
  });
  return { display, writes };
}

describe('progress rendering', () => {
  it('draws bars and cuts text to a width', () => {
    assert.equal(bar(5, 10, 10), '[#####·····]');
    assert.equal(bar(0, 9, 5), '[·····]');
    assert.equal(bar(9, 9, 5), '[#####]');
    assert.equal(bar(3, 0, 4), '[····]', 'no steps known yet: empty bar');
    assert.equal(bar(12, 9, 4), '[####]', 'never overflows');
    assert.equal(truncate('abcdef', 4), 'abc…');
    assert.equal(truncate('abc', 4), 'abc');
    assert.equal(truncate('abc', 0), '');
  });

  it('formats a row like `web-01  running    [#####·····] 5/9 upload`', () => {
    const l = formatRow(row(), { columns: 80, labelWidth: 6, barWidth: 10, color: false });
    assert.equal(l, 'web-01  running    [#####·····] 5/9 upload');
    const failed = formatRow(row({ status: 'failed', detail: 'ssh: connection refused' }), {
      columns: 80,
      labelWidth: 8,
      barWidth: 10,
      color: false,
    });
    assert.equal(failed, 'web-01    failed     [#####·····] 5/9 upload — ssh: connection refused');
  });

  it('fits every line to the terminal width, shrinking or dropping the bar when narrow', () => {
    const rows = [
      row({ label: 'a-rather-long-device-name-in-the-east-wing', detail: 'x'.repeat(300) }),
      row({ key: 'd2', label: 'db', status: 'succeeded', done: 9, step: '' }),
    ];
    for (const columns of [20, 40, 60, 80, 132, 200]) {
      const lines = frameLines('rollout 1234 install: ' + 'y'.repeat(300), rows, { columns, rows: 24 }, true);
      assert.equal(lines.length, 3);
      for (const l of lines)
        assert.ok(stripAnsi(l).length <= columns - 1, `${columns} cols: '${stripAnsi(l)}' is too wide`);
    }
    assert.equal(layoutFor(rows, 132, false).barWidth, 20);
    assert.equal(layoutFor(rows, 70, false).barWidth, 10);
    assert.equal(layoutFor(rows, 30, false).barWidth, 0);
    assert.doesNotMatch(frameLines(undefined, rows, { columns: 30, rows: 24 }, false)[0] ?? '', /\[/);
  });

  it('colours the status on a terminal, and not with colour off', () => {
    const layout = { columns: 80, labelWidth: 6, barWidth: 10, color: true };
    assert.equal(formatRow(row({ status: 'failed' }), layout).includes('\x1b[31mfailed\x1b[0m'), true);
    assert.equal(formatRow(row({ status: 'succeeded' }), layout).includes('\x1b[32msucceeded\x1b[0m'), true);
    assert.doesNotMatch(formatRow(row(), { ...layout, color: false }), ANY_ESCAPE);
    assert.equal(stripAnsi(formatRow(row(), layout)), formatRow(row(), { ...layout, color: false }));
  });

  it('turns colour off for NO_COLOR, TERM=dumb and non-terminals', () => {
    assert.equal(colorEnabled({}, true), true);
    assert.equal(colorEnabled({ NO_COLOR: '1' }, true), false);
    assert.equal(colorEnabled({ NO_COLOR: '' }, true), true, 'an empty NO_COLOR does not count');
    assert.equal(colorEnabled({ TERM: 'dumb' }, true), false);
    assert.equal(colorEnabled({}, false), false);
  });

  it('redraws the block in place on a terminal: cursor up, clear line, redraw', () => {
    const { display, writes } = fakeTerminal(80, 24, false);
    display.update('rollout 1', [row(), row({ key: 'd2', label: 'web-02', status: 'queued', done: 0 })]);
    assert.equal(writes.length, 1);
    const first = writes[0] ?? '';
    assert.doesNotMatch(first, /\x1b\[\d+A/, 'nothing to move over the first time');
    assert.equal(first.match(/\x1b\[2K/g)?.length, 3, 'header + 2 rows, each cleared first');
    assert.equal(first.split('\n').length - 1, 3);

    display.update('rollout 1', [row({ done: 6, step: 'install' }), row({ key: 'd2', label: 'web-02' })]);
    const second = writes[1] ?? '';
    assert.ok(second.startsWith('\x1b[3A\r'), 'back up over the 3 lines drawn');
    assert.match(second, /6\/9 install/);

    // A shorter block clears what is left below it.
    display.update('rollout 1', [row({ status: 'succeeded', done: 9, step: '' })]);
    const third = writes[2] ?? '';
    assert.ok(third.startsWith('\x1b[3A\r'));
    assert.ok(third.endsWith('\x1b[J'));

    // A log line goes above the block, which is drawn again below it.
    display.log('12:00:00 info  upload: sent 3 MB');
    const fourth = writes[3] ?? '';
    assert.ok(fourth.startsWith('\x1b[2A\r\x1b[J12:00:00 info  upload: sent 3 MB\n'));
    assert.match(fourth, /succeeded/);

    display.finish();
    display.update('again', [row()]);
    assert.doesNotMatch(writes[4] ?? '', /\x1b\[\d+A/, 'after finish the next block starts below');
  });

  it('keeps running and failed rows when the block is taller than the terminal', () => {
    const rows: ProgressRow[] = [];
    for (let i = 0; i < 30; i++)
      rows.push(
        row({
          key: `d${i}`,
          label: `dev-${i}`,
          status: i === 25 ? 'failed' : i === 27 ? 'running' : i < 20 ? 'succeeded' : 'queued',
        }),
      );
    const lines = frameLines('hdr', rows, { columns: 80, rows: 10 }, false);
    assert.equal(lines.length, 9, 'header + 7 rows + "more" fit in 10 - 1 lines');
    assert.ok(lines.some((l) => l.startsWith('dev-25')));
    assert.ok(lines.some((l) => l.startsWith('dev-27')));
    assert.match(lines.at(-1) ?? '', /^… 23 more: /);
    assert.match(lines.at(-1) ?? '', /succeeded/);
  });

  it('prints one plain line per change and never an escape code off a terminal', () => {
    const lines: string[] = [];
    const display = new ProgressDisplay({ mode: 'plain', line: (l) => lines.push(l) });
    display.update('hdr', [
      row({ status: 'queued', done: 0, step: '' }),
      row({ key: 'd2', label: 'web-02' }),
    ]);
    assert.deepEqual(lines, ['web-01: queued 0/9', 'web-02: running 5/9 upload']);
    display.update('hdr 2', [
      row({ status: 'queued', done: 0, step: '' }),
      row({ key: 'd2', label: 'web-02' }),
    ]);
    assert.equal(lines.length, 2, 'nothing changed, nothing printed');
    display.update('hdr', [
      row({ step: 'connect', done: 0 }),
      row({ key: 'd2', label: 'web-02', status: 'failed', detail: '\x1b[31mdisk full\x1b[0m' }),
    ]);
    assert.deepEqual(lines.slice(2), [
      'web-01: running 0/9 connect',
      'web-02: failed 5/9 upload — disk full',
    ]);
    display.log('\x1b[33mwarn\x1b[0m something');
    assert.equal(lines.at(-1), 'warn something');
    for (const l of lines) assert.doesNotMatch(l, ANY_ESCAPE);
    assert.equal(plainLine(row({ step: '' })), 'web-01: running 5/9');
  });

  it('draws nothing in quiet mode', () => {
    const display = new ProgressDisplay({ mode: 'none' });
    display.update('x', [row()]);
    display.log('y');
    display.finish();
  });

  it('strips control characters from server text', () => {
    assert.equal(sanitize('a\x1b[2Jb\x07c\nd\te'), 'abcd\te');
  });

  it('maps deployments and rollouts to rows, headers, log lines and the summary', () => {
    const d = deployment();
    assert.deepEqual(deploymentRow(d), {
      key: d.id,
      label: 'web-01',
      status: 'running',
      done: 2,
      total: 5,
      step: 'upload',
      detail: undefined,
    });
    const failed = deployment({
      id: '44444444-4444-4444-8444-444444444444',
      device_name: 'web-02',
      status: 'failed',
      error: 'sudo: a password is required',
      error_code: 'sudo_failed',
      steps: deployment().steps.map((s) => (s.name === 'upload' ? { ...s, status: 'failed' } : s)),
    });
    assert.equal(deploymentRow(failed).step, 'upload');
    const early = deployment({
      status: 'failed',
      steps: deployment().steps.map((s, i) => ({ ...s, status: i === 0 ? 'failed' : 'skipped' })),
    });
    assert.equal(deploymentRow(early).done, 0, 'steps skipped after a failure are not progress');
    assert.equal(deploymentRow(early).step, 'connect');
    assert.equal(deploymentRow(failed).detail, 'sudo: a password is required');
    const ok = deployment({
      status: 'succeeded',
      steps: deployment().steps.map((s) => ({ ...s, status: 'succeeded' })),
    });
    assert.equal(deploymentRow(ok).done, 5);
    assert.equal(deploymentRow(ok).step, '');

    const rollout: Rollout = {
      id: '22222222-2222-4222-8222-222222222222',
      type: 'install',
      version: '1.4.0',
      batch_size: 2,
      max_failures: 0,
      status: 'failed',
      requested_by: 'admin',
      created_at: '2025-01-01T00:00:00Z',
      finished_at: '2025-01-01T00:05:00Z',
      counts: { total: 2, queued: 0, running: 0, succeeded: 1, failed: 1, cancelled: 0 },
      deployments: [ok, failed],
    };
    assert.equal(
      rolloutHeader(rollout),
      'rollout 22222222 install 1.4.0: 2/2 done (1 ok, 1 failed) · 0 running, 0 queued · failed',
    );
    const s = rolloutSummary(rollout);
    assert.equal(s.code, 1);
    assert.match(s.lines[0] ?? '', /1 succeeded, 1 failed, 0 cancelled of 2 device\(s\)/);
    assert.ok(
      s.lines.some((l) => l.includes('web-02') && l.includes(failed.id) && l.includes('[sudo_failed]')),
    );
    assert.ok(!s.lines.some((l) => l.includes(ok.id)), 'succeeded devices are not listed');
    const allOk = rolloutSummary({
      ...rollout,
      status: 'succeeded',
      counts: { ...rollout.counts, succeeded: 2, failed: 0 },
      deployments: [ok, ok],
    });
    assert.equal(allOk.code, 0);
    assert.equal(allOk.lines.length, 1);

    const line = {
      seq: 3,
      at: '2025-01-01T00:00:03Z',
      level: 'warn' as const,
      step: 'upload',
      message: 'slow link',
    };
    assert.match(formatLogLine(line, false), /^\d\d:\d\d:\d\d warn {2}upload: slow link$/);
    assert.match(formatLogLine(line, true), /\x1b\[33mwarn \x1b\[0m/);
    assert.match(formatLogLine({ ...line, message: 'upload: started' }, false), / warn {2}upload: started$/);
    assert.match(formatLogLine({ ...line, step: null }, false), / warn {2}slow link$/);
  });
});

describe('SSE parser', () => {
  const stream = 'event: deployment\ndata: {"a":1}\n\n: heartbeat\n\nid: 7\nevent: log\ndata: {"seq":7}\n\n';
  const expected: SseEvent[] = [
    { event: 'deployment', data: '{"a":1}', id: '' },
    { event: 'log', data: '{"seq":7}', id: '7' },
  ];

  it('parses events, ignoring comments (heartbeats)', () => {
    const p = new SseParser();
    assert.deepEqual(p.push(stream), expected);
    assert.equal(p.comments, 1);
    assert.equal(p.lastEventId, '7');
  });

  it('handles chunks split anywhere, even one character at a time', () => {
    for (const size of [1, 2, 3, 5, 7, 13]) {
      const p = new SseParser();
      const got: SseEvent[] = [];
      for (let i = 0; i < stream.length; i += size) got.push(...p.push(stream.slice(i, i + size)));
      assert.deepEqual(got, expected, `chunks of ${size}`);
    }
  });

  it('accepts CRLF and CR line ends, also when CR and LF arrive in different chunks', () => {
    const crlf = stream.replace(/\n/g, '\r\n');
    const p = new SseParser();
    const got: SseEvent[] = [];
    for (let i = 0; i < crlf.length; i++) got.push(...p.push(crlf[i] ?? ''));
    assert.deepEqual(got, expected);
    assert.deepEqual(new SseParser().push(stream.replace(/\n/g, '\r')), expected);
  });

  it('joins multi-line data with newlines and keeps empty data lines', () => {
    const p = new SseParser();
    assert.deepEqual(p.push('data: first\ndata:second\ndata\ndata:  indented\n\n'), [
      { event: 'message', data: 'first\nsecond\n\n indented', id: '' },
    ]);
    assert.deepEqual(p.push('data:\n\n'), [{ event: 'message', data: '', id: '' }]);
  });

  it('keeps the last id for later events, ignores ids with NUL, reads retry', () => {
    const p = new SseParser();
    const got = p.push(
      'id: 1\ndata: a\n\ndata: b\n\nid: x\0y\ndata: c\n\nretry: 2500\nretry: soon\n\nid\ndata: d\n\n',
    );
    assert.deepEqual(
      got.map((e) => [e.data, e.id]),
      [
        ['a', '1'],
        ['b', '1'],
        ['c', '1'],
        ['d', ''],
      ],
    );
    assert.equal(p.retry, 2500);
  });

  it('does not dispatch events without data, unfinished events, or unknown fields', () => {
    const p = new SseParser();
    assert.deepEqual(p.push('event: end\n\nfoo: bar\n\ndata: half'), []);
    assert.deepEqual(p.push('\n'), [], 'the line is complete but the event is not');
    p.reset();
    assert.deepEqual(p.push('\n'), [], 'reset dropped the half event');
  });

  it('drops a byte order mark at the start', () => {
    assert.deepEqual(new SseParser().push('\ufeffdata: x\n\n'), [{ event: 'message', data: 'x', id: '' }]);
  });
});

describe('SSE reader', () => {
  /** A response whose body delivers `chunks` and then ends (or errors, to simulate a drop). */
  function response(chunks: string[], drop = false): Response {
    const enc = new TextEncoder();
    let i = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(c) {
        const next = chunks[i++];
        if (next !== undefined) c.enqueue(enc.encode(next));
        else if (drop) c.error(new Error('connection reset'));
        else c.close();
      },
    });
    return new Response(body, { headers: { 'content-type': 'text/event-stream' } });
  }

  it('reconnects with the last event id after a drop, until the consumer stops', async () => {
    const opened: string[] = [];
    const reconnects: string[] = [];
    const got: string[] = [];
    const events = sseEvents({
      retryMs: 1,
      open: async (lastEventId) => {
        opened.push(lastEventId);
        return opened.length === 1
          ? response(
              ['id: 1\nevent: log\ndata: one\n\nid: 2\nevent: log\nda', 'ta: two\n\nid: 3\ndata: thr'],
              true,
            )
          : response(['id: 3\nevent: log\ndata: three\n\nevent: end\ndata: {}\n\n']);
      },
      onReconnect: (n, why) => reconnects.push(`${n}: ${why}`),
    });
    for await (const e of events) {
      got.push(`${e.event}:${e.data}`);
      if (e.event === 'end') break;
    }
    assert.deepEqual(got, ['log:one', 'log:two', 'log:three', 'end:{}']);
    assert.deepEqual(opened, ['', '2'], 'the half-received event 3 is not counted as received');
    assert.equal(reconnects.length, 1);
    assert.match(reconnects[0] ?? '', /connection reset/);
  });

  it('gives up after maxRetries reconnections without an event', async () => {
    let opens = 0;
    const events = sseEvents({
      retryMs: 1,
      maxRetries: 2,
      open: async () => {
        opens++;
        throw new Error('ECONNREFUSED');
      },
    });
    await assert.rejects(async () => {
      for await (const _ of events) assert.fail('no events expected');
    }, /lost the event stream \(ECONNREFUSED\)/);
    assert.equal(opens, 3);
  });

  it('treats a silent stream as dropped', async () => {
    let opens = 0;
    const events = sseEvents({
      retryMs: 1,
      idleTimeoutMs: 50,
      open: async (_id, signal) => {
        opens++;
        if (opens > 1) return response(['data: late\n\n']);
        // Headers arrive, then nothing: the body errors once the reader aborts it.
        const body = new ReadableStream<Uint8Array>({
          start(c) {
            signal.addEventListener('abort', () => c.error(signal.reason));
          },
        });
        return new Response(body);
      },
    });
    for await (const e of events) {
      assert.equal(e.data, 'late');
      break;
    }
    assert.equal(opens, 2);
  });

  it('stops at once when the signal aborts', async () => {
    const ac = new AbortController();
    const events = sseEvents({
      signal: ac.signal,
      open: async () => response(['data: a\n\n', 'data: b\n\n']),
    });
    const got: string[] = [];
    for await (const e of events) {
      got.push(e.data);
      ac.abort();
    }
    assert.deepEqual(got, ['a']);
  });
});

describe('deploy arguments', () => {
  it('builds the DeploymentCreate body', () => {
    assert.deepEqual(deploymentRequest([], { devices: ['web-01,web-02', ' web-03 '] }), {
      type: 'install',
      devices: ['web-01', 'web-02', 'web-03'],
    });
    assert.deepEqual(
      deploymentRequest(['upgrade'], {
        area: 'area-1',
        version: '1.4.0-rc.1',
        'batch-size': '5',
        'max-failures': '0',
        'accept-host-key': true,
      }),
      {
        type: 'upgrade',
        area: 'area-1',
        version: '1.4.0-rc.1',
        batch_size: 5,
        max_failures: 0,
        accept_changed_host_key: true,
      },
    );
    assert.deepEqual(deploymentRequest(['restart'], { 'all-new': true }), { type: 'restart', all_new: true });
  });

  it('rejects what the server would reject, as usage errors', () => {
    const bad: [string[], Parameters<typeof deploymentRequest>[1], RegExp][] = [
      [[], {}, /say which devices/],
      [[], { devices: ['a'], area: 'x' }, /only one of/],
      [[], { area: 'x', 'all-new': true }, /only one of/],
      [[], { devices: [','] }, /at least one device/],
      [['reinstall'], { area: 'x' }, /unknown action 'reinstall'/],
      [['install', 'extra'], { area: 'x' }, /unexpected argument 'extra'/],
      [[], { area: 'x', 'batch-size': '0' }, /--batch-size must be a whole number from 1 to 1000/],
      [[], { area: 'x', 'batch-size': 'ten' }, /--batch-size/],
      [[], { area: 'x', 'batch-size': '2.5' }, /--batch-size/],
      [[], { area: 'x', 'batch-size': '1001' }, /--batch-size/],
      [[], { area: 'x', 'max-failures': '-1' }, /--max-failures must be a whole number from 0/],
      [[], { area: 'x', version: 'latest' }, /--version must look like 1.2.3/],
      [['uninstall'], { area: 'x', version: '1.2.3' }, /--version goes with install or upgrade/],
    ];
    for (const [pos, flags, re] of bad)
      assert.throws(
        () => deploymentRequest(pos, flags),
        (e: unknown) => e instanceof UsageError && re.test(e.message),
        `${pos.join(' ')} ${JSON.stringify(flags)}`,
      );
  });
});

describe('opsplane deploy / deployments command line', () => {
  const config = mkdtempSync(join(tmpdir(), 'opsplane-deploy-cli-'));
  after(() => rmSync(config, { recursive: true, force: true }));

  function opsplane(args: string[]) {
    const r = spawnSync(process.execPath, [MAIN, ...args], {
      encoding: 'utf8',
      // Nowhere to connect to: every case below must fail before any request.
      env: {
        ...process.env,
        OPSPLANE_CONFIG_DIR: config,
        OPSPLANE_SERVER: 'http://127.0.0.1:9',
        OPSPLANE_TOKEN: 't',
      },
      timeout: 15_000,
    });
    return { code: r.status, out: r.stdout, err: r.stderr };
  }

  it('lists both commands in the help and has per-command help', () => {
    const main = opsplane(['--help']);
    assert.match(main.out, /^ {2}deploy /m);
    assert.match(main.out, /^ {2}deployments /m);
    const deploy = opsplane(['deploy', '--help']);
    assert.equal(deploy.code, 0);
    for (const flag of [
      '--devices',
      '--area',
      '--all-new',
      '--version',
      '--batch-size',
      '--max-failures',
      '--accept-host-key',
      '--detach',
      '--json',
    ])
      assert.match(deploy.out, new RegExp(flag));
    assert.match(deploy.out, /opsplane deployments watch <rollout-id>/);
    const deployments = opsplane(['deployments', '--help']);
    assert.equal(deployments.code, 0);
    assert.match(deployments.out, /list\|show\|watch\|cancel\|retry\|bundles/);
    assert.match(deployments.out, /--upload/);
  });

  it('exits 2 for usage errors, before contacting the server', () => {
    const cases: [string[], RegExp][] = [
      [['deploy'], /say which devices/],
      [['deploy', '--devices', 'a', '--area', 'b'], /only one of --devices, --area and --all-new/],
      [['deploy', '--devices', 'a', '--all-new'], /only one of/],
      [['deploy', '--all-new', '--batch-size', '0'], /--batch-size must be a whole number/],
      [['deploy', '--all-new', '--batch-size', 'lots'], /--batch-size must be a whole number/],
      [['deploy', '--all-new', '--max-failures=-3'], /--max-failures must be a whole number/],
      [['deploy', 'frobnicate', '--all-new'], /unknown action 'frobnicate'/],
      [['deploy', 'restart', '--all-new', '--version', '1.2.3'], /--version goes with install or upgrade/],
      [['deploy', '--all-new', '--bogus'], /--bogus/],
      [['deployments'], /say list, show/],
      [['deployments', 'frob'], /unknown action 'frob'/],
      [['deployments', 'watch'], /watch needs a rollout or deployment id/],
      [['deployments', 'show', 'a', 'b'], /unexpected argument 'b'/],
      [['deployments', 'list', '--status', 'done'], /--status must be one of/],
      [['deployments', 'list', '--upload', 'x.tar.gz'], /--upload goes with bundles/],
      [['deployments', 'watch', 'x', '--detach'], /--detach goes with retry/],
    ];
    for (const [args, re] of cases) {
      const r = opsplane(args);
      assert.equal(r.code, 2, `${args.join(' ')}: exit ${r.code}, stderr ${r.err}`);
      assert.match(r.err, re, args.join(' '));
      assert.match(r.err, /Run 'opsplane deploy(ments)? --help' for usage\./);
    }
  });
});
