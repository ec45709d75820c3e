/**
 * #/artifacts — the signed packages and agent bundles the server distributes: the list (kind and
 * name filters, paging), an upload form (a .tar.gz from a file input, sent as the request body;
 * the server signs it), delete (operators; refused while a policy names it), and the public
 * key(s) agents and controllers pin in `artifact_keys`.
 */
import type { Artifact } from '@opsplane/api';
import { api, errorMessage } from '../api.js';
import { ago, badge, errorBox, field, fmtBytes, h, notice, put } from '../dom.js';
import { filterSelect, searchBox } from '../filters.js';
import { busy, confirmButton, labelled, selectOf } from '../form.js';
import { pageHeader } from '../layout.js';
import type { PageContext } from '../router.js';
import { canOperate } from '../session.js';
import { messageRow, renderHead, renderPager, syncRows, type Column } from '../table.js';

const KINDS = ['package', 'agent'] as const;

/** The upload form: a file, its kind, and what the server said. */
function uploadPanel(done: (a: Artifact) => void): HTMLElement {
  const file = h('input', {
    type: 'file',
    id: 'artifact-file',
    accept: '.tar.gz,.tgz,application/gzip',
    required: true,
  });
  const kind = selectOf(
    'artifact-kind',
    [
      ['package', 'package (package.yaml at its top)'],
      ['agent', 'agent bundle'],
    ],
    'package',
  );
  const go = h('button', { type: 'submit', class: 'btn btn-primary', id: 'artifact-upload' }, 'Upload');
  const msg = h('div', { id: 'artifact-upload-message', 'aria-live': 'polite' });
  const submit = (ev: SubmitEvent) => {
    ev.preventDefault();
    const f = file.files?.[0];
    if (!f) {
      put(msg, errorBox('Choose a .tar.gz file.'));
      return;
    }
    void busy(go, async () => {
      try {
        const a = await api.upload('POST /artifacts', f, 'application/gzip', {
          query: { kind: kind.value as Artifact['kind'] },
        });
        put(
          msg,
          notice(
            `Stored ${a.kind} ${a.name} ${a.version} (${a.os}/${a.arch}, ${fmtBytes(a.size)}), sha256 ${a.sha256.slice(0, 12)}…, signed by ${a.signed_by}.`,
            'ok',
          ),
        );
        file.value = '';
        done(a);
      } catch (e) {
        put(msg, errorBox(errorMessage(e)));
      }
    });
  };
  return h(
    'section',
    { class: 'panel panel-form', id: 'artifact-upload-panel', 'aria-labelledby': 'artifact-upload-title' },
    h('h2', { id: 'artifact-upload-title' }, 'Upload an artifact'),
    h(
      'form',
      { class: 'form-grid', 'aria-labelledby': 'artifact-upload-title', on: { submit } },
      labelled('Archive (.tar.gz)', file, 'stored by its sha256 and signed with the server’s key'),
      labelled('Kind', kind),
      h('div', { class: 'form-actions' }, go),
      msg,
    ),
  );
}

/** The keys to pin, each in a read-only box that selects itself on focus. */
function keysPanel(): HTMLElement {
  const body = h('div', { id: 'artifact-keys' }, h('p', { class: 'muted' }, 'Loading…'));
  api
    .call('GET /artifacts/keys')
    .then((r) =>
      put(
        body,
        r.keys.length === 0
          ? h('p', { class: 'muted' }, 'The server has no signing key yet.')
          : r.keys.map((k) => {
              const box = h('input', {
                type: 'text',
                readonly: true,
                class: 'key-input',
                id: `artifact-key-${k.key_id}`,
                'aria-label': `Public key ${k.key_id}`,
                props: { value: k.key },
                on: { focus: (ev) => (ev.currentTarget as HTMLInputElement).select() },
              });
              return h(
                'div',
                { class: 'key-row', data: { keyId: k.key_id } },
                box,
                h(
                  'span',
                  { class: 'muted' },
                  ` ${k.key_id} · ${k.source === 'server' ? 'the server’s key' : 'trusted uploader'}`,
                ),
              );
            }),
      ),
    )
    .catch((e: unknown) => put(body, errorBox(errorMessage(e))));
  return h(
    'section',
    { class: 'panel', 'aria-labelledby': 'artifact-keys-title' },
    h('h2', { id: 'artifact-keys-title' }, 'Signing keys to pin'),
    h(
      'p',
      { class: 'muted' },
      'Agents and controllers refuse any artifact not signed by a key in their artifact_keys. Put these there.',
    ),
    body,
  );
}

export function artifactsPage(ctx: PageContext): void {
  const s = {
    kind: ctx.query.get('kind') ?? '',
    name: ctx.query.get('name') ?? '',
    page: Math.max(1, Number(ctx.query.get('page')) || 1),
    pageSize: 50,
  };
  const operator = canOperate();
  const thead = h('thead');
  const tbody = h('tbody');
  const pager = h('div', { class: 'pager' });
  const status = h('div', { class: 'list-status', 'aria-live': 'polite' });
  const remove = async (a: Artifact) => {
    try {
      await api.call('DELETE /artifacts/:sha256', { params: { sha256: a.sha256 } });
      put(status, notice(`Deleted ${a.kind} ${a.name} ${a.version}.`, 'ok'));
      void poller.refresh();
    } catch (e) {
      put(status, errorBox(errorMessage(e)));
    }
  };
  const columns: Column<Artifact>[] = [
    { label: 'Name', cell: (a) => h('strong', null, a.name) },
    { label: 'Version', cell: (a) => a.version },
    { label: 'Kind', cell: (a) => badge(a.kind, a.kind === 'agent' ? 'info' : 'muted') },
    { label: 'Platform', cell: (a) => `${a.os}/${a.arch}` },
    { label: 'Size', cell: (a) => fmtBytes(a.size) },
    { label: 'SHA-256', cell: (a) => h('code', { title: a.sha256 }, `${a.sha256.slice(0, 12)}…`) },
    { label: 'Signed by', cell: (a) => h('span', { title: `key ${a.key_id}` }, a.signed_by) },
    { label: 'Uploaded', cell: (a) => [`${a.uploaded_by} `, ago(a.created_at)] },
    ...(operator
      ? [
          {
            label: 'Actions',
            className: 'actions',
            cell: (a: Artifact) =>
              confirmButton('Delete', 'Confirm delete', () => void remove(a), {
                'aria-label': `Delete ${a.name} ${a.version} (${a.os}/${a.arch})`,
              }),
          },
        ]
      : []),
  ];
  renderHead(thead, columns);
  messageRow(tbody, columns.length, 'Loading…');
  const changed = () => {
    const q = new URLSearchParams();
    if (s.kind) q.set('kind', s.kind);
    if (s.name) q.set('name', s.name);
    if (s.page > 1) q.set('page', String(s.page));
    ctx.setQuery(q);
    void poller.refresh();
  };
  ctx.root.append(
    pageHeader('Artifacts'),
    ...(operator ? [uploadPanel(() => void poller.refresh())] : []),
    h(
      'section',
      { class: 'panel', 'aria-labelledby': 'artifacts-title' },
      h('h2', { id: 'artifacts-title' }, 'Stored artifacts'),
      h(
        'div',
        { class: 'toolbar' },
        field(
          'Kind',
          filterSelect(
            'artifact-filter-kind',
            'Any kind',
            KINDS,
            s.kind,
            (v) => ((s.kind = v), (s.page = 1), changed()),
          ),
        ),
        field(
          'Name',
          searchBox(
            ctx,
            'artifact-filter-name',
            'package name',
            s.name,
            (v) => ((s.name = v), (s.page = 1), changed()),
          ),
        ),
      ),
      status,
      h('div', { class: 'table-wrap' }, h('table', { class: 'data', id: 'artifacts-table' }, thead, tbody)),
      h('div', { class: 'table-foot' }, pager),
    ),
    keysPanel(),
  );
  const poller = ctx.poll(async () => {
    try {
      const r = await api.call('GET /artifacts', {
        query: {
          kind: (KINDS as readonly string[]).includes(s.kind) ? (s.kind as Artifact['kind']) : undefined,
          name: s.name || undefined,
          page: s.page,
          pageSize: s.pageSize,
        },
      });
      syncRows(tbody, r.items, (a) => a.sha256, columns, {
        empty:
          s.kind || s.name ? 'No artifact matches.' : 'No artifacts yet. Upload a package archive above.',
        init: (tr, a) => {
          tr.dataset.name = a.name;
          tr.dataset.version = a.version;
        },
      });
      renderPager(pager, { page: s.page, pageSize: s.pageSize, total: r.total }, (page) => {
        s.page = page;
        changed();
      });
    } catch (e) {
      put(status, errorBox(errorMessage(e)));
    }
  }, 10_000);
}
