/**
 * #/agents — the aggregated agent view (GET /agents): area, status and health filters, a
 * search box (q), sorting by column headers (sort=[-]field) and paging. The state lives in the
 * hash query, so a reload or a shared link shows the same list. Rows open #/agents/<code>.
 */
import type { AgentView } from '@opsplane/api';
import { api, errorMessage } from '../api.js';
import { AGENT_STATUSES, HEALTH_STATUSES } from '../choices.js';
import { ago, badge, errorBox, field, h, notice, put } from '../dom.js';
import { areaSelect, filterSelect, searchBox, selectorBox } from '../filters.js';
import { canOperate } from '../session.js';
import { pageHeader } from '../layout.js';
import { navigate, type PageContext } from '../router.js';
import {
  type Column,
  linkRows,
  messageRow,
  parseSort,
  renderHead,
  renderPager,
  type Sort,
  sortParam,
  syncRows,
} from '../table.js';

const agentHref = (code: string) => `#/agents/${encodeURIComponent(code)}`;

/** An agent's labels as small `key=value` tags. */
export function labelTags(labels: Readonly<Record<string, string>>): HTMLElement | string {
  const entries = Object.entries(labels);
  return entries.length
    ? h(
        'ul',
        { class: 'tags' },
        entries.map(([k, v]) => h('li', { class: 'tag' }, `${k}=${v}`)),
      )
    : '—';
}

const COLUMNS: Column<AgentView>[] = [
  { label: 'Agent', sort: 'id', cell: (a) => h('a', { href: agentHref(a.agent_code) }, a.agent_code) },
  { label: 'Hostname', sort: 'hostname', className: 'wrap', cell: (a) => a.hostname },
  { label: 'Device', sort: 'device_name', cell: (a) => a.device_name ?? '—' },
  { label: 'Area', sort: 'area', cell: (a) => a.area },
  { label: 'Controller', sort: 'controller_id', cell: (a) => a.controller_id },
  { label: 'Status', sort: 'status', cell: (a) => badge(a.status) },
  { label: 'Health', sort: 'health_status', cell: (a) => badge(a.health_status) },
  { label: 'Version', sort: 'version', cell: (a) => a.version || '—' },
  { label: 'Labels', className: 'wrap', cell: (a) => labelTags(a.labels) },
  { label: 'Last heartbeat', sort: 'last_heartbeat', cell: (a) => ago(a.last_heartbeat) },
];

interface State {
  area: string;
  status: string;
  health: string;
  q: string;
  selector: string;
  page: number;
  pageSize: number;
  sort: Sort;
}

function readState(q: URLSearchParams): State {
  return {
    area: q.get('area') ?? '',
    status: q.get('status') ?? '',
    health: q.get('health') ?? '',
    q: q.get('q') ?? '',
    selector: q.get('selector') ?? '',
    page: Math.max(1, Number(q.get('page')) || 1),
    pageSize: Number(q.get('pageSize')) || 20,
    sort: parseSort(q.get('sort'), { field: 'area', desc: false }),
  };
}

function writeState(s: State): URLSearchParams {
  const q = new URLSearchParams();
  if (s.area) q.set('area', s.area);
  if (s.status) q.set('status', s.status);
  if (s.health) q.set('health', s.health);
  if (s.q) q.set('q', s.q);
  if (s.selector) q.set('selector', s.selector);
  if (s.page > 1) q.set('page', String(s.page));
  if (s.pageSize !== 20) q.set('pageSize', String(s.pageSize));
  if (sortParam(s.sort) !== 'area') q.set('sort', sortParam(s.sort));
  return q;
}

export function agentsPage(ctx: PageContext): void {
  const s = readState(ctx.query);
  const thead = h('thead');
  const tbody = h('tbody');
  const pager = h('div', { class: 'pager' });
  const status = h('div', { class: 'list-status' });
  const summary = h('p', { class: 'muted summary', id: 'agents-summary' });

  const changed = (resetPage = true) => {
    if (resetPage) s.page = 1;
    ctx.setQuery(writeState(s));
    void poller.refresh();
  };

  const set = (k: 'q' | 'area' | 'status' | 'health' | 'selector') => (v: string) => {
    s[k] = v;
    changed();
  };

  const onSort = (sort: Sort) => {
    s.sort = sort;
    renderHead(thead, COLUMNS, s.sort, onSort);
    changed(false);
  };
  renderHead(thead, COLUMNS, s.sort, onSort);
  messageRow(tbody, COLUMNS.length, 'Loading…');

  const batchLink = h(
    'a',
    {
      class: 'btn',
      id: 'batch-agents',
      href: '#/batches/new',
      on: {
        click: (ev) => {
          ev.preventDefault();
          const q = new URLSearchParams();
          if (s.area) q.set('area', s.area);
          if (s.status) q.set('status', s.status);
          if (s.q) q.set('q', s.q);
          if (s.selector) q.set('selector', s.selector);
          navigate(`#/batches/new${q.size ? `?${q.toString()}` : ''}`);
        },
      },
    },
    'Batch on these agents…',
  );
  ctx.root.append(
    pageHeader('Agents', { actions: canOperate() ? [batchLink] : [] }),
    h(
      'div',
      { class: 'toolbar' },
      field('Search', searchBox(ctx, 'agent-search', 'Code, hostname, address, device', s.q, set('q'))),
      field('Area', areaSelect('agent-area', s.area, set('area'))),
      field('Status', filterSelect('agent-status', 'Any status', AGENT_STATUSES, s.status, set('status'))),
      field('Health', filterSelect('agent-health', 'Any health', HEALTH_STATUSES, s.health, set('health'))),
      field('Labels', selectorBox(ctx, 'agent-selector', s.selector, set('selector'))),
    ),
    status,
    h('div', { class: 'table-wrap' }, h('table', { class: 'data', id: 'agents-table' }, thead, tbody)),
    h('div', { class: 'table-foot' }, summary, pager),
  );

  const poller = ctx.poll(async () => {
    try {
      const r = await api.call('GET /agents', {
        query: {
          area: s.area,
          status: s.status,
          health_status: s.health,
          q: s.q,
          selector: s.selector,
          page: s.page,
          pageSize: s.pageSize,
          sort: sortParam(s.sort),
        },
      });
      put(
        status,
        r.stale ? notice('The agent view is stale: agents may be missing or outdated.', 'warn') : null,
        r.errors.map((e) =>
          notice(`${e.area}${e.controller_id ? `/${e.controller_id}` : ''}: ${e.message}`, 'warn'),
        ),
      );
      syncRows(tbody, r.agents, (a) => a.agent_code, COLUMNS, {
        empty:
          s.q || s.area || s.status || s.health || s.selector
            ? 'No agent matches these filters.'
            : 'No agents yet.',
        init: linkRows((a) => agentHref(a.agent_code)),
      });
      put(
        summary,
        `${r.total} agent${r.total === 1 ? '' : 's'}`,
        r.refreshed_at ? ['; view refreshed ', ago(r.refreshed_at)] : null,
      );
      renderPager(pager, { page: s.page, pageSize: s.pageSize, total: r.total }, (page, pageSize) => {
        s.page = page;
        s.pageSize = pageSize;
        changed(false);
      });
    } catch (e) {
      put(status, errorBox(errorMessage(e)));
    }
  });
}
