/**
 * Data tables that refresh in place: rows are keyed, a cell is replaced only when its content
 * changed (so buttons and focus survive the 5-second refresh), headers sort through the API
 * (`sort=[-]field`), and a pager walks `page`/`pageSize`.
 */
import { append, h, type Child } from './dom.js';
import { navigate } from './router.js';

export interface Column<T, S extends string = string> {
  label: string;
  /** The API's sort field for this column, when it can sort by it. */
  sort?: S;
  className?: string;
  cell(item: T): Child;
}

export interface Sort {
  field: string;
  desc: boolean;
}

export function parseSort(s: string | null | undefined, fallback: Sort): Sort {
  if (!s) return fallback;
  return s.startsWith('-') ? { field: s.slice(1), desc: true } : { field: s, desc: false };
}

export const sortParam = (s: Sort): string => (s.desc ? '-' : '') + s.field;

/** Fills `thead` with the column labels; sortable ones are buttons that call `onSort`. */
export function renderHead<T>(
  thead: HTMLTableSectionElement,
  columns: readonly Column<T>[],
  sort?: Sort,
  onSort?: (s: Sort) => void,
): void {
  const cells = columns.map((c) => {
    if (!c.sort || !onSort) return h('th', { class: c.className, scope: 'col' }, c.label);
    const field = c.sort;
    const active = sort?.field === field;
    const th = h(
      'th',
      {
        class: c.className,
        scope: 'col',
        'aria-sort': active ? (sort.desc ? 'descending' : 'ascending') : 'none',
      },
      h(
        'button',
        {
          type: 'button',
          class: 'sort' + (active ? ' sorted' : ''),
          on: { click: () => onSort({ field, desc: active ? !sort.desc : false }) },
        },
        c.label,
        h('span', { class: 'sort-mark', 'aria-hidden': 'true' }, active ? (sort.desc ? ' ▼' : ' ▲') : ''),
      ),
    );
    return th;
  });
  thead.replaceChildren(h('tr', null, cells));
}

/** A message row spanning the table (loading, empty, error). */
export function messageRow(
  tbody: HTMLTableSectionElement,
  colspan: number,
  text: string,
  cls = 'empty',
): void {
  tbody.replaceChildren(h('tr', { class: cls }, h('td', { colspan }, text)));
}

/**
 * Makes `tbody` show `items` in order: rows are reused by key, cells replaced only when they
 * differ (`isEqualNode`), rows without a key (messages) removed. `init` runs once per new row.
 */
export function syncRows<T>(
  tbody: HTMLTableSectionElement,
  items: readonly T[],
  key: (item: T) => string,
  columns: readonly Column<T>[],
  opts: { empty?: string; init?: (tr: HTMLTableRowElement, item: T) => void } = {},
): void {
  if (items.length === 0) {
    messageRow(tbody, columns.length, opts.empty ?? 'Nothing to show.');
    return;
  }
  const old = new Map<string, HTMLTableRowElement>();
  for (const tr of Array.from(tbody.rows)) {
    if (tr.dataset.key !== undefined) old.set(tr.dataset.key, tr);
    else tr.remove();
  }
  items.forEach((item, i) => {
    const k = key(item);
    let tr = old.get(k);
    old.delete(k);
    if (!tr) {
      tr = h('tr', { data: { key: k } });
      opts.init?.(tr, item);
    }
    columns.forEach((c, ci) => {
      const td = h('td', { class: c.className });
      append(td, c.cell(item));
      const cur = tr.cells[ci];
      if (!cur) tr.appendChild(td);
      else if (!cur.isEqualNode(td)) tr.replaceChild(td, cur);
    });
    const at = tbody.rows[i];
    if (at !== tr) tbody.insertBefore(tr, at ?? null);
  });
  for (const tr of old.values()) tr.remove();
}

/** "1–20 of 42", previous/next and a page-size chooser. */
export function renderPager(
  el: HTMLElement,
  state: { page: number; pageSize: number; total: number },
  onChange: (page: number, pageSize: number) => void,
  sizes: readonly number[] = [20, 50, 100],
): void {
  const { page, pageSize, total } = state;
  const pages = Math.max(1, Math.ceil(total / pageSize));
  const from = total === 0 ? 0 : (page - 1) * pageSize + 1;
  const to = Math.min(total, page * pageSize);
  el.replaceChildren(
    h('span', { class: 'pager-info' }, `${from}–${to} of ${total}`),
    h(
      'button',
      { type: 'button', props: { disabled: page <= 1 }, on: { click: () => onChange(page - 1, pageSize) } },
      '‹ Prev',
    ),
    h('span', { class: 'pager-page' }, `Page ${Math.min(page, pages)} of ${pages}`),
    h(
      'button',
      {
        type: 'button',
        props: { disabled: page >= pages },
        on: { click: () => onChange(page + 1, pageSize) },
      },
      'Next ›',
    ),
    h(
      'select',
      {
        'aria-label': 'Rows per page',
        on: { change: (ev) => onChange(1, Number((ev.target as HTMLSelectElement).value)) },
      },
      sizes.map((n) => h('option', { value: String(n), props: { selected: n === pageSize } }, `${n} / page`)),
    ),
  );
}

/**
 * syncRows' `init` for rows that open a page: the whole row is clickable, except the links and
 * buttons inside it, which keep their own action.
 */
export function linkRows<T>(href: (item: T) => string): (tr: HTMLTableRowElement, item: T) => void {
  return (tr, item) => {
    tr.classList.add('clickable');
    tr.addEventListener('click', (ev) => {
      if (!(ev.target as Element).closest('a, button')) navigate(href(item));
    });
  };
}
