/**
 * DOM building without HTML strings: `h()` creates elements and sets text through text nodes
 * only (API data — hostnames, labels, messages — may contain markup and must stay text), plus
 * the small formatting and status-badge helpers every page uses. No inline styles (CSP).
 */

export type Child = Node | string | number | null | undefined | false | readonly Child[];

type Handlers = Partial<{ [K in keyof HTMLElementEventMap]: (ev: HTMLElementEventMap[K]) => void }>;

export interface Attrs {
  class?: string | undefined;
  on?: Handlers;
  /** data-* attributes. */
  data?: Record<string, string>;
  /** DOM properties set directly (value, checked, disabled, …). */
  props?: Record<string, unknown>;
  [attr: string]: string | number | boolean | undefined | null | Handlers | Record<string, unknown>;
}

/** Appends children: strings and numbers as text nodes, arrays flattened, empty values skipped. */
export function append(parent: Node, ...children: Child[]): void {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(parent, ...(c as Child[]));
    else if (c instanceof Node) parent.appendChild(c);
    else parent.appendChild(document.createTextNode(String(c)));
  }
}

export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs?: Attrs | null,
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs ?? {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'on') {
      for (const [ev, fn] of Object.entries(v as Handlers)) el.addEventListener(ev, fn as EventListener);
    } else if (k === 'data') {
      for (const [dk, dv] of Object.entries(v as Record<string, string>)) el.dataset[dk] = dv;
    } else if (k === 'props') {
      Object.assign(el, v);
    } else if (k === 'class') {
      el.className = String(v);
    } else if (k === 'style' || k.startsWith('on')) {
      throw new Error(`h(): '${k}' is not allowed (CSP: no inline styles or handlers)`);
    } else {
      el.setAttribute(k, v === true ? '' : String(v));
    }
  }
  append(el, ...children);
  return el;
}

/** Replaces an element's content. */
export function put(el: Element, ...children: Child[]): void {
  el.replaceChildren();
  append(el, ...children);
}

// ------------------------------------------------------------------------------- formatting

export function fmtTime(iso: string | null | undefined): string {
  if (!iso) return '—';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleString();
}

export function fmtAgo(iso: string | null | undefined): string {
  if (!iso) return '—';
  const t = new Date(iso).getTime();
  if (Number.isNaN(t) || t <= 0) return '—';
  const s = Math.round((Date.now() - t) / 1000);
  if (s < 2) return 'just now';
  if (s < 90) return `${s} s ago`;
  if (s < 90 * 60) return `${Math.round(s / 60)} min ago`;
  if (s < 36 * 3600) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} d ago`;
}

/** A <time> showing "12 s ago" with the absolute time as its tooltip. */
export function ago(iso: string | null | undefined): HTMLElement {
  return h('time', { datetime: iso ?? undefined, title: fmtTime(iso) }, fmtAgo(iso));
}

export function fmtDuration(seconds: number | undefined): string {
  if (seconds === undefined || !Number.isFinite(seconds)) return '—';
  const s = Math.floor(seconds);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  return `${Math.floor(s / 86400)} d ${Math.floor((s % 86400) / 3600)} h`;
}

export function fmtBytes(n: number | undefined): string {
  if (n === undefined || !Number.isFinite(n)) return '—';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v < 10 && i > 0 ? v.toFixed(1) : Math.round(v)} ${units[i]}`;
}

// ------------------------------------------------------------------------------- status badges

export type Tone = 'ok' | 'warn' | 'bad' | 'info' | 'muted';

const TONES: Record<string, Tone> = {
  online: 'ok',
  healthy: 'ok',
  running: 'ok',
  succeeded: 'ok',
  done: 'ok',
  resolved: 'ok',
  degraded: 'warn',
  warning: 'warn',
  starting: 'warn',
  stopping: 'warn',
  deploying: 'info',
  queued: 'info',
  new: 'info',
  offline: 'bad',
  unhealthy: 'bad',
  firing: 'bad',
  critical: 'bad',
  failed: 'bad',
  stopped: 'muted',
  cancelled: 'muted',
  skipped: 'muted',
  uninstalled: 'muted',
  pending: 'muted',
  unknown: 'muted',
};

/** A coloured status label; `tone` overrides the usual colour of the word. */
export function badge(status: string, tone?: Tone): HTMLElement {
  return h('span', { class: `badge tone-${tone ?? TONES[status] ?? 'muted'}` }, status || 'unknown');
}

/** Shows an error from the API (its message) in an alert box. */
export function errorBox(message: string): HTMLElement {
  return h('div', { class: 'alert alert-error', role: 'alert' }, message);
}

export function notice(message: string, tone: Tone = 'info'): HTMLElement {
  return h('div', { class: `alert alert-${tone}`, role: 'status' }, message);
}

/** <dl> of label → value pairs (values are text or nodes). */
export function defList(pairs: readonly [string, Child][]): HTMLDListElement {
  return h(
    'dl',
    { class: 'deflist' },
    pairs.map(([k, v]) => [
      h('dt', null, k),
      h('dd', null, v === '' || v === null || v === undefined ? '—' : v),
    ]),
  );
}

export function option(value: string, label: string, selected: boolean): HTMLOptionElement {
  return h('option', { value, props: { selected } }, label);
}

/** A labelled form control. */
export function field(label: string, control: HTMLElement): HTMLLabelElement {
  return h('label', { class: 'field' }, h('span', { class: 'field-label' }, label), control);
}
