/**
 * #/batches — batch history (GET /batches, newest first; action and status filters, paging)
 * and #/batches/<id> — one batch live: its progress, and each (agent, package) result as it
 * arrives (GET /batches/{id}/events, Server-Sent Events), with the reason of each failure.
 */
import type { BatchJob, BatchResult, BatchStreamEvents } from '@opsplane/api';
import { api, errorMessage } from '../api.js';
import { ago, badge, defList, errorBox, field, h, put } from '../dom.js';
import { filterSelect } from '../filters.js';
import { pageHeader } from '../layout.js';
import { progressBar } from '../progress.js';
import type { PageContext } from '../router.js';
import { canOperate } from '../session.js';
import { type Column, linkRows, messageRow, renderHead, renderPager, syncRows } from '../table.js';

const ACTIONS = ['start', 'stop', 'restart', 'configs'] as const;
const STATUSES = ['running', 'done', 'failed', 'interrupted'] as const;
const batchHref = (id: string) => `#/batches/${encodeURIComponent(id)}`;
const jobBadge = (j: Pick<BatchJob, 'status' | 'failed'>) =>
  badge(j.status, j.status === 'running' ? 'info' : j.status === 'done' && j.failed > 0 ? 'warn' : undefined);

const fmtMs = (ms: number | null) =>
  ms === null ? '—' : ms < 1000 ? `${ms} ms` : `${(ms / 1000).toFixed(1)} s`;

function describeRequest(j: BatchJob): string {
  const r = j.request as {
    packages?: string[];
    package?: string;
    configs?: { file_name: string }[];
    filter?: Record<string, unknown>;
    agents?: string[];
  };
  const what =
    j.action === 'configs'
      ? `${r.package ?? '?'}: ${(r.configs ?? []).map((c) => c.file_name).join(', ')}`
      : r.packages?.length
        ? r.packages.join(', ')
        : 'every package';
  const who = r.filter
    ? Object.entries(r.filter)
        .map(([k, v]) => `${k}=${Array.isArray(v) ? v.join(',') : String(v)}`)
        .join(' ')
    : `${r.agents?.length ?? j.targets} agent(s)`;
  return `${what} · ${who}`;
}

const COLUMNS: Column<BatchJob>[] = [
  { label: 'Batch', cell: (j) => h('a', { href: batchHref(j.id) }, h('code', null, j.id.slice(0, 8))) },
  { label: 'Action', cell: (j) => j.action },
  { label: 'What / on', className: 'wrap', cell: (j) => describeRequest(j) },
  { label: 'Status', cell: jobBadge },
  { label: 'Agents', cell: (j) => j.targets },
  { label: 'OK', cell: (j) => j.success },
  { label: 'Failed', cell: (j) => j.failed },
  { label: 'By', cell: (j) => j.requested_by },
  { label: 'Started', cell: (j) => ago(j.created_at) },
  { label: 'Took', cell: (j) => fmtMs(j.duration_ms) },
];

export function batchesPage(ctx: PageContext): void {
  const s = {
    action: ctx.query.get('action') ?? '',
    status: ctx.query.get('status') ?? '',
    page: Math.max(1, Number(ctx.query.get('page')) || 1),
    pageSize: 20,
  };
  const thead = h('thead');
  const tbody = h('tbody');
  const pager = h('div', { class: 'pager' });
  const status = h('div', { class: 'list-status' });
  renderHead(thead, COLUMNS);
  messageRow(tbody, COLUMNS.length, 'Loading…');
  const changed = () => {
    const q = new URLSearchParams();
    if (s.action) q.set('action', s.action);
    if (s.status) q.set('status', s.status);
    if (s.page > 1) q.set('page', String(s.page));
    ctx.setQuery(q);
    void poller.refresh();
  };
  ctx.root.append(
    pageHeader('Batches', {
      actions: canOperate()
        ? [h('a', { class: 'btn btn-primary', id: 'new-batch', href: '#/batches/new' }, 'New batch')]
        : [],
    }),
    h(
      'div',
      { class: 'toolbar' },
      field(
        'Action',
        filterSelect(
          'batch-filter-action',
          'Any action',
          ACTIONS,
          s.action,
          (v) => ((s.action = v), (s.page = 1), changed()),
        ),
      ),
      field(
        'Status',
        filterSelect(
          'batch-filter-status',
          'Any status',
          STATUSES,
          s.status,
          (v) => ((s.status = v), (s.page = 1), changed()),
        ),
      ),
    ),
    status,
    h('div', { class: 'table-wrap' }, h('table', { class: 'data', id: 'batches-table' }, thead, tbody)),
    h('div', { class: 'table-foot' }, pager),
  );
  const poller = ctx.poll(async () => {
    try {
      const r = await api.call('GET /batches', {
        query: {
          action: (ACTIONS as readonly string[]).includes(s.action)
            ? (s.action as (typeof ACTIONS)[number])
            : undefined,
          status: (STATUSES as readonly string[]).includes(s.status)
            ? (s.status as (typeof STATUSES)[number])
            : undefined,
          page: s.page,
          pageSize: s.pageSize,
        },
      });
      put(status);
      syncRows(tbody, r.batches, (j) => j.id, COLUMNS, {
        empty: 'No batches yet.',
        init: linkRows((j) => batchHref(j.id)),
      });
      renderPager(pager, { page: s.page, pageSize: s.pageSize, total: r.total }, (page) => {
        s.page = page;
        changed();
      });
    } catch (e) {
      put(status, errorBox(errorMessage(e)));
    }
  });
}

const RESULT_COLUMNS: Column<BatchResult>[] = [
  {
    label: 'Agent',
    cell: (r) => h('a', { href: `#/agents/${encodeURIComponent(r.agent_code)}` }, r.agent_code),
  },
  { label: 'Package', cell: (r) => r.package || '(all)' },
  { label: 'Area', cell: (r) => r.area ?? '—' },
  { label: 'Result', cell: (r) => badge(r.success ? 'succeeded' : 'failed') },
  { label: 'Reason', cell: (r) => h('code', null, r.reason) },
  {
    label: 'PID',
    cell: (r) =>
      r.old_pid !== undefined || r.new_pid !== undefined ? `${r.old_pid ?? '—'} → ${r.new_pid ?? '—'}` : '—',
  },
  { label: 'Detail', className: 'wrap', cell: (r) => (r.success ? r.message : (r.error ?? r.message)) ?? '' },
];

export function batchPage(ctx: PageContext): void {
  const id = ctx.params[0] ?? '';
  const title = h('span', null, `Batch ${id.slice(0, 8)}`);
  const info = h('div', { id: 'batch-info' }, h('p', { class: 'muted' }, 'Loading…'));
  const progress = h('div', { class: 'rollout-progress', id: 'batch-progress' });
  const live = h('span', { class: 'live-state', id: 'batch-live' }, 'connecting');
  const error = h('div');
  const thead = h('thead');
  const tbody = h('tbody');
  renderHead(thead, RESULT_COLUMNS);
  messageRow(tbody, RESULT_COLUMNS.length, 'Waiting for results…');
  const results = new Map<string, BatchResult>();
  let job: BatchJob | undefined;

  const render = () => {
    if (!job) return;
    put(title, `Batch ${id.slice(0, 8)} `, jobBadge(job));
    put(
      info,
      defList([
        ['Action', job.action],
        ['What / on', describeRequest(job)],
        ['Requested by', job.requested_by],
        ['Started', ago(job.created_at)],
        ['Deadline', job.deadline_at ? new Date(job.deadline_at).toLocaleString() : '—'],
        ['Took', fmtMs(job.duration_ms)],
        ['Operation id', h('code', null, job.operation_id)],
      ]),
    );
    const rows = [...results.values()].sort(
      (a, b) => a.agent_code.localeCompare(b.agent_code) || a.package.localeCompare(b.package),
    );
    const agents = new Set(rows.map((r) => r.agent_code)).size;
    const ok = rows.filter((r) => r.success).length;
    put(
      progress,
      progressBar(agents, Math.max(job.targets, agents), 'Agents with their results'),
      h(
        'span',
        { class: 'muted', id: 'batch-counts' },
        ` ${agents} of ${job.targets} agents · ${ok} ok · ${rows.length - ok} failed`,
      ),
    );
    syncRows(tbody, rows, (r) => `${r.agent_code}|${r.package}`, RESULT_COLUMNS, {
      empty: job.status === 'running' ? 'Waiting for results…' : 'No results.',
      init: (tr, r) => {
        tr.dataset.agent = r.agent_code;
        tr.dataset.success = String(r.success);
      },
    });
  };

  ctx.root.append(
    pageHeader(title, { crumbs: [['Batches', '#/batches']] }),
    error,
    h(
      'div',
      { class: 'panels' },
      h(
        'section',
        { class: 'panel', 'aria-labelledby': 'batch-info-title' },
        h('h2', { id: 'batch-info-title' }, 'Batch'),
        info,
      ),
    ),
    h(
      'section',
      { class: 'panel', 'aria-labelledby': 'batch-results-title' },
      h('h2', { id: 'batch-results-title' }, 'Results ', live),
      progress,
      h('div', { class: 'table-wrap' }, h('table', { class: 'data', id: 'batch-results' }, thead, tbody)),
    ),
  );

  const source = new EventSource(api.url('GET /batches/:id/events', { params: { id } }).url);
  ctx.onCleanup(() => source.close());
  const on = <K extends keyof BatchStreamEvents>(name: K, fn: (data: BatchStreamEvents[K]) => void) =>
    source.addEventListener(name, (ev) => {
      try {
        fn(JSON.parse((ev as MessageEvent<string>).data) as BatchStreamEvents[K]);
      } catch (e) {
        console.warn('bad batch event', e);
      }
    });
  source.addEventListener('open', () => put(live, 'live'));
  on('job', (j) => {
    job = j;
    render();
  });
  on('result', (r) => {
    results.set(`${r.agent_code}|${r.package}`, r);
    render();
  });
  on('end', (j) => {
    job = j;
    put(live, 'finished');
    source.close();
    render();
  });
  source.addEventListener('error', () => {
    if (source.readyState === EventSource.CLOSED && live.textContent !== 'finished') {
      put(live, 'disconnected');
      // The stream is gone for good (404, or the server stopped): show what is stored.
      api
        .call('GET /batches/:id', { params: { id } })
        .then((j) => {
          job = j;
          for (const r of j.results ?? []) results.set(`${r.agent_code}|${r.package}`, r);
          render();
        })
        .catch((e: unknown) => put(error, errorBox(errorMessage(e))));
    } else if (live.textContent !== 'finished') put(live, 'reconnecting');
  });
}
