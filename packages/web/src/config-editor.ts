/**
 * The config push editor: a package and file name, the file as it is on a reference agent now
 * (GET /agents/{code}/packages/{package}/configs/{file}), the new content in an editor that
 * validates it as JSON or YAML (by the file's extension) as you type, and the diff between the
 * two — what the push will change on that agent.
 */
import { diffLines } from 'diff';
import { parseAllDocuments } from 'yaml';
import { api, errorMessage } from './api.js';
import { errorBox, h, notice, put } from './dom.js';
import { labelled, textInput } from './form.js';

export type Validity = { ok: true; kind: 'json' | 'yaml' | 'text' } | { ok: false; message: string };

/** Checks `text` as the file `name` would be read: .json as JSON, .yaml/.yml as YAML, else not at all. */
export function validateConfig(name: string, text: string): Validity {
  if (/\.json$/i.test(name)) {
    try {
      JSON.parse(text);
      return { ok: true, kind: 'json' };
    } catch (e) {
      return { ok: false, message: `Not valid JSON: ${(e as Error).message}` };
    }
  }
  if (/\.ya?ml$/i.test(name)) {
    for (const doc of parseAllDocuments(text)) {
      const err = 'errors' in doc ? doc.errors[0] : undefined;
      if (err) {
        const line = err.linePos?.[0]?.line;
        return {
          ok: false,
          message: `Not valid YAML${line ? ` (line ${line})` : ''}: ${err.message.split('\n')[0] ?? ''}`,
        };
      }
    }
    return { ok: true, kind: 'yaml' };
  }
  return { ok: true, kind: 'text' };
}

export interface DiffLine {
  kind: 'add' | 'del' | 'same' | 'skip';
  text: string;
}

/** A unified-style line diff of `before` → `after`, unchanged runs cut to `context` lines around changes. */
export function lineDiff(before: string, after: string, context = 3): DiffLine[] {
  const out: DiffLine[] = [];
  for (const part of diffLines(before, after)) {
    const lines = part.value.replace(/\n$/, '').split('\n');
    const kind = part.added ? 'add' : part.removed ? 'del' : 'same';
    for (const text of lines) out.push({ kind, text });
  }
  const keep = out.map((l) => l.kind !== 'same');
  const near = out.map((_, i) => {
    for (let d = -context; d <= context; d++) if (keep[i + d]) return true;
    return false;
  });
  const cut: DiffLine[] = [];
  for (let i = 0; i < out.length; i++) {
    if (near[i]) cut.push(out[i] as DiffLine);
    else if (cut.at(-1)?.kind !== 'skip') cut.push({ kind: 'skip', text: '…' });
  }
  return cut;
}

export interface ConfigEditor {
  readonly el: HTMLElement;
  /** The push, when the form is complete and the content valid; else why not. */
  value(): { package: string; file_name: string; content: string } | { problem: string };
  /** The agent the diff is against (the first chosen one). */
  setReference(code: string | undefined): void;
}

export function configEditor(): ConfigEditor {
  const pkg = textInput('config-package', '', { placeholder: 'web' });
  const file = textInput('config-file', '', { placeholder: 'web.yaml' });
  const ref = textInput('config-reference', '', { placeholder: 'agent code' });
  const editor = h('textarea', {
    id: 'config-content',
    class: 'code',
    rows: 14,
    spellcheck: 'false',
    'aria-describedby': 'config-validity',
  });
  const validity = h('div', { id: 'config-validity', class: 'validity', 'aria-live': 'polite' });
  const diffBox = h('pre', {
    id: 'config-diff',
    class: 'diff',
    'aria-label': 'Changes against the current file',
  });
  const status = h('div', { id: 'config-current', 'aria-live': 'polite' });
  let current: string | undefined;
  let loadedFor = '';

  const render = () => {
    const v = validateConfig(file.value, editor.value);
    put(
      validity,
      v.ok
        ? h(
            'span',
            { class: 'badge tone-ok' },
            v.kind === 'text' ? 'not checked (neither .json nor .yaml)' : `valid ${v.kind.toUpperCase()}`,
          )
        : h('span', { class: 'badge tone-bad', role: 'alert' }, v.message),
    );
    if (current === undefined) {
      diffBox.replaceChildren(document.createTextNode('Load the current file to see what changes.'));
      return;
    }
    const lines = lineDiff(current, editor.value);
    const changed = lines.some((l) => l.kind === 'add' || l.kind === 'del');
    diffBox.replaceChildren(
      ...(changed
        ? lines.map((l) =>
            h(
              'span',
              { class: `diff-line diff-${l.kind}` },
              `${l.kind === 'add' ? '+' : l.kind === 'del' ? '-' : l.kind === 'skip' ? ' ' : ' '} ${l.text}\n`,
            ),
          )
        : [document.createTextNode('No changes against the current file.')]),
    );
  };

  const load = async (fill: boolean) => {
    const code = ref.value.trim();
    if (!code || !pkg.value.trim() || !file.value.trim()) {
      put(status, errorBox('Give the package, the file name and an agent to compare with.'));
      return;
    }
    put(status, notice(`Reading ${file.value} of ${pkg.value} on ${code}…`, 'info'));
    try {
      const r = await api.call('GET /agents/:code/packages/:package/configs/:file', {
        params: { code, package: pkg.value.trim(), file: file.value.trim() },
      });
      current = r.content;
      loadedFor = `${code}/${pkg.value}/${file.value}`;
      put(
        status,
        notice(
          r.exists
            ? `Current ${r.file_name} on ${code}: ${r.bytes} bytes${r.modified_at ? `, changed ${new Date(r.modified_at).toLocaleString()}` : ''}.`
            : `${r.file_name} does not exist on ${code} yet: the push creates it.`,
          'info',
        ),
      );
      if (fill && r.exists) editor.value = r.content;
    } catch (e) {
      current = undefined;
      put(status, errorBox(errorMessage(e)));
    }
    render();
  };

  for (const el of [pkg, file]) el.addEventListener('change', () => void (ref.value && load(false)));
  pkg.addEventListener('input', () => {
    if (!file.dataset.touched) file.value = pkg.value ? `${pkg.value}.yaml` : '';
  });
  file.addEventListener('input', () => {
    file.dataset.touched = '1';
    render();
  });
  editor.addEventListener('input', render);

  const el = h(
    'fieldset',
    { class: 'config-editor', id: 'config-editor' },
    h('legend', null, 'Config file'),
    h(
      'div',
      { class: 'form-grid' },
      labelled('Package', pkg),
      labelled('File name', file, 'in the package’s config dir; .json and .yaml are validated'),
      labelled('Compare with agent', ref),
      h(
        'div',
        { class: 'form-actions' },
        h(
          'button',
          { type: 'button', class: 'btn', id: 'config-load', on: { click: () => void load(false) } },
          'Show current file',
        ),
        h(
          'button',
          { type: 'button', class: 'btn', id: 'config-edit-current', on: { click: () => void load(true) } },
          'Edit the current file',
        ),
      ),
    ),
    status,
    labelled('New content', editor),
    validity,
    h('h3', null, 'Diff against the agent’s current file'),
    diffBox,
  );
  render();
  return {
    el,
    value() {
      const p = pkg.value.trim();
      const f = file.value.trim();
      if (!p || !f) return { problem: 'Give the package and the file name.' };
      const v = validateConfig(f, editor.value);
      if (!v.ok) return { problem: v.message };
      return { package: p, file_name: f, content: editor.value };
    },
    setReference(code) {
      if (code && !ref.value) ref.value = code;
      if (code && loadedFor && !loadedFor.startsWith(`${code}/`)) current = undefined;
    },
  };
}
