/**
 * #/devices — the device inventory (GET /devices: search, area/status/os filters, sorting,
 * paging; the state in the hash query). Operators create, edit and delete devices and import
 * them from CSV/JSON (device-form.ts; secrets write-only), tick devices (kept across refreshes
 * and pages) and deploy the agent to them with the panel of deploy-form.ts.
 */
import type { Device, DeviceSortField } from '@opsplane/api';
import { api, errorMessage } from '../api.js';
import { DEVICE_OSES, DEVICE_STATUSES, isOneOf } from '../choices.js';
import { append, badge, errorBox, field, h, notice, put } from '../dom.js';
import { confirmButton } from '../form.js';
import { areaSelect, filterSelect, searchBox } from '../filters.js';
import { pageHeader } from '../layout.js';
import type { PageContext } from '../router.js';
import { canOperate, canOperateIn } from '../session.js';
import {
  messageRow,
  parseSort,
  renderHead,
  renderPager,
  syncRows,
  type Column,
  type Sort,
} from '../table.js';
import { deployForm } from './deploy-form.js';
import { deviceForm, deviceImport } from './device-form.js';

const selectBox = (d: Device) =>
  h('input', {
    type: 'checkbox',
    class: 'select-device',
    'aria-label': `Select ${d.name}`,
    data: { id: d.id },
  });

const COLUMNS: Column<Device, DeviceSortField>[] = [
  { label: 'Name', sort: 'name', cell: (d) => h('strong', null, d.name) },
  { label: 'IP', sort: 'ip', cell: (d) => h('code', null, d.ip) },
  { label: 'Area', sort: 'function_area', cell: (d) => d.function_area },
  { label: 'OS', sort: 'os', cell: (d) => `${d.os} / ${d.arch}` },
  { label: 'Status', sort: 'status', cell: (d) => badge(d.status) },
  { label: 'Agent version', cell: (d) => d.agent_version || '—' },
  {
    label: 'Agent',
    sort: 'agent_code',
    cell: (d) =>
      d.agent_code ? h('a', { href: `#/agents/${encodeURIComponent(d.agent_code)}` }, d.agent_code) : '—',
  },
];
const SORTABLE = COLUMNS.flatMap((c) => (c.sort ? [c.sort] : []));

export function devicesPage(ctx: PageContext): void {
  const q = ctx.query;
  const s = {
    q: q.get('q') ?? '',
    area: q.get('area') ?? '',
    status: q.get('status') ?? '',
    os: q.get('os') ?? '',
    page: Math.max(1, Number(q.get('page')) || 1),
    pageSize: Number(q.get('pageSize')) || 50,
    sort: parseSort(q.get('sort'), { field: 'name', desc: false }),
  };
  const operator = canOperate();
  const selected = new Set<string>();
  let shown: Device[] = [];
  const editor = h('div', { id: 'device-editor' });
  const flash = h('div', { class: 'results', id: 'device-results', 'aria-live': 'polite' });
  const closeEditor = () => put(editor);
  const saved = (what: string) => (d: Device) => {
    closeEditor();
    put(flash, notice(`${what} ${d.name} (agent code ${d.agent_code}).`, 'ok'));
    void poller.refresh();
  };
  const openForm = (d?: Device) => {
    put(editor, deviceForm(d, saved(d ? 'Saved' : 'Created'), closeEditor).el);
    editor.querySelector<HTMLInputElement>('input')?.focus();
  };
  const remove = (d: Device) =>
    api
      .call('DELETE /devices/:id', { params: { id: d.id } })
      .then(() => {
        selected.delete(d.id);
        put(flash, notice(`Deleted ${d.name}.`, 'ok'));
        void poller.refresh();
      })
      .catch((e: unknown) => put(flash, errorBox(errorMessage(e))));
  const actions: Column<Device> = {
    label: 'Actions',
    className: 'actions',
    cell: (d) =>
      canOperateIn(d.function_area)
        ? h(
            'div',
            { class: 'btn-row' },
            h(
              'button',
              {
                type: 'button',
                class: 'btn btn-small',
                'aria-label': `Edit ${d.name}`,
                data: { action: 'edit', device: d.name },
                // The row's cells outlive refreshes: edit what the last refresh loaded.
                on: { click: () => openForm(shown.find((x) => x.id === d.id) ?? d) },
              },
              'Edit',
            ),
            confirmButton('Delete', 'Confirm delete', () => void remove(d), {
              'aria-label': `Delete ${d.name}`,
              data: { action: 'delete', device: d.name },
            }),
          )
        : null,
  };
  const columns: Column<Device>[] = operator
    ? [{ label: '', className: 'select', cell: selectBox }, ...COLUMNS, actions]
    : COLUMNS;

  const thead = h('thead');
  const tbody = h('tbody');
  const pager = h('div', { class: 'pager' });
  const status = h('div', { class: 'list-status' });
  const deploy = operator ? deployForm(() => [...selected]) : undefined;

  const changed = (resetPage = true) => {
    if (resetPage) s.page = 1;
    const out = new URLSearchParams();
    for (const k of ['q', 'area', 'status', 'os'] as const) if (s[k]) out.set(k, s[k]);
    if (s.page > 1) out.set('page', String(s.page));
    if (s.pageSize !== 50) out.set('pageSize', String(s.pageSize));
    if (s.sort.field !== 'name' || s.sort.desc) out.set('sort', (s.sort.desc ? '-' : '') + s.sort.field);
    ctx.setQuery(out);
    void poller.refresh();
  };
  const set = (k: 'q' | 'area' | 'status' | 'os') => (v: string) => {
    s[k] = v;
    changed();
  };
  const onSort = (sort: Sort) => {
    s.sort = sort;
    renderHead(thead, columns, s.sort, onSort);
    changed(false);
  };
  renderHead(thead, columns, s.sort, onSort);
  messageRow(tbody, columns.length, 'Loading…');

  // Selection: the row checkboxes and the "all shown" box in the header.
  const syncSelection = () => {
    for (const cb of tbody.querySelectorAll<HTMLInputElement>('input.select-device'))
      cb.checked = selected.has(cb.dataset.id ?? '');
    const all = thead.querySelector<HTMLInputElement>('input.select-all');
    if (all) all.checked = shown.length > 0 && shown.every((d) => selected.has(d.id));
    deploy?.update();
  };
  const toggle = (ids: readonly string[], on: boolean) => {
    for (const id of ids)
      if (on) selected.add(id);
      else selected.delete(id);
    syncSelection();
  };
  tbody.addEventListener('change', (ev) => {
    const t = ev.target as HTMLInputElement;
    if (t.matches('input.select-device') && t.dataset.id) toggle([t.dataset.id], t.checked);
  });
  thead.addEventListener('change', (ev) => {
    const t = ev.target as HTMLInputElement;
    if (t.matches('input.select-all'))
      toggle(
        shown.map((d) => d.id),
        t.checked,
      );
  });
  const addSelectAll = () => {
    const th = thead.querySelector('th.select');
    if (th && !th.firstChild)
      th.append(
        h('input', { type: 'checkbox', class: 'select-all', 'aria-label': 'Select all shown devices' }),
      );
  };

  const headerActions = operator
    ? [
        h(
          'button',
          { type: 'button', class: 'btn btn-primary', id: 'new-device', on: { click: () => openForm() } },
          'New device',
        ),
        h(
          'button',
          {
            type: 'button',
            class: 'btn',
            id: 'import-devices',
            on: {
              click: () => {
                put(
                  editor,
                  deviceImport(() => void poller.refresh()),
                );
                editor.querySelector<HTMLInputElement>('input')?.focus();
              },
            },
          },
          'Import…',
        ),
      ]
    : [];
  append(
    ctx.root,
    pageHeader('Devices', { actions: headerActions }),
    editor,
    flash,
    h(
      'div',
      { class: 'toolbar' },
      field('Search', searchBox(ctx, 'device-search', 'Name, IP, area, agent…', s.q, set('q'))),
      field('Area', areaSelect('device-area', s.area, set('area'))),
      field('Status', filterSelect('device-status', 'Any status', DEVICE_STATUSES, s.status, set('status'))),
      field('OS', filterSelect('device-os', 'Any OS', DEVICE_OSES, s.os, set('os'))),
    ),
    deploy?.el,
    status,
    h('div', { class: 'table-wrap' }, h('table', { class: 'data', id: 'devices-table' }, thead, tbody)),
    h('div', { class: 'table-foot' }, pager),
  );

  const poller = ctx.poll(async () => {
    try {
      const r = await api.call('GET /devices', {
        query: {
          q: s.q,
          function_area: s.area,
          status: s.status,
          os: isOneOf(DEVICE_OSES, s.os) ? s.os : undefined,
          page: s.page,
          pageSize: s.pageSize,
          sort: isOneOf(SORTABLE, s.sort.field) ? s.sort.field : undefined,
          order: s.sort.desc ? 'desc' : 'asc',
        },
      });
      shown = r.devices;
      put(status);
      const filtered = s.q || s.area || s.status || s.os;
      syncRows(tbody, r.devices, (d) => d.id, columns, {
        empty: filtered ? 'No device matches these filters.' : 'No devices yet.',
      });
      const onPage = (page: number, pageSize: number) => {
        s.page = page;
        s.pageSize = pageSize;
        changed(false);
      };
      renderPager(pager, { page: s.page, pageSize: s.pageSize, total: r.total }, onPage, [20, 50, 100, 200]);
      if (operator) {
        addSelectAll();
        syncSelection();
      }
    } catch (e) {
      put(status, errorBox(errorMessage(e)));
    }
  });
}
