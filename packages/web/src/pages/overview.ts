/**
 * #/ — the fleet at a glance: firing alerts by severity and the newest of them, controllers
 * online per area, agents and devices by status (each count is a `total` of a filtered list),
 * deployments queued/running and the latest failures. Each card loads on its own, so one
 * failing source does not blank the rest.
 */
import { alertTitle } from '../alerts.js';
import { api, errorMessage } from '../api.js';
import { AGENT_STATUSES, ALERT_KINDS, ALERT_SEVERITIES, DEVICE_STATUSES } from '../choices.js';
import { ago, badge, errorBox, h, notice, put, type Child } from '../dom.js';
import { pageHeader, setFiringCount } from '../layout.js';
import { link, type PageContext } from '../router.js';

function card(id: string, title: string, href: string): { el: HTMLElement; body: HTMLElement } {
  const body = h('div', { class: 'card-body' }, h('p', { class: 'muted' }, 'Loading…'));
  const el = h(
    'section',
    { class: 'card', id, 'aria-labelledby': `${id}-title` },
    h('h2', { id: `${id}-title` }, h('a', { href }, title)),
    body,
  );
  return { el, body };
}

/** A row of big numbers, each linking to the filtered list. */
function stats(
  items: readonly { label: string; value: Child; href?: string; status?: string }[],
): HTMLElement {
  return h(
    'div',
    { class: 'stats' },
    items.map((s) =>
      h(
        s.href ? 'a' : 'div',
        { class: 'stat', href: s.href, data: { stat: s.label } },
        h('span', { class: 'stat-value' }, s.value),
        h('span', { class: 'stat-label' }, s.status ? badge(s.status) : s.label),
      ),
    ),
  );
}

async function loadInto(body: HTMLElement, load: () => Promise<Child>): Promise<void> {
  try {
    put(body, await load());
  } catch (e) {
    put(body, errorBox(errorMessage(e)));
  }
}

/**
 * Firing alerts by severity and the 5 newest. The API filters by kind, not severity, and every
 * kind has one severity: a kind's count goes to the severity its alerts carry.
 */
async function alertsCard(): Promise<Child> {
  const [newest, byKind] = await Promise.all([
    api.call('GET /alerts', { query: { status: 'firing', pageSize: 5 } }),
    Promise.all(
      ALERT_KINDS.map((kind) => api.call('GET /alerts', { query: { status: 'firing', kind, pageSize: 1 } })),
    ),
  ]);
  setFiringCount(newest.total);
  const severity = new Map<string, number>(ALERT_SEVERITIES.map((s) => [s, 0]));
  for (const r of byKind) {
    const sev = r.items[0]?.severity;
    if (sev) severity.set(sev, (severity.get(sev) ?? 0) + r.total);
  }
  return [
    stats([
      { label: 'firing', status: 'firing', value: newest.total, href: '#/alerts' },
      ...[...severity].map(([sev, n]) => ({ label: sev, status: sev, value: n, href: '#/alerts' })),
    ]),
    h('h3', null, 'Newest firing'),
    newest.items.length === 0
      ? h('p', { class: 'muted' }, 'No alert is firing.')
      : h(
          'ul',
          { class: 'failure-list firing-list', id: 'newest-alerts' },
          newest.items.map((a) =>
            h(
              'li',
              { data: { subject: a.subject } },
              badge(a.severity),
              alertTitle(a),
              a.acknowledged_by ? h('span', { class: 'muted' }, `ack: ${a.acknowledged_by}`) : null,
              ago(a.first_seen),
            ),
          ),
        ),
  ];
}

async function controllersCard(): Promise<Child> {
  const r = await api.call('GET /controllers');
  const areas = new Map<string, { online: number; total: number }>();
  for (const c of r.controllers) {
    const a = areas.get(c.area) ?? { online: 0, total: 0 };
    a.total++;
    if (c.status === 'online') a.online++;
    areas.set(c.area, a);
  }
  const online = r.controllers.filter((c) => c.status === 'online').length;
  return [
    !r.discovery.synced || !r.discovery.watching
      ? notice(
          `Discovery is not ${r.discovery.synced ? 'watching' : 'synced'}: ${r.discovery.last_error ?? 'etcd not reached yet'}`,
          'warn',
        )
      : null,
    stats([{ label: 'online', value: `${online}/${r.total}`, href: '#/controllers' }]),
    areas.size === 0
      ? h('p', { class: 'muted' }, 'No controller is registered.')
      : h(
          'ul',
          { class: 'area-list' },
          [...areas.entries()]
            .sort(([a], [b]) => a.localeCompare(b))
            .map(([area, a]) =>
              h(
                'li',
                { data: { area } },
                h('span', { class: 'area-name' }, area),
                h('span', { class: 'area-count' }, `${a.online}/${a.total} online`),
                badge(a.online === 0 ? 'offline' : a.online < a.total ? 'degraded' : 'online'),
              ),
            ),
        ),
  ];
}

async function agentsCard(): Promise<Child> {
  const all = await api.call('GET /agents', { query: { pageSize: 1 } });
  const counts = await Promise.all(
    AGENT_STATUSES.map((status) =>
      api.call('GET /agents', { query: { status, pageSize: 1 } }).then((r) => r.total),
    ),
  );
  return [
    all.stale ? notice('The agent view is stale: some agents may be missing or outdated.', 'warn') : null,
    all.errors.length > 0
      ? notice(`${all.errors.length} controller(s) or area(s) could not be listed.`, 'warn')
      : null,
    stats([
      { label: 'total', value: all.total, href: '#/agents' },
      ...AGENT_STATUSES.map((status, i) => ({
        label: status,
        status,
        value: counts[i] ?? 0,
        href: link('/agents', { status }),
      })),
    ]),
  ];
}

async function devicesCard(): Promise<Child> {
  const counts = await Promise.all(
    DEVICE_STATUSES.map((status) =>
      api.call('GET /devices', { query: { status, pageSize: 1 } }).then((r) => r.total),
    ),
  );
  const total = counts.reduce((a, b) => a + b, 0);
  return stats([
    { label: 'total', value: total, href: '#/devices' },
    ...DEVICE_STATUSES.map((status, i) => ({
      label: status,
      status,
      value: counts[i] ?? 0,
      href: link('/devices', { status }),
    })),
  ]);
}

async function deploymentsCard(): Promise<Child> {
  const [queued, running, failed] = await Promise.all([
    api.call('GET /deployments', { query: { status: 'queued', pageSize: 1 } }),
    api.call('GET /deployments', { query: { status: 'running', pageSize: 1 } }),
    api.call('GET /deployments', { query: { status: 'failed', pageSize: 5 } }),
  ]);
  return [
    stats([
      {
        label: 'queued',
        status: 'queued',
        value: queued.total,
        href: link('/deployments', { status: 'queued' }),
      },
      {
        label: 'running',
        status: 'running',
        value: running.total,
        href: link('/deployments', { status: 'running' }),
      },
      {
        label: 'failed',
        status: 'failed',
        value: failed.total,
        href: link('/deployments', { status: 'failed' }),
      },
    ]),
    h('h3', null, 'Recent failures'),
    failed.items.length === 0
      ? h('p', { class: 'muted' }, 'None.')
      : h(
          'ul',
          { class: 'failure-list' },
          failed.items.map((d) =>
            h(
              'li',
              null,
              h('a', { href: `#/deployments/${encodeURIComponent(d.id)}` }, `${d.type} ${d.device_name}`),
              ' ',
              h('span', { class: 'muted' }, d.error_code ?? d.error ?? 'failed'),
              ' ',
              ago(d.finished_at ?? d.created_at),
            ),
          ),
        ),
  ];
}

export function overviewPage(ctx: PageContext): void {
  const cards = {
    alerts: card('card-alerts', 'Alerts', '#/alerts'),
    controllers: card('card-controllers', 'Controllers', '#/controllers'),
    agents: card('card-agents', 'Agents', '#/agents'),
    devices: card('card-devices', 'Devices', '#/devices'),
    deployments: card('card-deployments', 'Deployments', '#/deployments'),
  };
  ctx.root.append(
    pageHeader('Overview'),
    h(
      'div',
      { class: 'cards' },
      Object.values(cards).map((c) => c.el),
    ),
  );
  ctx.poll(async () => {
    await Promise.all([
      loadInto(cards.alerts.body, alertsCard),
      loadInto(cards.controllers.body, controllersCard),
      loadInto(cards.agents.body, agentsCard),
      loadInto(cards.devices.body, devicesCard),
      loadInto(cards.deployments.body, deploymentsCard),
    ]);
  });
}
