/**
 * `opsplane batch start|stop|restart|config|list|get|watch` — runs a batch across areas on the
 * platform server: a progress bar while the results come in (the batch's event stream), then
 * one line per (agent, package) and a summary. The agents are given as codes (--agents), or as
 * a filter over the aggregated view (--area, --status, --selector …). `--no-wait` starts it and
 * returns; `--output json` prints the job as JSON. Exits 1 when any result failed.
 */
import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import type { BatchCreateInput, BatchJob, BatchResult } from '@opsplane/api';
import { CliError, EXIT, UsageError, defineCommand, type CliIO } from '../command.js';
import { connect, listFlag, type ApiClient } from '../client/api.js';
import { ago, json, table } from '../client/format.js';
import { outputOption, serverOption, wantsJson } from '../client/common-options.js';
import type { ProgressDisplay } from '../client/progress.js';
import { sanitize, type ProgressRow } from '../client/progress.js';
import { sseEvents } from '../client/sse.js';
import { checkSelector } from './agents.js';
import { EXIT_INTERRUPTED, withProgress } from './deployments.js';

/** `path[:name]`: the name the file gets on the agent defaults to the file's base name. */
export function parseFileSpec(spec: string): { path: string; name: string } {
  const i = spec.lastIndexOf(':');
  if (i > 0 && !spec.slice(i + 1).includes('/') && spec.slice(i + 1) !== '') {
    return { path: spec.slice(0, i), name: spec.slice(i + 1) };
  }
  return { path: spec, name: basename(spec) };
}

function printJob(job: BatchJob, io: CliIO): void {
  const results = job.results ?? [];
  for (const l of table(
    ['AGENT', 'PACKAGE', 'AREA', 'RESULT', 'REASON', 'DETAIL'],
    results.map((r) => [
      r.agent_code,
      r.package || '(all)',
      r.area ?? '-',
      r.success ? 'ok' : 'FAILED',
      r.reason,
      sanitize((r.success ? r.message : (r.error ?? r.message)) ?? ''),
    ]),
  ))
    io.out(l);
  const reasons = new Map<string, number>();
  for (const r of results) if (!r.success) reasons.set(r.reason, (reasons.get(r.reason) ?? 0) + 1);
  io.out(
    `batch ${job.id} (${job.action}) ${job.status}: ${job.total} result(s), ${job.success} ok, ${job.failed} failed` +
      (reasons.size ? ` (${[...reasons].map(([k, n]) => `${n} ${k}`).join(', ')})` : '') +
      (job.duration_ms !== null ? ` in ${job.duration_ms} ms` : ''),
  );
}

/** The progress row of a running batch: agents with every result in, of the agents addressed. */
export function batchRow(job: BatchJob, results: readonly BatchResult[]): ProgressRow {
  const agents = new Set(results.map((r) => r.agent_code));
  const ok = results.filter((r) => r.success).length;
  const failed = results.length - ok;
  return {
    key: job.id,
    label: `${job.action} ${job.id.slice(0, 8)}`,
    status: job.status === 'done' ? (failed > 0 ? 'failed' : 'succeeded') : job.status,
    done: agents.size,
    total: Math.max(job.targets, agents.size),
    step: `agents · ${ok} ok, ${failed} failed`,
  };
}

/** One line for a failed result as it arrives. */
export function resultLine(r: BatchResult): string {
  return sanitize(
    `${r.agent_code} ${r.package || '(all)'}: ${r.success ? 'ok' : `FAILED (${r.reason})`}` +
      `${(r.success ? r.message : (r.error ?? r.message)) ? ` — ${r.success ? r.message : (r.error ?? r.message)}` : ''}`,
  );
}

/**
 * Follows a batch's event stream to its end, drawing the progress bar; resolves with the
 * finished job (with its results), or undefined when Ctrl-C stopped watching.
 */
export async function followBatch(
  api: ApiClient,
  first: BatchJob,
  display: ProgressDisplay,
  signal: AbortSignal,
): Promise<BatchJob | undefined> {
  let job = first;
  const results: BatchResult[] = [];
  let lastSeq: number | undefined;
  const show = () => display.update(undefined, [batchRow(job, results)]);
  show();
  const events = sseEvents({
    signal,
    open: (lastEventId, s) =>
      api.open(
        'GET /batches/:id/events',
        { params: { id: job.id }, query: { after: lastSeq } },
        {
          headers: { accept: 'text/event-stream', ...(lastEventId ? { 'last-event-id': lastEventId } : {}) },
          signal: s,
        },
      ),
    onReconnect: (n, why) => display.log(`(event stream dropped: ${why}; reconnecting, attempt ${n})`),
  });
  for await (const ev of events) {
    let data: unknown;
    try {
      data = JSON.parse(ev.data);
    } catch {
      continue;
    }
    if (ev.event === 'result') {
      const seq = Number(ev.id);
      if (Number.isFinite(seq) && lastSeq !== undefined && seq <= lastSeq) continue;
      if (Number.isFinite(seq)) lastSeq = seq;
      const r = data as BatchResult;
      results.push(r);
      if (!r.success) display.log(resultLine(r));
      show();
    } else if (ev.event === 'job' || ev.event === 'end') {
      job = data as BatchJob;
      show();
      if (ev.event === 'end') return api.call('GET /batches/:id', { params: { id: job.id } });
    }
  }
  return undefined;
}
export default defineCommand({
  name: 'batch',
  summary: 'Start/stop/restart packages or push config files on agents of any area; list past batches.',
  positionals: '<start|stop|restart|config|list|get> [id]',
  options: {
    server: serverOption,
    agents: { type: 'string', short: 'a', multiple: true, value: '<A,B,…>', description: 'agent codes' },
    packages: {
      type: 'string',
      multiple: true,
      value: '<p,q,…>',
      description: 'start/stop/restart: packages (default: every package of each agent)',
    },
    area: { type: 'string', value: '<a,…>', description: 'filter instead of --agents: areas' },
    status: {
      type: 'string',
      value: '<s,…>',
      description: 'filter: agent status (online, offline, unknown)',
    },
    health: { type: 'string', value: '<h,…>', description: 'filter: health status' },
    controller: { type: 'string', value: '<id>', description: 'filter: controller holding the agents' },
    q: { type: 'string', value: '<text>', description: 'filter: free-text search' },
    selector: {
      type: 'string',
      short: 'l',
      value: '<selector>',
      description: "filter: label selector, e.g. 'env=prod,role!=db' or 'tier in (web,api)'",
    },
    package: { type: 'string', value: '<name>', description: 'config: the package' },
    file: {
      type: 'string',
      multiple: true,
      value: '<path[:name]>',
      description: 'config: a config file to push (as <name>, default its base name); repeatable',
    },
    'main-file': {
      type: 'string',
      value: '<name>',
      description: "config: the package's main config file among --file",
    },
    timeout: {
      type: 'string',
      value: '<duration>',
      description: 'one deadline for the whole batch (default: the server’s batch_timeout)',
    },
    'no-wait': { type: 'boolean', description: 'start the batch and return at once (prints its id)' },
    page: { type: 'string', value: '<n>', description: 'list: page' },
    output: outputOption,
    json: { type: 'boolean', description: 'same as --output json' },
  },
  details: [
    'A progress bar shows the agents done while the results come in (a line per failure); then one',
    'line per (agent, package) and a summary. Ctrl-C stops watching (the batch runs on; see',
    "'opsplane batch watch <id>'). Exit code 1 when any (agent, package) failed, so scripts can tell.",
    '',
    'Examples:',
    '  opsplane batch restart --agents A,B --packages web',
    "  opsplane batch restart --selector 'env=prod,role in (web)' --packages web",
    '  opsplane batch stop --area area-2 --status online --packages collector',
    '  opsplane batch restart --area area-1 --no-wait',
    '  opsplane batch watch 2f1c…',
    '  opsplane batch config --agents A --package web --file ./web.json --file ./tls.pem:cert.pem',
    '  opsplane batch list',
    '  opsplane batch get 2f1c…',
  ].join('\n'),
  async run(v, io) {
    const [action, ...rest] = v._;
    const asJson = wantsJson(v, 'batch');
    if (action === 'list') {
      if (rest.length) throw new UsageError(`unexpected argument '${rest[0]}'`, 'batch');
      const api = await connect(v.server);
      const r = await api.call('GET /batches', { query: { page: v.page } });
      if (asJson) {
        io.out(json(r));
        return EXIT.ok;
      }
      for (const l of table(
        ['ID', 'ACTION', 'STATUS', 'BY', 'TOTAL', 'OK', 'FAILED', 'CREATED'],
        r.batches.map((b) => [
          b.id,
          b.action,
          b.status,
          b.requested_by,
          String(b.total),
          String(b.success),
          String(b.failed),
          ago(b.created_at),
        ]),
      ))
        io.out(l);
      io.out(`${r.total} batch(es)`);
      return EXIT.ok;
    }
    if (action === 'get' || action === 'watch') {
      const [id, ...extra] = rest;
      if (!id) throw new UsageError(`${action} needs a batch id`, 'batch');
      if (extra.length) throw new UsageError(`unexpected argument '${extra[0]}'`, 'batch');
      const api = await connect(v.server);
      const job = await api.call('GET /batches/:id', { params: { id } });
      if (action === 'watch' && job.status === 'running') return watch(api, job, asJson, io);
      if (asJson) io.out(json(job));
      else printJob(job, io);
      return job.failed > 0 ? EXIT.failure : EXIT.ok;
    }
    if (action !== 'start' && action !== 'stop' && action !== 'restart' && action !== 'config') {
      throw new UsageError(
        action
          ? `unknown action '${action}' (start, stop, restart, config, list, get, watch)`
          : 'say start, stop, restart, config, list, get or watch',
        'batch',
      );
    }
    if (rest.length) throw new UsageError(`unexpected argument '${rest[0]}'`, 'batch');
    const agents = listFlag(v.agents);
    const filter = {
      ...(v.area ? { area: v.area } : {}),
      ...(v.status ? { status: v.status } : {}),
      ...(v.health ? { health_status: v.health } : {}),
      ...(v.controller ? { controller_id: v.controller } : {}),
      ...(v.q ? { q: v.q } : {}),
      ...(v.selector ? { selector: v.selector } : {}),
    };
    checkSelector(v.selector, 'batch');
    const hasFilter = Object.keys(filter).length > 0;
    if (agents.length === 0 && !hasFilter)
      throw new UsageError(
        'say which agents: --agents A,B or a filter (--area, --status, --health, --controller, --q, --selector)',
        'batch',
      );
    if (agents.length > 0 && hasFilter) throw new UsageError('give --agents or a filter, not both', 'batch');
    const target = agents.length > 0 ? { agents } : { filter };

    let body: BatchCreateInput;
    if (action === 'config') {
      if (!v.package) throw new UsageError('config needs --package', 'batch');
      const files = v.file ?? [];
      if (files.length === 0) throw new UsageError('config needs at least one --file path[:name]', 'batch');
      if (v.packages) throw new UsageError('config takes --package, not --packages', 'batch');
      const configs = [];
      for (const spec of files) {
        const f = parseFileSpec(spec);
        let content: string;
        try {
          content = await readFile(f.path, 'utf8');
        } catch (e) {
          throw new CliError(`cannot read ${f.path}: ${(e as Error).message}`);
        }
        configs.push({ file_name: f.name, content });
      }
      body = {
        action: 'configs',
        ...target,
        package: v.package,
        configs,
        ...(v['main-file'] ? { config_file: v['main-file'] } : {}),
      };
    } else {
      if (v.package || v.file) throw new UsageError('--package and --file go with config', 'batch');
      const packages = listFlag(v.packages);
      body = { action, ...target, ...(packages.length ? { packages } : {}) };
    }

    if (v.timeout) body = { ...body, timeout: v.timeout };
    const api = await connect(v.server);
    // Answered at once (202, running): the progress comes from the event stream.
    const r = await api.send('POST /batches', { body, query: { wait: '0s' } }, { timeoutMs: 60_000 });
    if (v['no-wait']) {
      if (asJson) io.out(json(r.body));
      else {
        io.out(`batch ${r.body.id} started: ${r.body.action} on ${r.body.targets} agent(s)`);
        io.out(`  watch it: opsplane batch watch ${r.body.id}`);
      }
      return EXIT.ok;
    }
    return r.body.status === 'running' ? watch(api, r.body, asJson, io) : finish(r.body, asJson, io);
  },
});

function finish(job: BatchJob, asJson: boolean, io: CliIO): number {
  if (asJson) io.out(json(job));
  else printJob(job, io);
  return job.status !== 'done' || job.failed > 0 ? EXIT.failure : EXIT.ok;
}

/** Progress bar until the batch is over, then the results and the summary (or the JSON). */
async function watch(api: ApiClient, job: BatchJob, asJson: boolean, io: CliIO): Promise<number> {
  const final = await withProgress(io, asJson, (display, signal) => followBatch(api, job, display, signal));
  if (!final) {
    io.err(`stopped watching; batch ${job.id} runs on: opsplane batch watch ${job.id}`);
    return EXIT_INTERRUPTED;
  }
  return finish(final, asJson, io);
}
