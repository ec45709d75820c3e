/**
 * The read-only sections of the agent page: its details (joined with its device), the health
 * of its packages, and the host's system metrics — each a function of the API's answer.
 */
import type { AgentDetail, RouteResponse } from '@opsplane/api';
import { ago, badge, defList, fmtBytes, fmtDuration, h } from '../dom.js';
import { renderHead, syncRows, type Column } from '../table.js';

type AgentHealth = RouteResponse<'GET /agents/:code/health'>;
type ServiceHealth = AgentHealth['services'][string];
type SystemMetrics = RouteResponse<'GET /agents/:code/metrics/system'>;

/** The agent's convergence on its policy: `web-prod r3 applied · web 1.2.0`, the error if any. */
function distribution(a: AgentDetail): HTMLElement | string {
  const d = a.distribution;
  if (!d || !d.policy) return 'no policy';
  const err = d.packages.find((p) => p.error)?.error ?? d.agent?.error;
  return h(
    'span',
    { id: 'agent-distribution' },
    `${d.policy} r${d.revision} `,
    badge(d.state, d.state === 'applying' ? 'info' : d.state === 'applied' ? 'ok' : undefined),
    ` ${d.packages.map((p) => `${p.name} ${p.version || p.desired_version}${p.drift ? ' (drift)' : ''}`).join(', ')}`,
    err ? h('span', { class: 'muted' }, ` — ${err.code}: ${err.message}`) : null,
  );
}

export function details(a: AgentDetail): HTMLElement {
  const labels = Object.entries(a.labels);
  return defList([
    ['Hostname', a.hostname],
    ['Address', a.address],
    ['Area', a.area],
    ['Controller', a.controller_id],
    ['Status', badge(a.status)],
    ['Health', badge(a.health_status)],
    ['Version', a.version],
    ['OS / arch', [a.os, a.arch].filter(Boolean).join(' / ')],
    ['Zone', a.zone ?? ''],
    ['Mode / group / deployment', [a.mode, a.group, a.deployment].filter(Boolean).join(' / ')],
    [
      'Labels',
      labels.length
        ? h(
            'ul',
            { class: 'tags' },
            labels.map(([k, v]) => h('li', { class: 'tag' }, `${k}=${v}`)),
          )
        : '',
    ],
    ['Desired state', distribution(a)],
    ['Registered', ago(a.register_time)],
    ['Last heartbeat', ago(a.last_heartbeat)],
    [
      'Device',
      a.device
        ? [
            h('a', { href: `#/devices?q=${encodeURIComponent(a.device.name)}` }, a.device.name),
            ` ${a.device.ip} `,
            badge(a.device.status),
          ]
        : 'no device has this agent code',
    ],
  ]);
}

export function healthTable(hl: AgentHealth): HTMLElement {
  const rows = Object.values(hl.services).sort((x, y) => x.name.localeCompare(y.name));
  const columns: Column<ServiceHealth>[] = [
    { label: 'Package', cell: (s) => s.name },
    { label: 'Status', cell: (s) => badge(s.status) },
    { label: 'Check', cell: (s) => s.check_type ?? '—' },
    { label: 'Latency', cell: (s) => (s.latency_ms !== undefined ? `${Math.round(s.latency_ms)} ms` : '—') },
    { label: 'Failures', cell: (s) => s.consecutive_failures ?? 0 },
    { label: 'Message', className: 'wrap', cell: (s) => s.message || '—' },
    { label: 'Checked', cell: (s) => ago(s.checked_at) },
  ];
  const thead = h('thead');
  const tbody = h('tbody');
  renderHead(thead, columns);
  syncRows(tbody, rows, (s) => s.name, columns, { empty: 'No health checks.' });
  return h(
    'div',
    null,
    h(
      'p',
      null,
      'Overall: ',
      badge(hl.overall_status),
      ' ',
      h('span', { class: 'muted' }, 'checked ', ago(hl.checked_at)),
    ),
    h('div', { class: 'table-wrap' }, h('table', { class: 'data' }, thead, tbody)),
  );
}

export function metrics(m: SystemMetrics): HTMLElement {
  const memPct =
    m.memory.used_percent ?? (m.memory.total_bytes ? (100 * m.memory.used_bytes) / m.memory.total_bytes : 0);
  return defList([
    ['CPU', `${m.cpu_percent.toFixed(1)} %${m.cpu_count ? ` of ${m.cpu_count} cores` : ''}`],
    [
      'Load (1/5/15 min)',
      `${m.load_average.load1.toFixed(2)} / ${m.load_average.load5.toFixed(2)} / ${m.load_average.load15.toFixed(2)}`,
    ],
    [
      'Memory',
      [
        h('meter', { min: 0, max: 100, low: 70, high: 90, optimum: 20, props: { value: memPct } }),
        ` ${fmtBytes(m.memory.used_bytes)} of ${fmtBytes(m.memory.total_bytes)} (${memPct.toFixed(0)} %)`,
      ],
    ],
    [
      'Disks',
      m.disks.length
        ? h(
            'ul',
            { class: 'plain' },
            m.disks.map((d) =>
              h('li', null, `${d.mount}: ${fmtBytes(d.used_bytes)} of ${fmtBytes(d.total_bytes)}`),
            ),
          )
        : '',
    ],
    ['Network', `↓ ${fmtBytes(m.network.rx_bytes)} · ↑ ${fmtBytes(m.network.tx_bytes)}`],
    ['Host uptime', fmtDuration(m.uptime_seconds)],
    ['Collected', ago(m.collected_at)],
  ]);
}
