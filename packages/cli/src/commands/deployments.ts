/**
 * `opsplane deployments list|show|watch|cancel|retry|bundles` — the agent deployments the server
 * runs over SSH: list and inspect them (steps, log), watch a rollout (polled, one bar per device)
 * or a single deployment (live over Server-Sent Events: log lines and a bar of its steps), cancel
 * a rollout or a deployment, retry a failed one, and list or upload agent bundles. Also owns the
 * watching shared with `opsplane deploy`: Ctrl-C handling, the end-of-rollout summary, exit codes.
 */
import { readFile } from 'node:fs/promises';
import {
  DEPLOYMENT_STATUSES,
  DEPLOYMENT_TYPES,
  type Deployment,
  type DeploymentStreamEvents,
  type Rollout,
} from '@opsplane/api';
import { CliError, EXIT, UsageError, defineCommand, processIO, type CliIO, actionOf } from '../command.js';
import { ApiError, connect, type ApiClient } from '../client/api.js';
import { ago, json, table } from '../client/format.js';
import { jsonOption, serverOption } from '../client/common-options.js';
import {
  ProgressDisplay,
  colorEnabled,
  currentStep,
  deploymentHeader,
  deploymentRow,
  formatLogLine,
  rolloutHeader,
  type ProgressTarget,
} from '../client/progress.js';
import { sseEvents } from '../client/sse.js';

/** Exit code after Ctrl-C (128 + SIGINT), as shells report it. */
export const EXIT_INTERRUPTED = 130;

const ACTIONS = ['list', 'show', 'watch', 'cancel', 'retry', 'bundles'] as const;

// ---------------------------------------------------------------------------------------------
// Shared with `opsplane deploy`

/** Where progress goes: redrawn in place on a terminal; plain lines through `io` otherwise. */
export function progressTarget(io: CliIO, quiet: boolean): ProgressTarget {
  if (quiet) return { mode: 'none' };
  if (io === processIO && process.stdout.isTTY) {
    return {
      mode: 'tty',
      write: (s) => process.stdout.write(s),
      columns: () => process.stdout.columns,
      rows: () => process.stdout.rows,
      color: colorEnabled(process.env, true),
    };
  }
  return { mode: 'plain', line: (l) => io.out(l) };
}

/**
 * Ctrl-C while watching: aborts the returned signal (the watch returns, the server keeps going);
 * a second Ctrl-C exits at once.
 */
export function interruptible(): { signal: AbortSignal; dispose(): void } {
  const ac = new AbortController();
  const onSigint = () => {
    if (ac.signal.aborted) process.exit(EXIT_INTERRUPTED);
    ac.abort();
  };
  process.on('SIGINT', onSigint);
  return { signal: ac.signal, dispose: () => process.off('SIGINT', onSigint) };
}

/**
 * Runs `follow` with a progress display and Ctrl-C handling; resolves with what it returned, or
 * undefined when the operator stopped watching (the work goes on on the server).
 */
export async function withProgress<T>(
  io: CliIO,
  quiet: boolean,
  follow: (display: ProgressDisplay, signal: AbortSignal) => Promise<T | undefined>,
): Promise<T | undefined> {
  const display = new ProgressDisplay(progressTarget(io, quiet));
  const int = interruptible();
  try {
    return await follow(display, int.signal);
  } finally {
    int.dispose();
    display.finish();
  }
}

/** Resolves true after `ms`, or false as soon as `signal` aborts. */
function sleep(ms: number, signal: AbortSignal): Promise<boolean> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve(false);
    const t = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve(true);
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      resolve(false);
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/** `p`, or undefined as soon as `signal` aborts (the request itself runs on, unobserved). */
function unlessAborted<T>(p: Promise<T>, signal: AbortSignal): Promise<T | undefined> {
  if (signal.aborted) return Promise.resolve(undefined);
  return new Promise<T | undefined>((resolve, reject) => {
    const onAbort = () => resolve(undefined);
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

const POLL_PATIENCE_MS = 120_000;

/** A poll that may fail now and then without ending the watch: unreachable server, 5xx. */
const transient = (e: unknown) => e instanceof CliError && (!(e instanceof ApiError) || e.status >= 500);

/**
 * Polls the rollout every second, redrawing one row per device, until it is over. Resolves with
 * the final rollout, or undefined when `signal` aborted first.
 */
export async function watchRollout(
  api: ApiClient,
  first: Rollout,
  display: ProgressDisplay,
  signal: AbortSignal,
): Promise<Rollout | undefined> {
  let r = first;
  let failingSince: number | undefined;
  let lingering = 0;
  for (;;) {
    display.update(rolloutHeader(r), r.deployments.map(deploymentRow));
    const active = r.counts.queued + r.counts.running > 0;
    // Over: the server says so and nothing is left in flight (give stragglers ~30 s).
    if (r.status !== 'running' && (!active || lingering++ >= 30)) return r;
    if (!(await sleep(1000, signal))) return undefined;
    try {
      const next = await unlessAborted(api.call('GET /rollouts/:id', { params: { id: r.id } }), signal);
      if (next === undefined) return undefined;
      r = next;
      failingSince = undefined;
    } catch (e) {
      // Ride out a server restart (up to 2 minutes); say so once per outage.
      if (!transient(e) || (failingSince !== undefined && Date.now() - failingSince > POLL_PATIENCE_MS))
        throw e;
      if (failingSince === undefined) display.log(`warning: ${(e as Error).message}; trying again`);
      failingSince ??= Date.now();
    }
  }
}

/** The data of a deployment stream event, as the contract describes it (undefined if not JSON). */
const eventData = <E extends keyof DeploymentStreamEvents>(
  _event: E,
  data: string,
): DeploymentStreamEvents[E] | undefined => {
  try {
    return JSON.parse(data) as DeploymentStreamEvents[E];
  } catch {
    return undefined;
  }
};

/**
 * Streams one deployment's events: log lines printed as they come, its steps as a bar. On a
 * dropped stream it reconnects asking for the log after the last line it got. Resolves with the
 * final deployment (the `end` event), or undefined when `signal` aborted first.
 */
export async function watchDeployment(
  api: ApiClient,
  first: Deployment,
  display: ProgressDisplay,
  signal: AbortSignal,
): Promise<Deployment | undefined> {
  let d: Deployment = first;
  let lastSeq: number | undefined;
  const show = () => display.update(deploymentHeader(d), [deploymentRow(d)]);
  show();
  const events = sseEvents({
    signal,
    open: (lastEventId, s) =>
      api.open(
        'GET /deployments/:id/events',
        { params: { id: d.id }, query: { after: lastSeq } },
        {
          headers: { accept: 'text/event-stream', ...(lastEventId ? { 'last-event-id': lastEventId } : {}) },
          signal: s,
        },
      ),
    onReconnect: (n, why) =>
      display.log(
        `(event stream dropped: ${why}; reconnecting${lastSeq !== undefined ? ` after log line ${lastSeq}` : ''}, attempt ${n})`,
      ),
  });
  for await (const ev of events) {
    if (ev.event === 'log') {
      const l = eventData('log', ev.data);
      if (!l || (lastSeq !== undefined && l.seq <= lastSeq)) continue; // a replayed line
      lastSeq = l.seq;
      display.log(formatLogLine(l, display.color));
    } else if (ev.event === 'deployment' || ev.event === 'end') {
      const next = eventData(ev.event, ev.data);
      if (next) d = { ...next, log: undefined };
      show();
      if (ev.event === 'end') return d;
    }
  }
  return undefined; // only an abort ends the events without `end`
}

/** The rollout's outcome after the bars, and the exit code: 0 only when every device succeeded. */
export function rolloutSummary(r: Rollout): { lines: string[]; code: number } {
  const c = r.counts;
  const ok = c.succeeded === c.total;
  const lines = [
    ok
      ? `rollout ${r.id} ${r.status}: ${c.succeeded} of ${c.total} device(s) succeeded`
      : `rollout ${r.id} ${r.status}: ${c.succeeded} succeeded, ${c.failed} failed, ${c.cancelled} cancelled` +
        `${c.queued + c.running ? `, ${c.queued + c.running} unfinished` : ''} of ${c.total} device(s)`,
  ];
  const bad = r.deployments.filter((d) => d.status !== 'succeeded');
  if (bad.length > 0) {
    lines.push(
      ...table(
        ['DEVICE', 'STATUS', 'STEP', 'DEPLOYMENT', 'ERROR'],
        bad.map((d) => [
          d.device_name,
          d.status,
          currentStep(d) || '-',
          d.id,
          d.error ? `${d.error}${d.error_code ? ` [${d.error_code}]` : ''}` : '',
        ]),
      ).map((l) => `  ${l}`),
    );
    if (bad.some((d) => d.status === 'failed'))
      lines.push(`retry a failed device with: opsplane deployments retry <deployment-id>`);
  }
  return { lines, code: ok ? EXIT.ok : EXIT.failure };
}

export function deploymentSummary(d: Deployment): { lines: string[]; code: number } {
  const step = currentStep(d);
  const lines = [
    d.status === 'succeeded'
      ? `deployment ${d.id} (${d.type} on ${d.device_name}) succeeded`
      : `deployment ${d.id} (${d.type} on ${d.device_name}) ${d.status}${step ? ` at step ${step}` : ''}` +
        `${d.error ? `: ${d.error}${d.error_code ? ` [${d.error_code}]` : ''}` : ''}`,
  ];
  if (d.status === 'failed') lines.push(`retry with: opsplane deployments retry ${d.id}`);
  return { lines, code: d.status === 'succeeded' ? EXIT.ok : EXIT.failure };
}

function interruptedHint(kind: 'rollout' | 'deployment', id: string, io: CliIO): number {
  io.err(`stopped watching; the ${kind} ${id} keeps running on the server.`);
  io.err(`  resume watching: opsplane deployments watch ${id}`);
  io.err(`  cancel it:       opsplane deployments cancel ${id}`);
  return EXIT_INTERRUPTED;
}

/** Watches a rollout to its end, prints the summary (or JSON); resolves with the exit code. */
export async function followRollout(
  api: ApiClient,
  rollout: Rollout,
  asJson: boolean,
  io: CliIO,
): Promise<number> {
  const final = await withProgress(io, asJson, (display, signal) =>
    watchRollout(api, rollout, display, signal),
  );
  if (!final) return interruptedHint('rollout', rollout.id, io);
  const s = rolloutSummary(final);
  if (asJson) io.out(json(final));
  else for (const l of s.lines) io.out(l);
  return s.code;
}

/** Streams a deployment to its end, prints the summary (or JSON); resolves with the exit code. */
export async function followDeployment(
  api: ApiClient,
  deployment: Deployment,
  asJson: boolean,
  io: CliIO,
): Promise<number> {
  const final = await withProgress(io, asJson, (display, signal) =>
    watchDeployment(api, deployment, display, signal),
  );
  if (!final) return interruptedHint('deployment', deployment.id, io);
  const s = deploymentSummary(final);
  if (asJson) io.out(json(final));
  else for (const l of s.lines) io.out(l);
  return s.code;
}

// ---------------------------------------------------------------------------------------------
// Rollout or deployment?

type Target = { kind: 'rollout'; rollout: Rollout } | { kind: 'deployment'; deployment: Deployment };

/** 404 (or 400 for an id that is not a uuid) means "not one of these": try the other kind. */
const notThisKind = (e: unknown) => e instanceof ApiError && (e.status === 404 || e.status === 400);

/** `id` as a rollout, else as a deployment; CliError when it is neither. */
export async function resolveTarget(api: ApiClient, id: string): Promise<Target> {
  try {
    return { kind: 'rollout', rollout: await api.call('GET /rollouts/:id', { params: { id } }) };
  } catch (e) {
    if (!notThisKind(e)) throw e;
  }
  try {
    return { kind: 'deployment', deployment: await api.call('GET /deployments/:id', { params: { id } }) };
  } catch (e) {
    if (!notThisKind(e)) throw e;
    throw new CliError(`no rollout or deployment with id '${id}' (${(e as Error).message})`);
  }
}

// ---------------------------------------------------------------------------------------------
// Printing

function duration(from: string | null, to: string | null): string {
  if (!from) return '-';
  const ms = (to ? Date.parse(to) : Date.now()) - Date.parse(from);
  if (!Number.isFinite(ms) || ms < 0) return '-';
  return ms < 60_000
    ? `${(ms / 1000).toFixed(1)}s`
    : `${Math.floor(ms / 60_000)}m${Math.round((ms % 60_000) / 1000)}s`;
}

function printDeployment(d: Deployment, io: CliIO): void {
  io.out(`deployment ${d.id}`);
  for (const [k, v] of [
    ['device', `${d.device_name} (${d.area})`],
    ['type', `${d.type}${d.version ? ` ${d.version}` : ''}`],
    ['status', `${d.status}${d.cancel_requested && d.status === 'running' ? ' (cancel requested)' : ''}`],
    ['rollout', d.rollout_id],
    ['attempt', String(d.attempt)],
    ...(d.retry_of ? [['retry of', d.retry_of]] : []),
    ['requested by', d.requested_by],
    ['created', `${d.created_at} (${ago(d.created_at)})`],
    ['duration', duration(d.started_at, d.finished_at)],
    ...(d.error ? [['error', `${d.error}${d.error_code ? ` [${d.error_code}]` : ''}`]] : []),
  ] as const)
    io.out(`  ${`${k}:`.padEnd(14)}${v}`);
  if (d.steps.length > 0) {
    io.out('');
    for (const l of table(
      ['STEP', 'STATUS', 'TIME', 'MESSAGE'],
      d.steps.map((s) => [s.name, s.status, duration(s.started_at, s.finished_at), s.message ?? '']),
    ))
      io.out(`  ${l}`);
  }
  if (d.log && d.log.length > 0) {
    io.out('');
    io.out('log:');
    for (const l of d.log) io.out(`  ${formatLogLine(l, false)}`);
  }
}

function printRollout(r: Rollout, io: CliIO): void {
  io.out(rolloutHeader(r).replace(r.id.slice(0, 8), r.id));
  io.out(
    `  batch size ${r.batch_size}, ${r.max_failures ? `stops after ${r.max_failures} failure(s)` : 'never stops on failures'}, ` +
      `requested by ${r.requested_by} ${ago(r.created_at)}`,
  );
  io.out('');
  for (const l of table(
    ['DEPLOYMENT', 'DEVICE', 'STATUS', 'STEP', 'ERROR'],
    r.deployments.map((d) => [d.id, d.device_name, d.status, currentStep(d) || '-', d.error ?? '']),
  ))
    io.out(`  ${l}`);
}

const oneId = (rest: string[], action: string): string => {
  const [id, ...extra] = rest;
  if (!id) throw new UsageError(`${action} needs a rollout or deployment id`, 'deployments');
  if (extra.length) throw new UsageError(`unexpected argument '${extra[0]}'`, 'deployments');
  return id;
};

/** `value` when it is one of `allowed`; UsageError otherwise. */
function checkEnum<T extends string>(
  value: string | undefined,
  allowed: readonly T[],
  flag: string,
): T | undefined {
  if (value !== undefined && !(allowed as readonly string[]).includes(value))
    throw new UsageError(`--${flag} must be one of ${allowed.join(', ')}`, 'deployments');
  return value as T | undefined;
}

async function uploadBundle(api: ApiClient, file: string, asJson: boolean, io: CliIO): Promise<number> {
  let bytes: Buffer;
  try {
    bytes = await readFile(file);
  } catch (e) {
    throw new CliError(`cannot read ${file}: ${(e as Error).message}`);
  }
  if (bytes.length < 2 || bytes[0] !== 0x1f || bytes[1] !== 0x8b)
    throw new CliError(`${file} is not a gzip file (an agent bundle is a .tar.gz)`);
  const res = await api.send(
    'POST /agent-bundles',
    {},
    { upload: bytes, contentType: 'application/gzip', timeoutMs: 10 * 60_000 },
  );
  const b = res.body;
  if (asJson) io.out(json(b));
  else
    io.out(
      `${res.status === 201 ? 'uploaded' : 'the server already had'} agent bundle ${b.version} (${b.bytes} bytes, sha256 ${b.sha256}, node ${b.node})` +
        (b.default ? '; it is the default version' : ''),
    );
  return EXIT.ok;
}

// ---------------------------------------------------------------------------------------------

export default defineCommand({
  name: 'deployments',
  summary: 'List, show, watch, cancel or retry agent deployments; list or upload agent bundles.',
  positionals: '<list|show|watch|cancel|retry|bundles> [id]',
  options: {
    server: serverOption,
    status: {
      type: 'string',
      value: '<s>',
      description: 'list: queued, running, succeeded, failed, cancelled',
    },
    type: { type: 'string', value: '<t>', description: 'list: install, upgrade, uninstall, restart' },
    device: { type: 'string', value: '<name|id>', description: 'list: only this device' },
    rollout: { type: 'string', value: '<id>', description: 'list: only this rollout' },
    page: { type: 'string', value: '<n>', description: 'list: page (from 1)' },
    'page-size': { type: 'string', value: '<n>', description: 'list: deployments per page' },
    upload: {
      type: 'string',
      value: '<file.tar.gz>',
      description: 'bundles: upload this agent bundle (admins)',
    },
    detach: { type: 'boolean', description: 'retry: start the retry and return without watching it' },
    json: jsonOption,
  },
  details: [
    'watch, show and cancel take a rollout id (what `opsplane deploy` prints) or a deployment id.',
    'Watching a rollout shows one bar per device; watching a deployment streams its log. Ctrl-C',
    'stops watching only (exit code 130): the deployments keep running on the server.',
    'watch and retry exit 1 when a deployment failed or was cancelled.',
    '',
    'Examples:',
    '  opsplane deployments list --status failed',
    '  opsplane deployments watch 3f2a…   (a rollout or a deployment)',
    '  opsplane deployments show 8c1d…',
    '  opsplane deployments cancel 3f2a…',
    '  opsplane deployments retry 8c1d…',
    '  opsplane deployments bundles --upload opsplane-agent-1.4.0.tar.gz',
  ].join('\n'),
  async run(v, io) {
    const [action, ...rest] = v._;
    actionOf(ACTIONS, action, 'deployments');
    if (v.upload !== undefined && action !== 'bundles')
      throw new UsageError('--upload goes with bundles', 'deployments');
    if (v.detach && action !== 'retry') throw new UsageError('--detach goes with retry', 'deployments');

    if (action === 'list') {
      if (rest.length) throw new UsageError(`unexpected argument '${rest[0]}'`, 'deployments');
      const status = checkEnum(v.status, DEPLOYMENT_STATUSES, 'status');
      const type = checkEnum(v.type, DEPLOYMENT_TYPES, 'type');
      const api = await connect(v.server);
      const r = await api.call('GET /deployments', {
        query: {
          status,
          type,
          device: v.device,
          rollout: v.rollout,
          page: v.page,
          pageSize: v['page-size'],
        },
      });
      if (v.json) {
        io.out(json(r));
        return EXIT.ok;
      }
      for (const l of table(
        ['ID', 'DEVICE', 'AREA', 'TYPE', 'VERSION', 'STATUS', 'STEP', 'CREATED', 'ERROR'],
        r.items.map((d) => [
          d.id,
          d.device_name,
          d.area,
          d.type,
          d.version || '-',
          d.status,
          currentStep(d) || '-',
          ago(d.created_at),
          d.error ?? '',
        ]),
      ))
        io.out(l);
      io.out(`${r.total} deployment(s); page ${r.page} of ${Math.max(1, Math.ceil(r.total / r.pageSize))}`);
      return EXIT.ok;
    }

    if (action === 'bundles') {
      if (rest.length) throw new UsageError(`unexpected argument '${rest[0]}'`, 'deployments');
      const api = await connect(v.server);
      if (v.upload !== undefined) return uploadBundle(api, v.upload, v.json === true, io);
      const r = await api.call('GET /agent-bundles');
      if (v.json) {
        io.out(json(r));
        return EXIT.ok;
      }
      for (const l of table(
        ['VERSION', 'DEFAULT', 'NODE', 'BYTES', 'SHA256', 'ADDED'],
        r.items.map((b) => [
          b.version,
          b.default ? 'yes' : '',
          b.node,
          String(b.bytes),
          b.sha256.slice(0, 16),
          ago(b.added_at),
        ]),
      ))
        io.out(l);
      io.out(`${r.items.length} bundle(s)`);
      return EXIT.ok;
    }

    const id = oneId(rest, action as string);
    const api = await connect(v.server);

    if (action === 'show') {
      const t = await resolveTarget(api, id);
      if (t.kind === 'rollout') {
        if (v.json) io.out(json(t.rollout));
        else printRollout(t.rollout, io);
        return EXIT.ok;
      }
      if (v.json) io.out(json(t.deployment));
      else printDeployment(t.deployment, io);
      return EXIT.ok;
    }

    if (action === 'watch') {
      const t = await resolveTarget(api, id);
      return t.kind === 'rollout'
        ? followRollout(api, t.rollout, v.json === true, io)
        : followDeployment(api, t.deployment, v.json === true, io);
    }

    if (action === 'cancel') {
      let r: Rollout | undefined;
      try {
        r = await api.call('POST /rollouts/:id/cancel', { params: { id } });
      } catch (e) {
        if (!notThisKind(e)) throw e;
      }
      if (r) {
        if (v.json) io.out(json(r));
        else
          io.out(
            `rollout ${r.id}: ${r.status}; ${r.counts.running} still running, ${r.counts.cancelled} cancelled, ` +
              `${r.counts.succeeded} succeeded, ${r.counts.failed} failed`,
          );
        return EXIT.ok;
      }
      let d: Deployment;
      try {
        d = await api.call('POST /deployments/:id/cancel', { params: { id } });
      } catch (e) {
        if (notThisKind(e))
          throw new CliError(`no rollout or deployment with id '${id}' (${(e as Error).message})`);
        throw e;
      }
      if (v.json) io.out(json(d));
      else
        io.out(
          `deployment ${d.id} (${d.device_name}): ${d.status}` +
            (d.status === 'running' && d.cancel_requested
              ? ' (cancel requested: it stops before its next step)'
              : ''),
        );
      return EXIT.ok;
    }

    // retry
    const d = await api.call('POST /deployments/:id/retry', { params: { id } });
    if (v.detach) {
      if (v.json) io.out(json(d));
      else {
        io.out(`retrying ${d.device_name} as deployment ${d.id}`);
        io.out(`  watch it: opsplane deployments watch ${d.id}`);
      }
      return EXIT.ok;
    }
    if (!v.json) io.out(`retrying ${d.device_name} as deployment ${d.id}`);
    return followDeployment(api, d, v.json === true, io);
  },
});
