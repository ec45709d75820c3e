/**
 * #/alerts — what the server's alert engine raised (GET /alerts, newest first): status (firing
 * by default, resolved, or all), kind and area filters and paging, kept in the hash query.
 * Titles link to the subject's page (agent, deployment, controllers). Operators and admins can
 * acknowledge a firing alert nobody acknowledged yet (POST /alerts/{id}/ack); an
 * acknowledgement records who is on it, it neither silences nor resolves the alert.
 */
import type { Alert, AlertKind, Silence } from '@opsplane/api';
import { alertTitle } from '../alerts.js';
import { api, errorMessage } from '../api.js';
import { ALERT_KINDS, ALERT_STATUSES, isOneOf } from '../choices.js';
import { ago, badge, errorBox, field, h, notice, put } from '../dom.js';
import { areaSelect, filterSelect } from '../filters.js';
import { pageHeader, setFiringCount } from '../layout.js';
import type { PageContext } from '../router.js';
import { canOperate } from '../session.js';
import { busy, confirmButton, labelled, selectOf, textInput } from '../form.js';
import { messageRow, renderHead, renderPager, syncRows, type Column } from '../table.js';

type StatusFilter = Alert['status'] | 'all';
const DEFAULT_PAGE_SIZE = 50;

interface State {
  status: StatusFilter;
  kind: AlertKind | '';
  area: string;
  page: number;
  pageSize: number;
}

function readState(q: URLSearchParams): State {
  const status = q.get('status');
  const kind = q.get('kind');
  return {
    status: status === 'all' || isOneOf(ALERT_STATUSES, status) ? status : 'firing',
    kind: isOneOf(ALERT_KINDS, kind) ? kind : '',
    area: q.get('area') ?? '',
    page: Math.max(1, Number(q.get('page')) || 1),
    pageSize: Number(q.get('pageSize')) || DEFAULT_PAGE_SIZE,
  };
}

function writeState(s: State): URLSearchParams {
  const q = new URLSearchParams();
  if (s.status !== 'firing') q.set('status', s.status);
  if (s.kind) q.set('kind', s.kind);
  if (s.area) q.set('area', s.area);
  if (s.page > 1) q.set('page', String(s.page));
  if (s.pageSize !== DEFAULT_PAGE_SIZE) q.set('pageSize', String(s.pageSize));
  return q;
}

const COLUMNS: Column<Alert>[] = [
  { label: 'Status', cell: (a) => badge(a.status) },
  { label: 'Severity', cell: (a) => badge(a.severity) },
  { label: 'Kind', cell: (a) => h('code', null, a.kind) },
  {
    label: 'Alert',
    className: 'wrap alert-cell',
    cell: (a) => [alertTitle(a), h('div', { class: 'muted subject' }, h('code', null, a.subject))],
  },
  { label: 'Area', cell: (a) => a.area || '—' },
  { label: 'Message', className: 'wrap', cell: (a) => a.message || '—' },
  { label: 'First seen', cell: (a) => ago(a.first_seen) },
  {
    label: 'Last seen / resolved',
    cell: (a) =>
      a.status === 'resolved' && a.resolved_at
        ? h('span', null, 'resolved ', ago(a.resolved_at))
        : h('span', null, 'seen ', ago(a.last_seen)),
  },
  {
    label: 'Silenced',
    className: 'silenced',
    cell: (a) => (a.silenced_by ? badge('silenced', 'muted') : '—'),
  },
  {
    label: 'Acknowledged by',
    className: 'acked',
    cell: (a) =>
      a.acknowledged_by
        ? [h('strong', null, a.acknowledged_by), ' ', h('span', { class: 'muted' }, ago(a.acknowledged_at))]
        : '—',
  },
];

export function alertsPage(ctx: PageContext): void {
  const s = readState(ctx.query);
  const operator = canOperate();
  const busy = new Set<string>();
  let items: Alert[] | undefined;

  const thead = h('thead');
  const tbody = h('tbody');
  const pager = h('div', { class: 'pager' });
  const status = h('div', { class: 'list-status' });
  const results = h('div', { class: 'results', id: 'alert-results', 'aria-live': 'polite' });
  const summary = h('p', { class: 'muted summary', id: 'alerts-summary' });

  const acknowledge = (a: Alert) => {
    busy.add(a.id);
    render();
    put(results, notice(`Acknowledging “${a.title}”…`, 'info'));
    api
      .call('POST /alerts/:id/ack', { params: { id: a.id } })
      .then((r) => put(results, notice(`${r.title}: acknowledged by ${r.acknowledged_by ?? 'nobody'}`, 'ok')))
      .catch((e: unknown) => put(results, errorBox(errorMessage(e))))
      .finally(() => {
        busy.delete(a.id);
        void poller.refresh();
      });
  };

  const silences = silencesPanel(ctx, operator, () => void poller.refresh());
  const columns: Column<Alert>[] = [...COLUMNS];
  if (operator) {
    columns.push({
      label: 'Actions',
      className: 'actions',
      cell: (a) => [
        a.status === 'firing' && !a.silenced_by
          ? h(
              'button',
              {
                type: 'button',
                class: 'btn btn-small',
                'aria-label': `Silence ${a.title}`,
                data: { action: 'silence' },
                on: { click: () => silences.prefill(a) },
              },
              'Silence…',
            )
          : null,
        a.status === 'firing' && !a.acknowledged_by
          ? h(
              'button',
              {
                type: 'button',
                class: 'btn btn-small',
                'aria-label': `Acknowledge ${a.title}`,
                data: { action: 'ack' },
                props: { disabled: busy.has(a.id) },
                on: { click: () => acknowledge(a) },
              },
              'Acknowledge',
            )
          : null,
      ],
    });
  }
  renderHead(thead, columns);
  messageRow(tbody, columns.length, 'Loading…');

  const filtered = () => s.kind !== '' || s.area !== '';
  function render(): void {
    if (!items) return;
    syncRows(tbody, items, (a) => a.id, columns, {
      empty: filtered()
        ? 'No alert matches these filters.'
        : s.status === 'firing'
          ? 'No alert is firing.'
          : s.status === 'resolved'
            ? 'No alert has resolved yet.'
            : 'No alerts yet.',
      init: (tr, a) => {
        tr.dataset.subject = a.subject;
        tr.dataset.kind = a.kind;
      },
    });
    // The status changes in place (firing → resolved); keep it on the row for styling and tests.
    for (const tr of Array.from(tbody.rows)) {
      const a = items.find((x) => x.id === tr.dataset.key);
      if (a) tr.dataset.status = a.status;
    }
  }

  const changed = (resetPage = true) => {
    if (resetPage) s.page = 1;
    ctx.setQuery(writeState(s));
    void poller.refresh();
  };
  const setKind = (v: string) => {
    s.kind = isOneOf(ALERT_KINDS, v) ? v : '';
    changed();
  };
  const setArea = (v: string) => {
    s.area = v;
    changed();
  };
  // 'Any status' is '' in the select and status=all in the address (no status means firing).
  const statusSelect = filterSelect(
    'alert-status',
    'Any status',
    ALERT_STATUSES,
    s.status === 'all' ? '' : s.status,
    (v) => {
      s.status = isOneOf(ALERT_STATUSES, v) ? v : 'all';
      changed();
    },
  );

  ctx.root.append(
    pageHeader('Alerts'),
    h(
      'div',
      { class: 'toolbar' },
      field('Status', statusSelect),
      field('Kind', filterSelect('alert-kind', 'Any kind', ALERT_KINDS, s.kind, setKind)),
      field('Area', areaSelect('alert-area', s.area, setArea)),
    ),
    status,
    results,
    h('div', { class: 'table-wrap' }, h('table', { class: 'data', id: 'alerts-table' }, thead, tbody)),
    h('div', { class: 'table-foot' }, summary, pager),
    silences.el,
  );

  const poller = ctx.poll(async () => {
    try {
      const r = await api.call('GET /alerts', {
        query: {
          status: s.status === 'all' ? undefined : s.status,
          kind: s.kind || undefined,
          area: s.area,
          page: s.page,
          pageSize: s.pageSize,
        },
      });
      if (!ctx.active) return;
      put(status);
      items = r.items;
      render();
      if (s.status === 'firing' && !filtered()) setFiringCount(r.total);
      const what = s.status === 'all' ? '' : `${s.status} `;
      put(summary, `${r.total} ${what}alert${r.total === 1 ? '' : 's'}`);
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

const DURATIONS: [string, string][] = [
  ['30m', '30 minutes'],
  ['1h', '1 hour'],
  ['2h', '2 hours'],
  ['8h', '8 hours'],
  ['24h', '1 day'],
  ['168h', '7 days'],
];

/**
 * Silences: active ones (End for operators) and a form — by rule (kind), area and/or agent,
 * for a while. Matching alerts still fire and show (as silenced); only their webhook
 * notifications are held back.
 */
function silencesPanel(
  ctx: PageContext,
  operator: boolean,
  changed: () => void,
): { el: HTMLElement; prefill(a: Alert): void } {
  const kind = selectOf(
    'silence-kind',
    [['', 'any rule'], ...ALERT_KINDS.map((k): [string, string] => [k, k])],
    '',
  );
  const area = textInput('silence-area', '', { placeholder: 'any area' });
  const agent = textInput('silence-agent', '', { placeholder: 'any agent (code)' });
  const duration = selectOf('silence-duration', DURATIONS, '2h');
  const comment = textInput('silence-comment', '', {
    placeholder: 'why (maintenance, known issue…)',
    maxlength: 500,
  });
  const create = h('button', { type: 'submit', class: 'btn btn-primary', id: 'silence-create' }, 'Silence');
  const msg = h('div', { id: 'silence-results', 'aria-live': 'polite' });
  const thead = h('thead');
  const tbody = h('tbody');
  const end = (s: Silence) =>
    api.call('DELETE /silences/:id', { params: { id: s.id } }).then(
      () => {
        put(msg, notice('Silence ended.', 'ok'));
        void poller.refresh();
        changed();
      },
      (e: unknown) => put(msg, errorBox(errorMessage(e))),
    );
  const matchers = (s: Silence) =>
    [s.kind && `rule ${s.kind}`, s.area && `area ${s.area}`, s.agent_code && `agent ${s.agent_code}`]
      .filter(Boolean)
      .join(', ');
  const columns: Column<Silence>[] = [
    { label: 'Matches', className: 'wrap', cell: matchers },
    { label: 'Until', cell: (s) => new Date(s.expires_at).toLocaleString() },
    { label: 'By', cell: (s) => s.created_by },
    { label: 'Comment', className: 'wrap', cell: (s) => s.comment || '—' },
    ...(operator
      ? [
          {
            label: 'Actions',
            className: 'actions',
            cell: (s: Silence) =>
              confirmButton('End', 'Confirm end', () => void end(s), {
                'aria-label': `End the silence of ${matchers(s)}`,
              }),
          },
        ]
      : []),
  ];
  renderHead(thead, columns);
  messageRow(tbody, columns.length, 'Loading…');
  const submit = (ev: SubmitEvent) => {
    ev.preventDefault();
    const k = kind.value;
    void busy(create, async () => {
      try {
        await api.call('POST /silences', {
          body: {
            ...(isOneOf(ALERT_KINDS, k) ? { kind: k } : {}),
            ...(area.value.trim() ? { area: area.value.trim() } : {}),
            ...(agent.value.trim() ? { agent_code: agent.value.trim() } : {}),
            duration: duration.value,
            comment: comment.value.trim(),
          },
        });
        put(msg, notice('Silenced: matching alerts notify nobody until it ends.', 'ok'));
        comment.value = '';
        void poller.refresh();
        changed();
      } catch (e) {
        put(msg, errorBox(errorMessage(e)));
      }
    });
  };
  const poller = ctx.poll(async () => {
    try {
      const r = await api.call('GET /silences');
      syncRows(tbody, r.silences, (s) => s.id, columns, { empty: 'No active silence.' });
    } catch (e) {
      put(msg, errorBox(errorMessage(e)));
    }
  }, 10_000);
  const el = h(
    'section',
    { class: 'panel', id: 'silences', 'aria-labelledby': 'silences-title' },
    h('h2', { id: 'silences-title' }, 'Silences'),
    operator
      ? h(
          'form',
          { class: 'form-grid', 'aria-label': 'New silence', on: { submit } },
          labelled('Rule', kind),
          labelled('Area', area),
          labelled('Agent', agent),
          labelled('For', duration),
          labelled('Comment', comment),
          h('div', { class: 'form-actions' }, create),
        )
      : null,
    msg,
    h('div', { class: 'table-wrap' }, h('table', { class: 'data', id: 'silences-table' }, thead, tbody)),
  );
  return {
    el,
    prefill(a) {
      kind.value = a.kind;
      area.value = a.area;
      const code = a.labels.agent_code ?? (a.subject.startsWith('agent:') ? a.subject.slice(6) : '');
      agent.value = code;
      comment.focus();
      el.scrollIntoView({ block: 'start' });
    },
  };
}
