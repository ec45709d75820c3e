/**
 * #/audit — the audit log (GET /audit, newest first): who did what to which target, when, from
 * where and whether it worked, with every change's fields before → after (secrets show as
 * [redacted]). Filters (actor, action or prefix such as device.*, target, result, since, free
 * text) live in the hash query.
 */
import type { AuditChange, AuditEntry } from '@opsplane/api';
import { api, errorMessage } from '../api.js';
import { ago, badge, errorBox, field, h, put } from '../dom.js';
import { filterSelect, searchBox } from '../filters.js';
import { textInput } from '../form.js';
import { pageHeader } from '../layout.js';
import type { PageContext } from '../router.js';
import { messageRow, renderHead, renderPager, syncRows, type Column } from '../table.js';

const show = (v: unknown): string =>
  v === null || v === undefined ? '∅' : typeof v === 'string' ? v : JSON.stringify(v, null, 1);

/** A change as a before/after pair; multi-line values (config files) in <pre>. */
function changeRow(c: AuditChange): HTMLElement {
  const cell = (v: unknown, cls: string) => {
    const text = show(v);
    return h('td', { class: `wrap ${cls}` }, text.includes('\n') ? h('pre', { class: 'value' }, text) : text);
  };
  return h(
    'tr',
    { data: { field: c.field } },
    h('th', { scope: 'row' }, h('code', null, c.field)),
    cell(c.before, 'before'),
    cell(c.after, 'after'),
  );
}

export function changesTable(changes: readonly AuditChange[]): HTMLElement {
  return h(
    'table',
    { class: 'data changes' },
    h(
      'thead',
      null,
      h(
        'tr',
        null,
        h('th', { scope: 'col' }, 'Field'),
        h('th', { scope: 'col' }, 'Before'),
        h('th', { scope: 'col' }, 'After'),
      ),
    ),
    h('tbody', null, changes.map(changeRow)),
  );
}

const COLUMNS: Column<AuditEntry>[] = [
  { label: 'When', cell: (e) => ago(e.at) },
  { label: 'Who', cell: (e) => h('strong', null, e.actor) },
  { label: 'From', cell: (e) => (e.ip ? h('code', null, e.ip) : '—') },
  { label: 'Action', cell: (e) => h('code', null, e.action) },
  {
    label: 'Target',
    className: 'wrap',
    cell: (e) => (e.target_type ? `${e.target_type} ${e.target_id ?? ''}` : '—'),
  },
  { label: 'Result', cell: (e) => badge(e.result === 'success' ? 'succeeded' : 'failed') },
  {
    label: 'Changes',
    className: 'wrap audit-changes',
    cell: (e) => {
      const err = (e.details as { message?: unknown }).message;
      if (e.changes.length === 0) return e.result === 'failure' && err !== undefined ? String(err) : '—';
      return changesTable(e.changes);
    },
  },
];

export function auditPage(ctx: PageContext): void {
  const q = ctx.query;
  const s = {
    actor: q.get('actor') ?? '',
    action: q.get('action') ?? '',
    target_type: q.get('target_type') ?? '',
    target_id: q.get('target_id') ?? '',
    result: q.get('result') ?? '',
    since: q.get('since') ?? '',
    q: q.get('q') ?? '',
    page: Math.max(1, Number(q.get('page')) || 1),
    pageSize: 50,
  };
  const thead = h('thead');
  const tbody = h('tbody');
  const pager = h('div', { class: 'pager' });
  const status = h('div', { class: 'list-status' });
  const summary = h('p', { class: 'muted summary', id: 'audit-summary' });
  renderHead(thead, COLUMNS);
  messageRow(tbody, COLUMNS.length, 'Loading…');
  const changed = (resetPage = true) => {
    if (resetPage) s.page = 1;
    const out = new URLSearchParams();
    for (const k of ['actor', 'action', 'target_type', 'target_id', 'result', 'since', 'q'] as const)
      if (s[k]) out.set(k, s[k]);
    if (s.page > 1) out.set('page', String(s.page));
    ctx.setQuery(out);
    void poller.refresh();
  };
  const text = (id: string, k: 'actor' | 'action' | 'target_type' | 'target_id', placeholder: string) => {
    const input = textInput(id, s[k], { placeholder });
    input.addEventListener('change', () => {
      s[k] = input.value.trim();
      changed();
    });
    return input;
  };
  const since = filterSelect('audit-since', 'Any time', ['1h', '24h', '7d', '30d'], s.since, (v) => {
    s.since = v;
    changed();
  });
  ctx.root.append(
    pageHeader('Audit log'),
    h(
      'div',
      { class: 'toolbar', role: 'search', 'aria-label': 'Filter the audit log' },
      field(
        'Search',
        searchBox(
          ctx,
          'audit-q',
          'Text in actor, action, target, details',
          s.q,
          (v) => ((s.q = v), changed()),
        ),
      ),
      field('Actor', text('audit-actor', 'actor', 'username')),
      field('Action', text('audit-action', 'action', 'device.* or device.update')),
      field('Target type', text('audit-target-type', 'target_type', 'device, user, batch…')),
      field('Target id', text('audit-target-id', 'target_id', 'id')),
      field(
        'Result',
        filterSelect(
          'audit-result',
          'Any result',
          ['success', 'failure'],
          s.result,
          (v) => ((s.result = v), changed()),
        ),
      ),
      field('Since', since),
    ),
    status,
    h('div', { class: 'table-wrap' }, h('table', { class: 'data', id: 'audit-table' }, thead, tbody)),
    h('div', { class: 'table-foot' }, summary, pager),
  );
  const sinceIso = (v: string): string | undefined => {
    const m = /^(\d+)([hd])$/.exec(v);
    if (!m) return undefined;
    return new Date(Date.now() - Number(m[1]) * (m[2] === 'h' ? 3600_000 : 86_400_000)).toISOString();
  };
  const poller = ctx.poll(async () => {
    try {
      const r = await api.call('GET /audit', {
        query: {
          actor: s.actor,
          action: s.action,
          target_type: s.target_type,
          target_id: s.target_id,
          result: s.result === 'success' || s.result === 'failure' ? s.result : undefined,
          since: sinceIso(s.since),
          q: s.q,
          page: s.page,
          pageSize: s.pageSize,
        },
      });
      put(status);
      syncRows(tbody, r.entries, (e) => String(e.id), COLUMNS, {
        empty: 'No entry matches these filters.',
        init: (tr, e) => {
          tr.dataset.action = e.action;
          tr.dataset.target = e.target_id ?? '';
        },
      });
      put(summary, `${r.total} entr${r.total === 1 ? 'y' : 'ies'}`);
      renderPager(pager, { page: s.page, pageSize: s.pageSize, total: r.total }, (page) => {
        s.page = page;
        changed(false);
      });
    } catch (e) {
      put(status, errorBox(errorMessage(e)));
    }
  }, 10_000);
}
