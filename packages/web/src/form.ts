/**
 * Form pieces every editing page shares: labelled controls (a <label> around the text and the
 * control, so screen readers and clicks on the label both find it), a submit button that shows
 * it is busy, a two-step confirmation for destructive buttons, and `key=value` lines.
 */
import { h, option, type Attrs } from './dom.js';

/**
 * A labelled control: a <label for> naming it (its accessible name is exactly `label`) and, when
 * given, a hint under it tied to it with aria-describedby.
 */
export function labelled(label: string, control: HTMLElement, hint?: string): HTMLElement {
  const hintId = hint && control.id ? `${control.id}-hint` : undefined;
  if (hintId) control.setAttribute('aria-describedby', hintId);
  if (!control.id) return h('label', { class: 'field' }, h('span', { class: 'field-label' }, label), control);
  return h(
    'div',
    { class: 'field' },
    h('label', { class: 'field-label', for: control.id }, label),
    control,
    hint ? h('span', { class: 'field-hint muted', id: hintId }, hint) : null,
  );
}

export function textInput(id: string, value = '', attrs: Attrs = {}): HTMLInputElement {
  return h('input', { type: 'text', id, name: id, autocomplete: 'off', ...attrs, props: { value } });
}

export function selectOf(
  id: string,
  values: readonly (string | [string, string])[],
  current: string,
): HTMLSelectElement {
  return h(
    'select',
    { id, name: id },
    values.map((v) =>
      Array.isArray(v) ? option(v[0], v[1], v[0] === current) : option(v, v, v === current),
    ),
  );
}

export function checkbox(
  id: string,
  label: string,
  checked = false,
): { el: HTMLElement; input: HTMLInputElement } {
  const input = h('input', { type: 'checkbox', id, name: id, props: { checked } });
  return { el: h('label', { class: 'check' }, input, ' ', label), input };
}

/** Disables the button while `work` runs (and says so to assistive technology). */
export async function busy<T>(button: HTMLButtonElement, work: () => Promise<T>): Promise<T> {
  button.disabled = true;
  button.setAttribute('aria-busy', 'true');
  try {
    return await work();
  } finally {
    button.disabled = false;
    button.removeAttribute('aria-busy');
  }
}

/**
 * A button that asks once more before it acts: the first click turns it into "Confirm …" for a
 * few seconds; the second runs `act`.
 */
export function confirmButton(
  label: string,
  confirmLabel: string,
  act: () => void,
  attrs: Attrs = {},
): HTMLButtonElement {
  let armed: ReturnType<typeof setTimeout> | undefined;
  const b = h('button', { type: 'button', class: 'btn btn-small btn-danger', ...attrs }, label);
  b.addEventListener('click', () => {
    if (armed === undefined) {
      b.textContent = confirmLabel;
      b.classList.add('armed');
      armed = setTimeout(() => {
        armed = undefined;
        b.textContent = label;
        b.classList.remove('armed');
      }, 5000);
      return;
    }
    clearTimeout(armed);
    armed = undefined;
    b.textContent = label;
    b.classList.remove('armed');
    act();
  });
  return b;
}

/** `key=value` lines (blank lines and # comments skipped); throws on a line without '='. */
export function parsePairs(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [i, raw] of text.split('\n').entries()) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const at = line.indexOf('=');
    if (at <= 0) throw new Error(`line ${i + 1}: expected key=value`);
    out[line.slice(0, at).trim()] = line.slice(at + 1).trim();
  }
  return out;
}

export const formatPairs = (m: Record<string, string>): string =>
  Object.entries(m)
    .map(([k, v]) => `${k}=${v}`)
    .join('\n');
