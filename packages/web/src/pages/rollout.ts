/**
 * #/rollouts/<id> — one deployment request: its status and counts, and a progress row per
 * device (steps done/total, current step, status, error), polled every 2 s until the rollout
 * is finished. Operators can cancel a running rollout.
 */
import type { Deployment } from '@opsplane/api';
import { api, errorMessage } from '../api.js';
import { ago, defList, errorBox, h, put } from '../dom.js';
import { pageHeader } from '../layout.js';
import type { PageContext } from '../router.js';
import { deployBadge, progressBar, stepLabel, stepProgress } from '../progress.js';
import { canOperate } from '../session.js';
import { type Column, linkRows, messageRow, renderHead, syncRows } from '../table.js';

const deploymentHref = (d: Deployment) => `#/deployments/${encodeURIComponent(d.id)}`;

const COLUMNS: Column<Deployment>[] = [
  { label: 'Device', cell: (d) => h('a', { href: deploymentHref(d) }, d.device_name) },
  { label: 'Area', cell: (d) => d.area },
  { label: 'Status', cell: (d) => deployBadge(d.status) },
  {
    label: 'Steps',
    cell: (d) => {
      const p = stepProgress(d);
      return progressBar(p.done, p.total, `steps of ${d.device_name}`);
    },
  },
  { label: 'Current step', cell: (d) => stepLabel(d) || '—' },
  { label: 'Attempt', cell: (d) => d.attempt },
  {
    label: 'Error',
    className: 'wrap',
    cell: (d) => (d.error ? `${d.error_code ? `${d.error_code}: ` : ''}${d.error}` : '—'),
  },
];

export function rolloutPage(ctx: PageContext): void {
  const id = ctx.params[0] ?? '';
  const title = h('span', null, `Rollout ${id.slice(0, 8)}`);
  const cancel = h('button', { type: 'button', class: 'btn btn-danger', hidden: true }, 'Cancel rollout');
  const summary = h('div', { class: 'panel' }, h('p', { class: 'muted' }, 'Loading…'));
  const message = h('div');
  const thead = h('thead');
  const tbody = h('tbody');
  renderHead(thead, COLUMNS);
  messageRow(tbody, COLUMNS.length, 'Loading…');
  ctx.root.append(
    pageHeader(title, { crumbs: [['Deployments', '#/deployments']], actions: canOperate() ? [cancel] : [] }),
    message,
    summary,
    h(
      'section',
      { class: 'panel' },
      h('h2', null, 'Devices'),
      h('div', { class: 'table-wrap' }, h('table', { class: 'data', id: 'rollout-table' }, thead, tbody)),
    ),
  );
  cancel.addEventListener('click', () => {
    cancel.disabled = true;
    api
      .call('POST /rollouts/:id/cancel', { params: { id } })
      .then(() => poller.refresh())
      .catch((e: unknown) => put(message, errorBox(errorMessage(e))))
      .finally(() => {
        cancel.disabled = false;
      });
  });

  const poller = ctx.poll(async () => {
    try {
      const r = await api.call('GET /rollouts/:id', { params: { id } });
      const c = r.counts;
      const finished = c.succeeded + c.failed + c.cancelled;
      put(title, `Rollout ${r.id.slice(0, 8)} `, deployBadge(r.status));
      put(
        summary,
        h(
          'div',
          { class: 'rollout-progress' },
          progressBar(finished, c.total, 'devices finished'),
          h('span', null, ` ${finished} of ${c.total} devices finished`),
        ),
        defList([
          ['Action', `${r.type}${r.version ? ` ${r.version}` : ''}`],
          [
            'Counts',
            `${c.queued} queued · ${c.running} running · ${c.succeeded} succeeded · ${c.failed} failed · ${c.cancelled} cancelled`,
          ],
          ['Batch size', String(r.batch_size)],
          ['Failure budget', r.max_failures ? String(r.max_failures) : 'none'],
          ['Requested', [`by ${r.requested_by} `, ago(r.created_at)]],
          ['Finished', r.finished_at ? ago(r.finished_at) : '—'],
        ]),
      );
      put(message);
      syncRows(tbody, r.deployments, (d) => d.id, COLUMNS, {
        empty: 'This rollout has no deployments.',
        init: linkRows((d) => deploymentHref(d)),
      });
      cancel.hidden = r.status !== 'running';
      if (r.status !== 'running') poller.stop();
    } catch (e) {
      put(message, errorBox(errorMessage(e)));
    }
  }, 2000);
}
