/**
 * List filter controls shared by the list pages: a debounced search box, a select of fixed
 * values, and an area select whose choices come from GET /areas.
 */
import { api, errorMessage } from './api.js';
import { h, option } from './dom.js';
import type { PageContext } from './router.js';

/** A search input that calls `onChange` 250 ms after the user stops typing. */
export function searchBox(
  ctx: PageContext,
  id: string,
  placeholder: string,
  value: string,
  onChange: (q: string) => void,
): HTMLInputElement {
  const input = h('input', { type: 'search', id, placeholder, props: { value } });
  let timer: ReturnType<typeof setTimeout> | undefined;
  input.addEventListener('input', () => {
    clearTimeout(timer);
    timer = setTimeout(() => onChange(input.value.trim()), 250);
  });
  // Enter searches now; inside a form it must not submit the form.
  input.addEventListener('keydown', (ev) => {
    if (ev.key !== 'Enter') return;
    ev.preventDefault();
    clearTimeout(timer);
    onChange(input.value.trim());
  });
  ctx.onCleanup(() => clearTimeout(timer));
  return input;
}

/** A select with an "any" entry ('') and the given values. */
export function filterSelect(
  id: string,
  any: string,
  values: readonly string[],
  current: string,
  onChange: (v: string) => void,
): HTMLSelectElement {
  return h(
    'select',
    { id, on: { change: (ev) => onChange((ev.target as HTMLSelectElement).value) } },
    option('', any, current === ''),
    values.map((v) => option(v, v, v === current)),
  );
}

/** A filterSelect of every area the server knows (filled once GET /areas answers). */
export function areaSelect(id: string, current: string, onChange: (v: string) => void): HTMLSelectElement {
  const sel = filterSelect(id, 'All areas', current ? [current] : [], current, onChange);
  api
    .call('GET /areas')
    .then((r) => {
      const names = [...new Set([...r.areas.map((a) => a.name), ...(current ? [current] : [])])].sort();
      const now = sel.value;
      sel.replaceChildren(option('', 'All areas', now === ''), ...names.map((n) => option(n, n, n === now)));
    })
    .catch((e: unknown) => console.warn('areas:', errorMessage(e)));
  return sel;
}

/**
 * A label selector box (`env=prod,role!=db`, `tier in (web,api)`): applied 400 ms after typing
 * stops. The server checks it; a bad one shows the server's message where the list goes.
 */
export function selectorBox(
  ctx: PageContext,
  id: string,
  value: string,
  onChange: (selector: string) => void,
): HTMLInputElement {
  const input = h('input', {
    type: 'text',
    id,
    class: 'selector-input',
    placeholder: 'env=prod,role!=db',
    spellcheck: 'false',
    autocomplete: 'off',
    title: 'Label selector: key=value, key!=value, key in (a,b), key notin (a,b), key, !key — all must hold',
    props: { value },
  });
  let timer: ReturnType<typeof setTimeout> | undefined;
  input.addEventListener('input', () => {
    clearTimeout(timer);
    timer = setTimeout(() => onChange(input.value.trim()), 400);
  });
  input.addEventListener('keydown', (ev) => {
    if (ev.key !== 'Enter') return;
    ev.preventDefault(); // applies the selector; inside a form it must not submit the form
    clearTimeout(timer);
    onChange(input.value.trim());
  });
  ctx.onCleanup(() => clearTimeout(timer));
  return input;
}
