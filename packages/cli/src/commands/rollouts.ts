/**
 * `opsplane rollouts start|list|show|watch|pause|resume|cancel` — staged rollouts of a policy
 * revision: waves of `--batch-size` agents (or `--batch-percent`), a pause between waves, and a
 * halt with rollback after `--max-failures`. `start` and `watch` follow the rollout's event
 * stream with a progress bar per wave (as `batch` does) and a line per failed agent, then print
 * the waves and the failures; exit 1 unless it succeeded. (Agent deployments over SSH are
 * `opsplane deployments`.)
 */
import { parseDuration } from '@opsplane/kit';
import {
  POLICY_ROLLOUT_STATUSES,
  isRolloutActive,
  type PolicyRollout,
  type PolicyRolloutCreateInput,
  type RolloutAgent,
  type RolloutWave,
} from '@opsplane/api';
import { EXIT, UsageError, defineCommand, type CliIO, actionOf } from '../command.js';
import { ApiError, connect, type ApiClient } from '../client/api.js';
import { outputOption, serverOption, wantsJson } from '../client/common-options.js';
import { resolvePolicy, withHints } from '../client/distribution.js';
import { ago, json, table } from '../client/format.js';
import type { ProgressDisplay } from '../client/progress.js';
import { sanitize, type ProgressRow } from '../client/progress.js';
import { sseEvents } from '../client/sse.js';
import { EXIT_INTERRUPTED, withProgress } from './deployments.js';

const ACTIONS = ['start', 'list', 'show', 'watch', 'pause', 'resume', 'cancel'] as const;
const START_FLAGS = [
  'revision',
  'batch-size',
  'batch-percent',
  'pause',
  'max-failures',
  'wave-timeout',
] as const;
const FINISHED_AGENT = new Set(['applied', 'failed', 'rolled_back', 'skipped']);
const WAVE_DISPLAY: Record<RolloutWave['status'], string> = {
  pending: 'pending',
  running: 'running',
  done: 'succeeded',
  failed: 'failed',
};

const usage = (m: string) => new UsageError(m, 'rollouts');

function intFlag(v: string | undefined, flag: string, min: number, max: number): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!/^\d+$/.test(v) || n < min || n > max)
    throw usage(`--${flag} takes an integer from ${min} to ${max} (got '${v}')`);
  return n;
}

function durationFlag(v: string | undefined, flag: string): number | undefined {
  if (v === undefined) return undefined;
  try {
    return parseDuration(v);
  } catch {
    throw usage(`--${flag} takes a duration such as 30s or 5m (got '${v}')`);
  }
}

const ms = (n: number) => (n % 60_000 === 0 && n > 0 ? `${n / 60_000}m` : `${n / 1000}s`);

/** `rollout 3f2a… web-prod r4: wave 2/5 · 12/40 done (11 applied, 1 failed) · running` */
export function rolloutHeader(r: PolicyRollout): string {
  const c = r.counts;
  const done = c.applied + c.failed + c.rolled_back + c.skipped;
  const outcome = [
    `${c.applied} applied`,
    c.failed ? `${c.failed} failed` : '',
    c.rolled_back ? `${c.rolled_back} rolled back` : '',
    c.skipped ? `${c.skipped} skipped` : '',
  ]
    .filter(Boolean)
    .join(', ');
  return (
    `rollout ${r.id.slice(0, 8)} ${r.policy_name} r${r.revision}: wave ${r.current_wave}/${r.waves.length}` +
    ` · ${done}/${c.total} done (${outcome}) · ${r.status}${r.message ? ` — ${r.message}` : ''}`
  );
}

/** One progress row per wave: its agents finished of its agents. */
export function waveRows(r: PolicyRollout, agents: ReadonlyMap<string, RolloutAgent>): ProgressRow[] {
  return r.waves.map((w) => {
    const mine = [...agents.values()].filter((a) => a.wave === w.index);
    const finished = mine.filter((a) => FINISHED_AGENT.has(a.status));
    const failed = finished.filter((a) => a.status !== 'applied' && a.status !== 'skipped').length;
    return {
      key: `wave-${w.index}`,
      label: `wave ${w.index}`,
      status: WAVE_DISPLAY[w.status],
      done: finished.length,
      total: Math.max(w.agents, mine.length),
      step: `agents · ${finished.length - failed} applied, ${failed} failed`,
    };
  });
}

/** A line for an agent that failed or was rolled back, as it happens. */
export function agentLine(a: RolloutAgent): string {
  return sanitize(
    `${a.agent_code} (${a.area}, wave ${a.wave}): ${a.status.toUpperCase().replace('_', ' ')}` +
      (a.error ? ` — ${a.error.message} [${a.error.code}]` : ''),
  );
}

function printRollout(r: PolicyRollout, io: CliIO): void {
  io.out(rolloutHeader(r).replace(r.id.slice(0, 8), r.id));
  io.out(
    `  ${r.batch_size} agent(s) per wave, pause ${ms(r.pause_ms)}, ` +
      `${r.max_failures ? `halts after more than ${r.max_failures} failure(s)` : 'halts at the first failure'}, ` +
      `wave timeout ${ms(r.wave_timeout_ms)}; from revision ${r.previous_revision ?? 'none'}; ` +
      `started by ${r.created_by} ${ago(r.created_at)}`,
  );
  io.out('');
  for (const l of table(
    ['WAVE', 'STATUS', 'AGENTS', 'STARTED', 'FINISHED'],
    r.waves.map((w) => [String(w.index), w.status, String(w.agents), ago(w.started_at), ago(w.finished_at)]),
  ))
    io.out(`  ${l}`);
  if (r.agents?.length) {
    io.out('');
    for (const l of table(
      ['AGENT', 'AREA', 'WAVE', 'STATUS', 'ERROR'],
      r.agents.map((a) => [
        a.agent_code,
        a.area,
        String(a.wave),
        a.status,
        a.error ? `${a.error.message} [${a.error.code}]` : '',
      ]),
    ))
      io.out(`  ${sanitize(l)}`);
  }
}

/** The end of a watch: the outcome, the agents that did not apply, and the exit code. */
export function rolloutSummary(r: PolicyRollout): { lines: string[]; code: number } {
  const c = r.counts;
  const lines = [
    `rollout ${r.id} of ${r.policy_name} revision ${r.revision} ${r.status}: ` +
      `${c.applied} of ${c.total} agent(s) applied` +
      (c.failed ? `, ${c.failed} failed` : '') +
      (c.rolled_back ? `, ${c.rolled_back} rolled back` : '') +
      (c.skipped ? `, ${c.skipped} skipped` : '') +
      (r.message ? ` — ${r.message}` : ''),
  ];
  const bad = (r.agents ?? []).filter((a) => a.status === 'failed' || a.status === 'rolled_back');
  if (bad.length)
    lines.push(
      ...table(
        ['AGENT', 'AREA', 'WAVE', 'STATUS', 'ERROR'],
        bad.map((a) => [
          a.agent_code,
          a.area,
          String(a.wave),
          a.status,
          a.error ? `${a.error.message} [${a.error.code}]` : '',
        ]),
      ).map((l) => `  ${sanitize(l)}`),
    );
  return { lines, code: r.status === 'succeeded' ? EXIT.ok : EXIT.failure };
}

/**
 * Follows a rollout's event stream to its end, drawing a bar per wave; resolves with the
 * finished rollout (with its agents), or undefined when Ctrl-C stopped watching. On every
 * (re)connection the agents are read whole once, so nothing missed while away is lost.
 */
export async function followRollout(
  api: ApiClient,
  first: PolicyRollout,
  display: ProgressDisplay,
  signal: AbortSignal,
): Promise<PolicyRollout | undefined> {
  let r = first;
  const agents = new Map<string, RolloutAgent>();
  const take = (list: readonly RolloutAgent[] | undefined) => {
    for (const a of list ?? []) agents.set(a.agent_code, a);
  };
  const reported = new Set<string>();
  const report = (a: RolloutAgent) => {
    const k = `${a.agent_code}|${a.status}`;
    if ((a.status === 'failed' || a.status === 'rolled_back') && !reported.has(k)) {
      reported.add(k);
      display.log(agentLine(a));
    }
  };
  take(r.agents);
  const show = () => display.update(rolloutHeader(r), waveRows(r, agents));
  show();
  const events = sseEvents({
    signal,
    open: async (lastEventId, s) => {
      const res = await api.open(
        'GET /policy-rollouts/:id/events',
        { params: { id: r.id } },
        {
          headers: { accept: 'text/event-stream', ...(lastEventId ? { 'last-event-id': lastEventId } : {}) },
          signal: s,
        },
      );
      const whole = await api.call('GET /policy-rollouts/:id', { params: { id: r.id } }, { signal: s });
      r = whole;
      take(whole.agents);
      for (const a of whole.agents ?? []) report(a);
      show();
      return res;
    },
    onReconnect: (n, why) => display.log(`(event stream dropped: ${why}; reconnecting, attempt ${n})`),
  });
  for await (const ev of events) {
    let data: unknown;
    try {
      data = JSON.parse(ev.data);
    } catch {
      continue;
    }
    if (ev.event === 'agent') {
      const a = data as RolloutAgent;
      agents.set(a.agent_code, a);
      report(a);
      show();
    } else if (ev.event === 'rollout' || ev.event === 'end') {
      const next = data as PolicyRollout;
      r = { ...next, agents: next.agents ?? r.agents };
      take(next.agents);
      show();
      if (ev.event === 'end') {
        for (const a of next.agents ?? []) report(a);
        return next.agents ? next : api.call('GET /policy-rollouts/:id', { params: { id: r.id } });
      }
    }
  }
  return undefined;
}

async function watch(api: ApiClient, r: PolicyRollout, asJson: boolean, io: CliIO): Promise<number> {
  const final = await withProgress(io, asJson, (display, signal) => followRollout(api, r, display, signal));
  if (!final) {
    io.err(`stopped watching; rollout ${r.id} runs on: opsplane rollouts watch ${r.id}`);
    return EXIT_INTERRUPTED;
  }
  return finish(final, asJson, io);
}

function finish(r: PolicyRollout, asJson: boolean, io: CliIO): number {
  const s = rolloutSummary(r);
  if (asJson) io.out(json(r));
  else for (const l of s.lines) io.out(l);
  return s.code;
}

export default defineCommand({
  name: 'rollouts',
  summary: 'Roll a policy revision out in waves; list, show, watch, pause, resume or cancel rollouts.',
  positionals: '<start|list|show|watch|pause|resume|cancel> [policy|id]',
  options: {
    server: serverOption,
    revision: { type: 'string', value: '<n>', description: 'start: the revision (default the latest)' },
    'batch-size': { type: 'string', value: '<n>', description: 'start: agents per wave' },
    'batch-percent': {
      type: 'string',
      value: '<p>',
      description: 'start: agents per wave as a percentage of all (default 100)',
    },
    pause: { type: 'string', value: '<duration>', description: 'start: pause between waves, e.g. 30s' },
    'max-failures': {
      type: 'string',
      value: '<n>',
      description: 'start: more failures than this halt the rollout and roll back (default 0)',
    },
    'wave-timeout': {
      type: 'string',
      value: '<duration>',
      description: 'start: an agent silent this long in its wave counts as failed (default 5m)',
    },
    'no-wait': { type: 'boolean', description: 'start: return at once (prints the id)' },
    policy: { type: 'string', value: '<name|id>', description: 'list: only this policy' },
    status: {
      type: 'string',
      value: '<s>',
      description: `list: ${POLICY_ROLLOUT_STATUSES.join(', ')}`,
    },
    page: { type: 'string', value: '<n>', description: 'list: page (from 1)' },
    output: outputOption,
    json: { type: 'boolean', description: 'same as --output json' },
  },
  details: [
    'The agents the policy matches are split in waves; each wave gets the revision and the rollout',
    'waits for every agent of it to report applied or failed, then pauses. More failures than',
    '--max-failures halt it and every agent it touched rolls back to its previous revision.',
    'start and watch show a bar per wave and a line per failed agent; Ctrl-C stops watching only',
    '(exit 130). Exit code 1 unless the rollout succeeded.',
    '',
    'Examples:',
    '  opsplane rollouts start web-prod --batch-size 5 --pause 30s --max-failures 1',
    '  opsplane rollouts start web-prod --batch-percent 25 --no-wait',
    '  opsplane rollouts watch 3f2a…',
    '  opsplane rollouts pause 3f2a…',
    '  opsplane rollouts list --policy web-prod',
  ].join('\n'),
  async run(v, io) {
    const [action, arg, ...extra] = v._;
    actionOf(ACTIONS, action, 'rollouts');
    if (extra.length) throw usage(`unexpected argument '${extra[0]}'`);
    const asJson = wantsJson(v, 'rollouts');
    if (action !== 'start') {
      const given = [...START_FLAGS, 'no-wait' as const].find((k) => v[k] !== undefined);
      if (given) throw usage(`--${given} goes with start`);
    }
    if (action !== 'list') {
      const given = (['policy', 'status', 'page'] as const).find((k) => v[k] !== undefined);
      if (given) throw usage(`--${given} goes with list`);
    }

    if (action === 'list') {
      if (arg) throw usage(`unexpected argument '${arg}'`);
      if (v.status !== undefined && !(POLICY_ROLLOUT_STATUSES as readonly string[]).includes(v.status))
        throw usage(`--status must be one of ${POLICY_ROLLOUT_STATUSES.join(', ')}`);
      const api = await connect(v.server);
      const policy = v.policy ? await resolvePolicy(api, v.policy) : undefined;
      const r = await api.call('GET /policy-rollouts', {
        query: {
          policy_id: policy?.id,
          status: v.status as PolicyRollout['status'] | undefined,
          page: v.page,
        },
      });
      if (asJson) {
        io.out(json(r));
        return EXIT.ok;
      }
      for (const l of table(
        ['ID', 'POLICY', 'REV', 'STATUS', 'WAVE', 'APPLIED', 'FAILED', 'BY', 'STARTED'],
        r.items.map((x) => [
          x.id,
          x.policy_name,
          String(x.revision),
          x.status,
          `${x.current_wave}/${x.waves.length}`,
          `${x.counts.applied}/${x.counts.total}`,
          String(x.counts.failed + x.counts.rolled_back),
          x.created_by,
          ago(x.created_at),
        ]),
      ))
        io.out(sanitize(l));
      io.out(`${r.total} rollout(s); page ${r.page} of ${Math.max(1, Math.ceil(r.total / r.pageSize))}`);
      return EXIT.ok;
    }

    if (!arg)
      throw usage(
        action === 'start'
          ? 'start needs a policy: opsplane rollouts start <policy>'
          : `${action} needs a rollout id`,
      );

    if (action === 'start') {
      if (v['batch-size'] !== undefined && v['batch-percent'] !== undefined)
        throw usage('give --batch-size or --batch-percent, not both');
      const body: PolicyRolloutCreateInput = { policy_id: '' };
      const revision = intFlag(v.revision, 'revision', 1, 1_000_000_000);
      const size = intFlag(v['batch-size'], 'batch-size', 1, 100_000);
      const percent = intFlag(v['batch-percent'], 'batch-percent', 1, 100);
      const maxFailures = intFlag(v['max-failures'], 'max-failures', 0, 1_000_000);
      const pause = durationFlag(v.pause, 'pause');
      const waveTimeout = durationFlag(v['wave-timeout'], 'wave-timeout');
      if (revision !== undefined) body.revision = revision;
      if (size !== undefined) body.batch_size = size;
      if (percent !== undefined) body.batch_percent = percent;
      if (maxFailures !== undefined) body.max_failures = maxFailures;
      if (pause !== undefined) body.pause_ms = pause;
      if (waveTimeout !== undefined) body.wave_timeout_ms = waveTimeout;
      const api = await connect(v.server);
      const policy = await resolvePolicy(api, arg);
      body.policy_id = policy.id;
      const r = await withHints(() => api.call('POST /policy-rollouts', { body }));
      if (v['no-wait']) {
        if (asJson) io.out(json(r));
        else {
          io.out(
            `rollout ${r.id} started: ${r.policy_name} revision ${r.revision} to ${r.counts.total} agent(s) ` +
              `in ${r.waves.length} wave(s) of ${r.batch_size}`,
          );
          io.out(`  watch it: opsplane rollouts watch ${r.id}`);
        }
        return EXIT.ok;
      }
      return isRolloutActive(r.status) ? watch(api, r, asJson, io) : finish(r, asJson, io);
    }

    const api = await connect(v.server);
    const id = arg;
    const get = async () => {
      try {
        return await api.call('GET /policy-rollouts/:id', { params: { id } });
      } catch (e) {
        if (e instanceof ApiError && e.status === 400 && e.code !== 'unauthorized')
          throw usage(`'${id}' is not a rollout id (see 'opsplane rollouts list')`);
        throw e;
      }
    };
    if (action === 'show') {
      const r = await get();
      if (asJson) io.out(json(r));
      else printRollout(r, io);
      return EXIT.ok;
    }
    if (action === 'watch') {
      const r = await get();
      return isRolloutActive(r.status) ? watch(api, r, asJson, io) : finish(r, asJson, io);
    }
    const route = `POST /policy-rollouts/:id/${action as 'pause' | 'resume' | 'cancel'}` as const;
    const r = await withHints(() => api.call(route, { params: { id } }));
    if (asJson) io.out(json(r));
    else
      io.out(
        `rollout ${r.id} (${r.policy_name} r${r.revision}): ${r.status}` +
          (action === 'pause' ? ' (the current wave finishes; no next wave starts)' : '') +
          (action === 'cancel' ? ' (the agents it touched go back to their previous revision)' : ''),
      );
    return EXIT.ok;
  },
});
