/**
 * Creating and editing a device (operators of its area): name, address, area, OS, login and its
 * secrets, metadata (its labels for deployment selectors). Secrets are write-only: the form never
 * shows one — for an existing device it says which are set, an empty field keeps the stored
 * value, and a "Remove" box clears it.
 */
import type { Device, DeviceCreateInput, DeviceUpdate } from '@opsplane/api';
import { api, errorMessage } from '../api.js';
import { DEVICE_OSES } from '../choices.js';
import { errorBox, h, notice, put } from '../dom.js';
import { busy, checkbox, formatPairs, labelled, parsePairs, selectOf, textInput } from '../form.js';

export interface DeviceForm {
  readonly el: HTMLElement;
}

/** The panel with the form; `done` runs after a successful save (with the saved device). */
export function deviceForm(
  current: Device | undefined,
  done: (d: Device) => void,
  cancel: () => void,
): DeviceForm {
  const editing = current !== undefined;
  const id = (n: string) => `devform-${n}`;
  const name = textInput(id('name'), current?.name ?? '', { required: true, maxlength: 128 });
  const ip = textInput(id('ip'), current?.ip ?? '', { required: true });
  const area = textInput(id('area'), current?.function_area ?? '', { required: true, list: id('areas') });
  const areas = h('datalist', { id: id('areas') });
  const os = selectOf(id('os'), DEVICE_OSES, current?.os ?? 'linux');
  const arch = selectOf(id('arch'), ['amd64', 'arm64'], current?.arch ?? 'amd64');
  const method = selectOf(
    id('login-method'),
    [
      ['', 'default for the OS'],
      ['ssh', 'ssh'],
      ['winrm', 'winrm'],
    ],
    current?.login_method ?? '',
  );
  const port = h('input', {
    type: 'number',
    id: id('port'),
    min: 1,
    max: 65535,
    placeholder: 'default',
    props: { value: current ? String(current.login.port) : '' },
  });
  const username = textInput(id('username'), current?.login.username ?? '', { required: true });
  // Secrets are bound to where they are sent: re-pointing the device drops them (server side).
  const setHint = (has: boolean | undefined) =>
    editing
      ? has
        ? 'set — leave empty to keep it (a new address, port, user or login method drops it unless entered again)'
        : 'not set'
      : undefined;
  const password = h('input', { type: 'password', id: id('password'), autocomplete: 'new-password' });
  const clearPassword = checkbox(id('clear-password'), 'Remove the stored password');
  const key = h('textarea', {
    id: id('private-key'),
    rows: 3,
    spellcheck: 'false',
    placeholder: '-----BEGIN OPENSSH PRIVATE KEY-----',
  });
  const clearKey = checkbox(id('clear-private-key'), 'Remove the stored private key');
  const passphrase = h('input', { type: 'password', id: id('passphrase'), autocomplete: 'new-password' });
  const metadata = h('textarea', {
    id: id('metadata'),
    rows: 3,
    spellcheck: 'false',
    placeholder: 'role=web\nenv=prod',
    props: { value: current ? formatPairs(current.metadata) : '' },
  });
  const message = h('div', { class: 'form-message', 'aria-live': 'polite' });
  const save = h(
    'button',
    { type: 'submit', class: 'btn btn-primary', id: id('save') },
    editing ? 'Save' : 'Create device',
  );
  const close = h('button', { type: 'button', class: 'btn', on: { click: cancel } }, 'Cancel');

  api
    .call('GET /areas')
    .then((r) => areas.replaceChildren(...r.areas.map((a) => h('option', { value: a.name }))))
    .catch(() => undefined);

  const submit = (ev: SubmitEvent) => {
    ev.preventDefault();
    put(message);
    let meta: Record<string, string>;
    try {
      meta = parsePairs(metadata.value);
    } catch (e) {
      put(message, errorBox(`Metadata: ${errorMessage(e)}`));
      metadata.focus();
      return;
    }
    const portN = port.value ? Number(port.value) : undefined;
    void busy(save, async () => {
      try {
        let d: Device;
        if (!current) {
          const body: DeviceCreateInput = {
            name: name.value.trim(),
            ip: ip.value.trim(),
            function_area: area.value.trim(),
            os: os.value as DeviceCreateInput['os'],
            arch: arch.value as NonNullable<DeviceCreateInput['arch']>,
            ...(method.value ? { login_method: method.value as 'ssh' | 'winrm' } : {}),
            login: {
              username: username.value.trim(),
              ...(portN ? { port: portN } : {}),
              ...(password.value ? { password: password.value } : {}),
              ...(key.value.trim() ? { private_key: key.value } : {}),
              ...(passphrase.value ? { passphrase: passphrase.value } : {}),
            },
            metadata: meta,
          };
          d = await api.call('POST /devices', { body });
        } else {
          const login: NonNullable<DeviceUpdate['login']> = {};
          if (username.value.trim() !== current.login.username) login.username = username.value.trim();
          if (portN && portN !== current.login.port) login.port = portN;
          if (password.value) login.password = password.value;
          else if (clearPassword.input.checked) login.password = null;
          if (key.value.trim()) login.private_key = key.value;
          else if (clearKey.input.checked) {
            login.private_key = null;
            login.passphrase = null;
          }
          if (passphrase.value) login.passphrase = passphrase.value;
          const body: DeviceUpdate = {};
          if (name.value.trim() !== current.name) body.name = name.value.trim();
          if (ip.value.trim() !== current.ip) body.ip = ip.value.trim();
          if (area.value.trim() !== current.function_area) body.function_area = area.value.trim();
          if (os.value !== current.os) body.os = os.value as DeviceUpdate['os'];
          if (arch.value !== current.arch) body.arch = arch.value as DeviceUpdate['arch'];
          if (method.value && method.value !== current.login_method)
            body.login_method = method.value as DeviceUpdate['login_method'];
          if (Object.keys(login).length) body.login = login;
          if (formatPairs(meta) !== formatPairs(current.metadata)) body.metadata = meta;
          if (Object.keys(body).length === 0) {
            put(message, notice('Nothing changed.', 'info'));
            return;
          }
          d = await api.call('PATCH /devices/:id', { params: { id: current.id }, body });
        }
        password.value = '';
        passphrase.value = '';
        key.value = '';
        done(d);
      } catch (e) {
        put(message, errorBox(errorMessage(e)));
      }
    });
  };

  const el = h(
    'section',
    { class: 'panel panel-form', id: 'device-form', 'aria-labelledby': 'device-form-title' },
    h('h2', { id: 'device-form-title' }, editing ? `Edit ${current.name}` : 'New device'),
    h(
      'form',
      { class: 'form-grid', 'aria-labelledby': 'device-form-title', on: { submit } },
      labelled('Name', name),
      labelled('IP address', ip),
      labelled('Area', area),
      areas,
      labelled('OS', os),
      labelled('Architecture', arch),
      labelled('Login method', method),
      labelled('Port', port),
      labelled('Login user', username),
      labelled('Password', password, setHint(current?.login.has_password)),
      editing && current.login.has_password ? clearPassword.el : null,
      labelled('Private key', key, setHint(current?.login.has_private_key)),
      editing && current.login.has_private_key ? clearKey.el : null,
      labelled('Key passphrase', passphrase, setHint(current?.login.has_passphrase)),
      labelled(
        'Metadata (key=value per line)',
        metadata,
        'its labels: deployments can select devices by them',
      ),
      h('div', { class: 'form-actions' }, save, close),
      message,
    ),
  );
  return { el };
}

/** The import panel: a CSV or JSON file (or pasted text), dry run, and the per-row report. */
export function deviceImport(done: () => void): HTMLElement {
  const file = h('input', {
    type: 'file',
    id: 'import-file',
    accept: '.csv,.json,text/csv,application/json',
  });
  const text = h('textarea', {
    id: 'import-text',
    rows: 6,
    spellcheck: 'false',
    placeholder: 'name,ip,function_area,os,username,password\nweb-01,10.0.0.1,area-1,linux,deploy,…',
  });
  const format = selectOf(
    'import-format',
    [
      ['auto', 'from the file name / content'],
      ['csv', 'CSV'],
      ['json', 'JSON'],
    ],
    'auto',
  );
  const dry = checkbox('import-dry-run', 'Dry run: check every row, change nothing', false);
  const go = h('button', { type: 'submit', class: 'btn btn-primary', id: 'import-button' }, 'Import');
  const report = h('div', { id: 'import-report', 'aria-live': 'polite' });
  let fileName = '';
  file.addEventListener('change', () => {
    const f = file.files?.[0];
    if (!f) return;
    fileName = f.name;
    void f.text().then((t) => (text.value = t));
  });
  const submit = (ev: SubmitEvent) => {
    ev.preventDefault();
    const body = text.value;
    if (!body.trim()) {
      put(report, errorBox('Choose a file or paste its content.'));
      return;
    }
    const kind =
      format.value !== 'auto'
        ? format.value
        : /\.json$/i.test(fileName) || /^\s*[[{]/.test(body)
          ? 'json'
          : 'csv';
    void busy(go, async () => {
      try {
        let parsed: string | unknown[] | { devices: unknown[] } = body;
        if (kind === 'json') parsed = JSON.parse(body) as unknown[];
        const rep = await api.call('POST /devices/import', {
          body: parsed,
          query: { dry_run: dry.input.checked ? 'true' : undefined },
        });
        put(
          report,
          notice(
            `${rep.dry_run ? 'Dry run: ' : ''}${rep.total} row(s): ${rep.created} ${rep.dry_run ? 'to create' : 'created'}, ` +
              `${rep.updated} ${rep.dry_run ? 'to update' : 'updated'}, ${rep.rejected.length} rejected`,
            rep.rejected.length ? 'warn' : 'ok',
          ),
          rep.rejected.length
            ? h(
                'table',
                { class: 'data', id: 'import-rejected' },
                h(
                  'thead',
                  null,
                  h(
                    'tr',
                    null,
                    ['Row', 'Line', 'Name', 'Why'].map((c) => h('th', { scope: 'col' }, c)),
                  ),
                ),
                h(
                  'tbody',
                  null,
                  rep.rejected.map((x) =>
                    h(
                      'tr',
                      null,
                      h('td', null, x.row),
                      h('td', null, x.line ?? '—'),
                      h('td', null, x.name ?? '—'),
                      h('td', { class: 'wrap' }, x.reason),
                    ),
                  ),
                ),
              )
            : null,
        );
        if (!rep.dry_run) done();
      } catch (e) {
        put(report, errorBox(e instanceof SyntaxError ? `Not valid JSON: ${e.message}` : errorMessage(e)));
      }
    });
  };
  return h(
    'section',
    { class: 'panel panel-form', id: 'import-panel', 'aria-labelledby': 'import-title' },
    h('h2', { id: 'import-title' }, 'Import devices'),
    h(
      'form',
      { class: 'form-grid', 'aria-labelledby': 'import-title', on: { submit } },
      labelled('File (CSV or JSON)', file),
      labelled(
        '…or paste it',
        text,
        'CSV: name, ip, function_area, os, username required; rows are matched by name',
      ),
      labelled('Format', format),
      dry.el,
      h('div', { class: 'form-actions' }, go),
    ),
    report,
  );
}
