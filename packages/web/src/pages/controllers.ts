/**
 * #/controllers — the controllers discovery sees in etcd, one table per area (id, address,
 * status, version, agents, last heartbeat, what the last view refresh got from it), and a
 * warning while discovery is not synced or not watching.
 */
import type { LiveController } from '@opsplane/api';
import { api, errorMessage } from '../api.js';
import { ago, badge, errorBox, h, notice, put } from '../dom.js';
import { pageHeader } from '../layout.js';
import type { PageContext } from '../router.js';
import { renderHead, syncRows, type Column } from '../table.js';

const COLUMNS: Column<LiveController>[] = [
  {
    label: 'Controller',
    cell: (c) => [
      h('strong', null, c.id),
      c.flavor === 'go'
        ? [' ', h('span', { class: 'tag', title: "a Go controller's registration" }, 'Go')]
        : '',
    ],
  },
  { label: 'Address', cell: (c) => h('code', null, c.address) },
  { label: 'Status', cell: (c) => badge(c.status) },
  { label: 'Version', cell: (c) => c.version || '—' },
  {
    label: 'Agents',
    // A Go controller does not register how many agents it holds.
    cell: (c) =>
      h(
        'a',
        { href: `#/agents?area=${encodeURIComponent(c.area)}` },
        c.flavor === 'go' ? '—' : String(c.agent_count),
      ),
  },
  { label: 'Listed', cell: (c) => (c.listed_agents === null ? '—' : c.listed_agents) },
  { label: 'Last heartbeat', cell: (c) => ago(c.last_heartbeat) },
  { label: 'Started', cell: (c) => ago(c.start_time) },
  {
    label: 'Last error',
    className: 'wrap',
    cell: (c) => (c.last_error ? `${c.last_error.code}: ${c.last_error.message}` : '—'),
  },
];

/** One area's table, kept across refreshes so rows update in place. */
interface AreaTable {
  el: HTMLElement;
  heading: HTMLElement;
  tbody: HTMLTableSectionElement;
}

function areaTable(area: string): AreaTable {
  const thead = h('thead');
  const tbody = h('tbody');
  renderHead(thead, COLUMNS);
  const heading = h('h2', null, area);
  const el = h(
    'section',
    { class: 'panel', data: { area } },
    heading,
    h('div', { class: 'table-wrap' }, h('table', { class: 'data' }, thead, tbody)),
  );
  return { el, heading, tbody };
}

export function controllersPage(ctx: PageContext): void {
  const status = h('div', { class: 'list-status' });
  const list = h('div', { class: 'area-tables', id: 'controllers' }, h('p', { class: 'muted' }, 'Loading…'));
  ctx.root.append(pageHeader('Controllers'), status, list);
  const tables = new Map<string, AreaTable>();

  ctx.poll(async () => {
    try {
      const r = await api.call('GET /controllers');
      const d = r.discovery;
      put(
        status,
        !d.synced || !d.watching
          ? notice(
              `Discovery is not ${d.synced ? 'watching etcd' : 'synced'}: ${d.last_error ?? 'etcd not reached yet'}`,
              'warn',
            )
          : null,
      );
      const byArea = new Map<string, LiveController[]>();
      for (const c of r.controllers) byArea.set(c.area, [...(byArea.get(c.area) ?? []), c]);
      const areas = [...byArea.keys()].sort();
      if (areas.length === 0) {
        tables.clear();
        put(list, h('p', { class: 'muted' }, 'No controller is registered in etcd.'));
        return;
      }
      const shown = areas.map((area) => {
        const t = tables.get(area) ?? areaTable(area);
        tables.set(area, t);
        const cs = (byArea.get(area) ?? []).sort((a, b) => a.id.localeCompare(b.id));
        const online = cs.filter((c) => c.status === 'online').length;
        put(t.heading, area, ' ', h('span', { class: 'muted' }, `${online}/${cs.length} online`));
        syncRows(t.tbody, cs, (c) => c.id, COLUMNS);
        return t.el;
      });
      for (const a of [...tables.keys()]) if (!byArea.has(a)) tables.delete(a);
      const same = shown.length === list.children.length && shown.every((el, i) => list.children[i] === el);
      if (!same) list.replaceChildren(...shown);
    } catch (e) {
      put(status, errorBox(errorMessage(e)));
    }
  });
}
