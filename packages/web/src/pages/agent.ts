/**
 * #/agents/<code> — one agent, live through the controller holding it: details (joined with its
 * device), packages with Start/Stop/Restart for operators (batch jobs; every result shown),
 * per-package health and the host's system metrics (agent-sections.ts), and for admins revoking
 * the agent's identity (every controller drops and refuses it) or reinstating it. Each section
 * loads and fails on its own.
 */
import type { RouteResponse } from '@opsplane/api';
import { api, errorMessage } from '../api.js';
import { describeJob, runPackageAction, type PackageAction } from '../batch.js';
import { badge, errorBox, fmtDuration, h, notice, put } from '../dom.js';
import { pageHeader } from '../layout.js';
import type { PageContext } from '../router.js';
import { canOperate, isAdmin } from '../session.js';
import { messageRow, renderHead, syncRows, type Column } from '../table.js';
import { details, healthTable, metrics } from './agent-sections.js';
import { chartPanel } from '../charts.js';
import { field } from '../dom.js';
import { confirmButton, selectOf } from '../form.js';

type PackageStatus = RouteResponse<'GET /agents/:code/packages'>['packages'][number];

function section(id: string, title: string): { el: HTMLElement; body: HTMLElement } {
  const body = h('div', { class: 'section-body' }, h('p', { class: 'muted' }, 'Loading…'));
  return {
    el: h(
      'section',
      { class: 'panel', id, 'aria-labelledby': `${id}-title` },
      h('h2', { id: `${id}-title` }, title),
      body,
    ),
    body,
  };
}

export function agentPage(ctx: PageContext): void {
  const code = ctx.params[0] ?? '';
  const title = h('span', null, code);
  const info = section('agent-details', 'Details');
  const pkgs = section('agent-packages', 'Packages');
  const health = section('agent-health', 'Health');
  const system = section('agent-system', 'System');
  const results = h('div', { class: 'results', id: 'action-results', 'aria-live': 'polite' });
  const busy = new Set<string>();

  const act = (action: PackageAction, name: string) => {
    busy.add(name);
    renderPackages();
    put(results, notice(`${action} ${name}…`, 'info'));
    runPackageAction(action, code, name)
      .then((job) => {
        const { ok, lines } = describeJob(action, job);
        put(
          results,
          lines.map((l) => notice(l, ok ? 'ok' : 'bad')),
        );
      })
      .catch((e: unknown) => put(results, errorBox(errorMessage(e))))
      .finally(() => {
        busy.delete(name);
        void poller.refresh();
      });
  };

  const button = (action: PackageAction, label: string, p: PackageStatus, disabled: boolean) =>
    h(
      'button',
      {
        type: 'button',
        class: `btn btn-small${action === 'stop' ? ' btn-danger' : ''}`,
        'aria-label': `${label} ${p.name}`,
        data: { action, package: p.name },
        props: { disabled: disabled || busy.has(p.name) },
        on: { click: () => act(action, p.name) },
      },
      label,
    );

  const columns: Column<PackageStatus>[] = [
    { label: 'Package', cell: (p) => h('strong', null, p.name) },
    { label: 'Version', cell: (p) => p.version || '—' },
    { label: 'State', cell: (p) => badge(p.status ?? (p.is_running ? 'running' : 'stopped')) },
    { label: 'PID', cell: (p) => p.pid ?? '—' },
    { label: 'Restarts', cell: (p) => p.restarts ?? 0 },
    {
      label: 'Uptime',
      cell: (p) => (p.is_running ? fmtDuration(p.uptime_seconds ?? p.duration / 1e9) : '—'),
    },
    { label: 'Health', cell: (p) => badge(p.health_status ?? 'unknown') },
    { label: 'Last error', className: 'wrap', cell: (p) => p.last_error || '—' },
  ];
  if (canOperate()) {
    columns.push({
      label: 'Actions',
      className: 'actions',
      cell: (p) =>
        h(
          'div',
          { class: 'btn-row' },
          button('start', 'Start', p, p.is_running),
          button('stop', 'Stop', p, !p.is_running),
          button('restart', 'Restart', p, false),
        ),
    });
  }
  const pkgHead = h('thead');
  const pkgBody = h('tbody');
  renderHead(pkgHead, columns);
  messageRow(pkgBody, columns.length, 'Loading…');
  let packages: PackageStatus[] | undefined;
  const pkgError = h('div');
  const renderPackages = () => {
    if (packages)
      syncRows(pkgBody, packages, (p) => p.name, columns, { empty: 'This agent supervises no packages.' });
  };
  put(
    pkgs.body,
    pkgError,
    h('div', { class: 'table-wrap' }, h('table', { class: 'data', id: 'packages-table' }, pkgHead, pkgBody)),
    results,
  );

  // Metrics over time (kept by the server): charts, refreshed every 15 s and on a new window.
  const history = section('agent-history', 'Metrics over time');
  const charts = chartPanel();
  ctx.onCleanup(() => charts.destroy());
  const windowSel = selectOf(
    'history-window',
    [
      ['1h', 'last hour'],
      ['6h', 'last 6 hours'],
      ['24h', 'last 24 hours'],
    ],
    ctx.query.get('window') ?? '1h',
  );
  const historyNote = h('p', { class: 'muted', id: 'history-note' });
  put(history.body, h('div', { class: 'toolbar' }, field('Window', windowSel)), historyNote, charts.el);
  const historyPoller = ctx.poll(async () => {
    try {
      const r = await api.call('GET /agents/:code/metrics/history', {
        params: { code },
        query: { window: windowSel.value },
      });
      put(
        historyNote,
        r.system.length === 0
          ? 'No samples yet: the server samples online agents every ' +
              `${Math.round(r.interval_ms / 1000)} s.`
          : `${r.system.length} samples, one every ${Math.round(r.interval_ms / 1000)} s.`,
      );
      charts.update(r);
    } catch (e) {
      put(historyNote, errorBox(errorMessage(e)));
    }
  }, 15_000);
  windowSel.addEventListener('change', () => {
    const q = new URLSearchParams(ctx.query);
    q.set('window', windowSel.value);
    ctx.setQuery(q);
    void historyPoller.refresh();
  });

  // Identity (admins): revoked or not, from the platform's revocation list (etcd).
  const identity = h('div', { id: 'agent-identity', 'aria-live': 'polite' });
  const identityActions = h('span', { class: 'btn-row' });
  const loadIdentity = async () => {
    if (!isAdmin()) return;
    try {
      const r = await api.call('GET /revocations', {});
      const rev = r.revocations.find((x) => x.agent_code === code);
      if (rev) {
        put(
          identity,
          notice(
            `Revoked ${rev.revoked_at}${rev.revoked_by ? ` by ${rev.revoked_by}` : ''}${rev.reason ? `: ${rev.reason}` : ''}. ` +
              'Every controller refuses this agent.',
            'bad',
          ),
        );
        put(
          identityActions,
          confirmButton('Reinstate', 'Confirm reinstate', () => void changeIdentity('reinstate'), {
            id: 'agent-reinstate',
          }),
        );
      } else {
        put(identity);
        put(
          identityActions,
          confirmButton('Revoke identity', 'Confirm revoke', () => void changeIdentity('revoke'), {
            id: 'agent-revoke',
          }),
        );
      }
    } catch (e) {
      put(identity, errorBox(errorMessage(e)));
    }
  };
  const changeIdentity = async (what: 'revoke' | 'reinstate') => {
    try {
      if (what === 'revoke')
        await api.call('POST /agents/:code/revoke', {
          params: { code },
          body: { reason: 'revoked in the web UI' },
        });
      else await api.call('DELETE /revocations/agents/:code', { params: { code } });
      put(results, notice(what === 'revoke' ? `Revoked ${code}.` : `Reinstated ${code}.`, 'ok'));
    } catch (e) {
      put(results, errorBox(errorMessage(e)));
    }
    await loadIdentity();
  };

  ctx.root.append(
    pageHeader(title, {
      crumbs: [['Agents', '#/agents']],
      actions: [
        ...(canOperate()
          ? [
              h(
                'a',
                { class: 'btn', id: 'agent-batch', href: `#/batches/new?agents=${encodeURIComponent(code)}` },
                'Batch / config push…',
              ),
            ]
          : []),
        ...(isAdmin() ? [identityActions] : []),
      ],
    }),
    identity,
    h('div', { class: 'panels' }, info.el, system.el, pkgs.el, health.el),
    history.el,
  );

  const guard = async (body: HTMLElement, load: () => Promise<HTMLElement>) => {
    try {
      put(body, await load());
    } catch (e) {
      put(body, errorBox(errorMessage(e)));
    }
  };
  void loadIdentity();
  const poller = ctx.poll(async () => {
    await Promise.all([
      guard(info.body, async () => {
        const a = await api.call('GET /agents/by-code/:code', { params: { code } });
        put(title, a.agent_code, ' ', badge(a.status));
        return details(a);
      }),
      api
        .call('GET /agents/:code/packages', { params: { code } })
        .then((r) => {
          packages = [...r.packages].sort((x, y) => x.name.localeCompare(y.name));
          put(pkgError);
          renderPackages();
        })
        .catch((e: unknown) => {
          put(pkgError, errorBox(errorMessage(e)));
          if (!packages) messageRow(pkgBody, columns.length, 'Packages could not be loaded.');
        }),
      guard(health.body, async () =>
        healthTable(await api.call('GET /agents/:code/health', { params: { code } })),
      ),
      guard(system.body, async () =>
        metrics(await api.call('GET /agents/:code/metrics/system', { params: { code } })),
      ),
    ]);
  });
}
