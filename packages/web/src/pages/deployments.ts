/**
 * #/deployments — recent deployments (GET /deployments, newest first, status/type filters,
 * paging), grouped by the rollout that created them; each group links to #/rollouts/<id> and
 * each row to #/deployments/<id>.
 */
import type { Deployment, DeploymentStatus, DeploymentType } from '@opsplane/api';
import { api, errorMessage } from '../api.js';
import { DEPLOYMENT_STATUSES, DEPLOYMENT_TYPES, isOneOf } from '../choices.js';
import { ago, errorBox, field, h, put } from '../dom.js';
import { filterSelect } from '../filters.js';
import { pageHeader } from '../layout.js';
import { navigate, type PageContext } from '../router.js';
import { deployBadge, progressBar, stepLabel, stepProgress } from '../progress.js';
import { renderHead, renderPager, type Column } from '../table.js';

const COLUMNS: Column<Deployment>[] = [
  {
    label: 'Device',
    cell: (d) => h('a', { href: `#/deployments/${encodeURIComponent(d.id)}` }, d.device_name),
  },
  { label: 'Area', cell: (d) => d.area },
  { label: 'Type', cell: (d) => d.type },
  { label: 'Version', cell: (d) => d.version || '—' },
  { label: 'Status', cell: (d) => deployBadge(d.status) },
  {
    label: 'Steps',
    cell: (d) => {
      const p = stepProgress(d);
      return [
        progressBar(p.done, p.total, `steps of ${d.device_name}`),
        stepLabel(d) ? h('span', { class: 'muted' }, ` ${stepLabel(d)}`) : null,
      ];
    },
  },
  {
    label: 'Error',
    className: 'wrap',
    cell: (d) => (d.error ? `${d.error_code ? `${d.error_code}: ` : ''}${d.error}` : '—'),
  },
  { label: 'Created', cell: (d) => ago(d.created_at) },
];

/** Consecutive deployments of one rollout (the list is newest first, so a rollout is contiguous). */
function groups(items: readonly Deployment[]): Deployment[][] {
  const out: Deployment[][] = [];
  for (const d of items) {
    const last = out[out.length - 1];
    if (last && last[0]?.rollout_id === d.rollout_id) last.push(d);
    else out.push([d]);
  }
  return out;
}

function groupBody(g: Deployment[]): HTMLTableSectionElement {
  const first = g[0];
  const head = first
    ? h(
        'tr',
        { class: 'group-row' },
        h(
          'th',
          { colspan: COLUMNS.length, scope: 'rowgroup' },
          h(
            'a',
            { href: `#/rollouts/${encodeURIComponent(first.rollout_id)}` },
            `Rollout ${first.rollout_id.slice(0, 8)}`,
          ),
          h(
            'span',
            { class: 'muted' },
            ` · ${first.type}${first.version ? ` ${first.version}` : ''} · by ${first.requested_by} · `,
          ),
          ago(first.created_at),
        ),
      )
    : null;
  return h(
    'tbody',
    null,
    head,
    g.map((d) => {
      const tr = h(
        'tr',
        { class: 'clickable' },
        COLUMNS.map((c) => h('td', { class: c.className }, c.cell(d))),
      );
      tr.addEventListener('click', (ev) => {
        if (!(ev.target as Element).closest('a')) navigate(`#/deployments/${encodeURIComponent(d.id)}`);
      });
      return tr;
    }),
  );
}

export function deploymentsPage(ctx: PageContext): void {
  const status0 = ctx.query.get('status');
  const type0 = ctx.query.get('type');
  const s: { status: DeploymentStatus | ''; type: DeploymentType | ''; page: number; pageSize: number } = {
    status: isOneOf(DEPLOYMENT_STATUSES, status0) ? status0 : '',
    type: isOneOf(DEPLOYMENT_TYPES, type0) ? type0 : '',
    page: Math.max(1, Number(ctx.query.get('page')) || 1),
    pageSize: Number(ctx.query.get('pageSize')) || 50,
  };
  const table = h('table', { class: 'data', id: 'deployments-table' });
  const thead = h('thead');
  renderHead(thead, COLUMNS);
  table.append(
    thead,
    h('tbody', null, h('tr', { class: 'empty' }, h('td', { colspan: COLUMNS.length }, 'Loading…'))),
  );
  const status = h('div', { class: 'list-status' });
  const pager = h('div', { class: 'pager' });
  const changed = () => {
    const q = new URLSearchParams();
    if (s.status) q.set('status', s.status);
    if (s.type) q.set('type', s.type);
    if (s.page > 1) q.set('page', String(s.page));
    if (s.pageSize !== 50) q.set('pageSize', String(s.pageSize));
    ctx.setQuery(q);
    void poller.refresh();
  };
  ctx.root.append(
    pageHeader('Deployments'),
    h(
      'div',
      { class: 'toolbar' },
      field(
        'Status',
        filterSelect('deployment-status', 'Any status', DEPLOYMENT_STATUSES, s.status, (v) => {
          s.status = isOneOf(DEPLOYMENT_STATUSES, v) ? v : '';
          s.page = 1;
          changed();
        }),
      ),
      field(
        'Type',
        filterSelect('deployment-type', 'Any type', DEPLOYMENT_TYPES, s.type, (v) => {
          s.type = isOneOf(DEPLOYMENT_TYPES, v) ? v : '';
          s.page = 1;
          changed();
        }),
      ),
    ),
    status,
    h('div', { class: 'table-wrap' }, table),
    h('div', { class: 'table-foot' }, pager),
  );

  const poller = ctx.poll(async () => {
    try {
      const r = await api.call('GET /deployments', {
        query: { ...s, status: s.status || undefined, type: s.type || undefined },
      });
      put(status);
      const bodies = groups(r.items).map(groupBody);
      table.replaceChildren(
        thead,
        ...(bodies.length
          ? bodies
          : [
              h(
                'tbody',
                null,
                h(
                  'tr',
                  { class: 'empty' },
                  h(
                    'td',
                    { colspan: COLUMNS.length },
                    s.status || s.type
                      ? 'No deployment matches.'
                      : 'No deployments yet. Start one from the Devices page.',
                  ),
                ),
              ),
            ]),
      );
      renderPager(pager, { ...s, total: r.total }, (page, pageSize) => {
        s.page = page;
        s.pageSize = pageSize;
        changed();
      });
    } catch (e) {
      put(status, errorBox(errorMessage(e)));
    }
  });
}
