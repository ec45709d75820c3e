/**
 * #/deployments/<id> — one deployment: its steps and its log, live. The page loads the
 * deployment with its whole log, then follows GET /deployments/<id>/events (Server-Sent
 * Events: `deployment` on every change, `log` per line, `end` when finished — then the stream
 * is closed). Operators can cancel it while it runs and retry it when it failed.
 */
import type { Deployment, DeploymentLogLine, DeploymentStep, DeploymentStreamEvents } from '@opsplane/api';
import { api, errorMessage } from '../api.js';
import { ago, defList, errorBox, fmtTime, h, notice, put } from '../dom.js';
import { pageHeader } from '../layout.js';
import { navigate, type PageContext } from '../router.js';
import { deployBadge, isFinished, progressBar, stepLabel, stepProgress } from '../progress.js';
import { canOperate } from '../session.js';
import { renderHead, syncRows, type Column } from '../table.js';

function duration(s: DeploymentStep): string {
  if (!s.started_at) return '—';
  const end = s.finished_at ? new Date(s.finished_at).getTime() : Date.now();
  const ms = end - new Date(s.started_at).getTime();
  return ms < 1000 ? `${ms} ms` : `${(ms / 1000).toFixed(1)} s`;
}

const STEP_COLUMNS: Column<DeploymentStep>[] = [
  { label: 'Step', cell: (s) => h('strong', null, s.name) },
  { label: 'Status', cell: (s) => deployBadge(s.status) },
  { label: 'Started', cell: (s) => (s.started_at ? fmtTime(s.started_at) : '—') },
  { label: 'Took', cell: duration },
  { label: 'Message', className: 'wrap', cell: (s) => s.message ?? '—' },
];

function logLine(l: DeploymentLogLine): HTMLElement {
  return h(
    'div',
    { class: `log-line log-${l.level}`, data: { seq: String(l.seq) } },
    h('time', { datetime: l.at }, new Date(l.at).toLocaleTimeString()),
    h('span', { class: 'log-step' }, l.step ?? ''),
    h('span', { class: 'log-msg' }, l.message),
  );
}

export function deploymentPage(ctx: PageContext): void {
  const id = ctx.params[0] ?? '';
  const title = h('span', null, 'Deployment');
  const message = h('div');
  const summary = h('div', { class: 'panel' }, h('p', { class: 'muted' }, 'Loading…'));
  const stepHead = h('thead');
  const stepBody = h('tbody');
  renderHead(stepHead, STEP_COLUMNS);
  const log = h('div', { class: 'log', id: 'deployment-log', role: 'log', 'aria-live': 'polite' });
  const live = h('span', { class: 'muted live-state' });
  const cancel = h('button', { type: 'button', class: 'btn btn-danger', hidden: true }, 'Cancel');
  const retry = h('button', { type: 'button', class: 'btn', hidden: true }, 'Retry');
  let lastSeq = 0;
  let stream: EventSource | undefined;

  ctx.root.append(
    pageHeader(title, {
      crumbs: [['Deployments', '#/deployments']],
      actions: canOperate() ? [cancel, retry] : [],
    }),
    message,
    summary,
    h(
      'section',
      { class: 'panel' },
      h('h2', null, 'Steps'),
      h('div', { class: 'table-wrap' }, h('table', { class: 'data', id: 'steps-table' }, stepHead, stepBody)),
    ),
    h('section', { class: 'panel' }, h('h2', null, 'Log ', live), log),
  );

  const show = (d: Deployment) => {
    const p = stepProgress(d);
    const label = stepLabel(d);
    put(title, `${d.type} ${d.device_name} `, deployBadge(d.status));
    put(
      summary,
      h(
        'div',
        { class: 'rollout-progress' },
        progressBar(p.done, p.total, 'steps done'),
        h('span', null, label && !p.failedAt ? ` current step: ${label}` : ` ${label}`),
      ),
      d.error ? errorBox(`${d.error_code ? `${d.error_code}: ` : ''}${d.error}`) : null,
      defList([
        ['Device', `${d.device_name} (${d.area})`],
        ['Version', d.version || '—'],
        [
          'Rollout',
          h('a', { href: `#/rollouts/${encodeURIComponent(d.rollout_id)}` }, d.rollout_id.slice(0, 8)),
        ],
        ['Attempt', String(d.attempt)],
        ['Requested', [`by ${d.requested_by} `, ago(d.created_at)]],
        ['Started', d.started_at ? ago(d.started_at) : '—'],
        ['Finished', d.finished_at ? ago(d.finished_at) : '—'],
        ['Took', d.duration_ms !== null ? `${(d.duration_ms / 1000).toFixed(1)} s` : '—'],
        [
          'Retry of',
          d.retry_of
            ? h('a', { href: `#/deployments/${encodeURIComponent(d.retry_of)}` }, d.retry_of.slice(0, 8))
            : '—',
        ],
      ]),
    );
    syncRows(stepBody, d.steps, (s) => s.name, STEP_COLUMNS, { empty: 'No steps.' });
    cancel.hidden = isFinished(d.status) || d.cancel_requested;
    retry.hidden = d.status !== 'failed' && d.status !== 'cancelled';
  };
  const addLines = (lines: readonly DeploymentLogLine[]) => {
    const atBottom = log.scrollTop + log.clientHeight >= log.scrollHeight - 8;
    for (const l of lines) {
      if (l.seq <= lastSeq) continue;
      lastSeq = l.seq;
      log.append(logLine(l));
    }
    if (atBottom) log.scrollTop = log.scrollHeight;
  };

  const follow = () => {
    const events = api.url('GET /deployments/:id/events', { params: { id }, query: { after: lastSeq } });
    stream = new EventSource(events.url);
    put(live, 'live');
    const parse = <E extends keyof DeploymentStreamEvents>(
      _event: E,
      ev: Event,
    ): DeploymentStreamEvents[E] | undefined => {
      try {
        return JSON.parse((ev as MessageEvent<string>).data) as DeploymentStreamEvents[E];
      } catch {
        return undefined;
      }
    };
    stream.addEventListener('deployment', (ev) => {
      const d = parse('deployment', ev);
      if (d) show(d);
      put(live, 'live');
    });
    stream.addEventListener('log', (ev) => {
      const l = parse('log', ev);
      if (l) addLines([l]);
    });
    stream.addEventListener('end', (ev) => {
      const d = parse('end', ev);
      if (d) show(d);
      stream?.close();
      stream = undefined;
      put(live, 'finished');
    });
    stream.addEventListener('error', () => {
      if (!stream) return;
      put(
        live,
        stream.readyState === EventSource.CLOSED ? 'live updates stopped (reload the page)' : 'reconnecting…',
      );
    });
  };
  ctx.onCleanup(() => stream?.close());

  const load = async () => {
    try {
      const d = await api.call('GET /deployments/:id', { params: { id } });
      if (!ctx.active) return;
      show(d);
      addLines(d.log ?? []);
      if (!isFinished(d.status)) follow();
      else put(live, 'finished');
    } catch (e) {
      put(summary, errorBox(errorMessage(e)));
    }
  };
  void load();

  cancel.addEventListener('click', () => {
    cancel.disabled = true;
    api
      .call('POST /deployments/:id/cancel', { params: { id } })
      .then((d) => {
        show(d);
        put(message, notice('Cancel requested: a running deployment stops between two steps.', 'info'));
      })
      .catch((e: unknown) => put(message, errorBox(errorMessage(e))))
      .finally(() => {
        cancel.disabled = false;
      });
  });
  retry.addEventListener('click', () => {
    retry.disabled = true;
    api
      .call('POST /deployments/:id/retry', { params: { id } })
      .then((d) => navigate(`#/deployments/${encodeURIComponent(d.id)}`))
      .catch((e: unknown) => {
        put(message, errorBox(errorMessage(e)));
        retry.disabled = false;
      });
  });
}
