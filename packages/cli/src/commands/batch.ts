/**
 * `opsplane batch start|stop|restart|config|list|get` — runs a batch across areas on the
 * platform server and prints one line per (agent, package). The agents are given as codes
 * (--agents) or as a filter over the aggregated view (--area, --status, …). Exits 1 when any
 * result failed.
 */
import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import type { BatchCreateInput, BatchJob } from '@opsplane/api';
import { CliError, EXIT, UsageError, defineCommand, type CliIO } from '../command.js';
import { connect, listFlag, type ApiClient } from '../client/api.js';
import { ago, json, table } from '../client/format.js';
import { jsonOption, serverOption } from '../client/common-options.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

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
    ['AGENT', 'PACKAGE', 'AREA', 'RESULT', 'DETAIL'],
    results.map((r) => [
      r.agent_code,
      r.package || '(all)',
      r.area ?? '-',
      r.success ? 'ok' : 'FAILED',
      (r.success ? r.message : r.error) ?? '',
    ]),
  ))
    io.out(l);
  io.out(
    `batch ${job.id} (${job.action}) ${job.status}: ${job.total} result(s), ${job.success} ok, ${job.failed} failed` +
      (job.duration_ms !== null ? ` in ${job.duration_ms} ms` : ''),
  );
}

async function waitForJob(api: ApiClient, id: string, io: CliIO): Promise<BatchJob> {
  let said = false;
  for (;;) {
    const job = await api.call('GET /batches/:id', { params: { id } });
    if (job.status !== 'running') return job;
    if (!said) {
      io.err(
        `batch ${id} is still running; waiting (Ctrl-C leaves it running; see 'opsplane batch get ${id}')`,
      );
      said = true;
    }
    await sleep(1000);
  }
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
    wait: {
      type: 'string',
      value: '<duration>',
      description: 'how long the server waits before answering (then the CLI polls)',
    },
    page: { type: 'string', value: '<n>', description: 'list: page' },
    json: jsonOption,
  },
  details: [
    'Exit code 1 when any (agent, package) failed, so scripts can tell.',
    '',
    'Examples:',
    '  opsplane batch restart --agents A,B --packages web',
    '  opsplane batch stop --area area-2 --status online --packages collector',
    '  opsplane batch config --agents A --package web --file ./web.json --file ./tls.pem:cert.pem',
    '  opsplane batch list',
    '  opsplane batch get 2f1c…',
  ].join('\n'),
  async run(v, io) {
    const [action, ...rest] = v._;
    if (action === 'list') {
      if (rest.length) throw new UsageError(`unexpected argument '${rest[0]}'`, 'batch');
      const api = await connect(v.server);
      const r = await api.call('GET /batches', { query: { page: v.page } });
      if (v.json) {
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
    if (action === 'get') {
      const [id, ...extra] = rest;
      if (!id) throw new UsageError('get needs a batch id', 'batch');
      if (extra.length) throw new UsageError(`unexpected argument '${extra[0]}'`, 'batch');
      const api = await connect(v.server);
      const job = await api.call('GET /batches/:id', { params: { id } });
      if (v.json) io.out(json(job));
      else printJob(job, io);
      return job.failed > 0 ? EXIT.failure : EXIT.ok;
    }
    if (action !== 'start' && action !== 'stop' && action !== 'restart' && action !== 'config') {
      throw new UsageError(
        action
          ? `unknown action '${action}' (start, stop, restart, config, list, get)`
          : 'say start, stop, restart, config, list or get',
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
    };
    const hasFilter = Object.keys(filter).length > 0;
    if (agents.length === 0 && !hasFilter)
      throw new UsageError(
        'say which agents: --agents A,B or a filter (--area, --status, --health, --controller, --q)',
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

    const api = await connect(v.server);
    const r = await api.send('POST /batches', { body, query: { wait: v.wait } }, { timeoutMs: 15 * 60_000 });
    const job = r.status === 202 ? await waitForJob(api, r.body.id, io) : r.body;
    if (v.json) io.out(json(job));
    else printJob(job, io);
    return job.status !== 'done' || job.failed > 0 ? EXIT.failure : EXIT.ok;
  },
});
