/**
 * #/admin — administration: users (admins: create with a role and roles per area, change roles,
 * disable/enable, reset the password, delete), API tokens (everyone with the operator role
 * somewhere: create with an expiry, a role and an area scope — the secret is shown once —, see
 * when each was last used, revoke; admins see everyone's) and area credentials (admins of an
 * area: set or remove the agent secret and the controller token; write-only, the page only says
 * whether each is set).
 */
import type { Area, Role, Token, User } from '@opsplane/api';
import { api, errorMessage } from '../api.js';
import { ago, append, badge, errorBox, h, notice, put } from '../dom.js';
import {
  busy,
  checkbox,
  confirmButton,
  formatPairs,
  labelled,
  parsePairs,
  selectOf,
  textInput,
} from '../form.js';
import { pageHeader } from '../layout.js';
import type { PageContext } from '../router.js';
import { canOperate, isAdmin, roleIn, session } from '../session.js';
import { messageRow, renderHead, syncRows, type Column } from '../table.js';

const ROLES: Role[] = ['viewer', 'operator', 'admin'];
const isRole = (r: string): r is Role => (ROLES as string[]).includes(r);

/** `area-1=operator` lines → {area-1: 'operator'}; throws on a bad role. */
function parseAreaRoles(text: string): Record<string, Role> {
  const out: Record<string, Role> = {};
  for (const [area, role] of Object.entries(parsePairs(text))) {
    if (!isRole(role)) throw new Error(`${area}: role must be viewer, operator or admin`);
    out[area] = role;
  }
  return out;
}

function section(id: string, title: string, ...body: (Node | null)[]): HTMLElement {
  return h(
    'section',
    { class: 'panel', id, 'aria-labelledby': `${id}-title` },
    h('h2', { id: `${id}-title` }, title),
    ...body,
  );
}

// ------------------------------------------------------------------------------------ users

function usersSection(ctx: PageContext): HTMLElement {
  const flash = h('div', { class: 'results', id: 'user-results', 'aria-live': 'polite' });
  const thead = h('thead');
  const tbody = h('tbody');
  const editor = h('div', { id: 'user-editor' });
  let users: User[] = [];

  const done = (text: string) => {
    put(flash, notice(text, 'ok'));
    put(editor);
    void poller.refresh();
  };
  const fail = (e: unknown) => put(flash, errorBox(errorMessage(e)));

  const editForm = (u?: User) => {
    const username = textInput('user-name', u?.username ?? '', { required: true, disabled: u !== undefined });
    const role = selectOf('user-role', ROLES, u?.role ?? 'viewer');
    const areaRoles = h('textarea', {
      id: 'user-area-roles',
      rows: 3,
      spellcheck: 'false',
      placeholder: 'area-1=operator',
      props: { value: u ? formatPairs(u.area_roles) : '' },
    });
    const password = h('input', {
      type: 'password',
      id: 'user-password',
      autocomplete: 'new-password',
      minlength: 8,
    });
    const save = h(
      'button',
      { type: 'submit', class: 'btn btn-primary', id: 'user-save' },
      u ? 'Save' : 'Create user',
    );
    const msg = h('div', { 'aria-live': 'polite' });
    const submit = (ev: SubmitEvent) => {
      ev.preventDefault();
      let roles: Record<string, Role>;
      try {
        roles = parseAreaRoles(areaRoles.value);
      } catch (e) {
        put(msg, errorBox(`Roles per area: ${errorMessage(e)}`));
        return;
      }
      void busy(save, async () => {
        try {
          if (!u) {
            const created = await api.call('POST /users', {
              body: {
                username: username.value.trim(),
                password: password.value,
                role: role.value as Role,
                area_roles: roles,
              },
            });
            done(`Created ${created.username}.`);
          } else {
            const patch: Record<string, Role | null> = { ...roles };
            for (const a of Object.keys(u.area_roles)) if (!(a in roles)) patch[a] = null;
            const body = {
              ...(role.value !== u.role ? { role: role.value as Role } : {}),
              ...(Object.keys(patch).length ? { area_roles: patch } : {}),
              ...(password.value ? { password: password.value } : {}),
            };
            if (Object.keys(body).length === 0) return put(msg, notice('Nothing changed.', 'info'));
            const updated = await api.call('PATCH /users/:id', { params: { id: u.id }, body });
            done(
              `Saved ${updated.username}${password.value ? ' (password reset; their sessions ended)' : ''}.`,
            );
          }
        } catch (e) {
          put(msg, errorBox(errorMessage(e)));
        }
      });
    };
    put(
      editor,
      h(
        'form',
        {
          class: 'form-grid panel-form',
          'aria-label': u ? `Edit ${u.username}` : 'New user',
          on: { submit },
        },
        labelled('Username', username),
        labelled('Role (every area)', role),
        labelled(
          'Roles per area (area=role per line)',
          areaRoles,
          'e.g. area-1=operator: another role in that area',
        ),
        labelled(
          u ? 'New password (reset)' : 'Password',
          password,
          u ? 'leave empty to keep it' : 'at least 8 characters',
        ),
        h(
          'div',
          { class: 'form-actions' },
          save,
          h('button', { type: 'button', class: 'btn', on: { click: () => put(editor) } }, 'Cancel'),
        ),
        msg,
      ),
    );
    editor.querySelector<HTMLElement>('input:not([disabled]), select')?.focus();
  };

  const setDisabled = (u: User, disabled: boolean) =>
    api
      .call('PATCH /users/:id', { params: { id: u.id }, body: { disabled } })
      .then(() => done(`${u.username} ${disabled ? 'disabled' : 'enabled'}.`), fail);
  const remove = (u: User) =>
    api.call('DELETE /users/:id', { params: { id: u.id } }).then(() => done(`Deleted ${u.username}.`), fail);

  const me = session()?.user.id;
  const columns: Column<User>[] = [
    { label: 'User', cell: (u) => h('strong', null, u.username) },
    { label: 'Role', cell: (u) => h('span', { class: `role role-${u.role}` }, u.role) },
    {
      label: 'Roles per area',
      className: 'wrap',
      cell: (u) =>
        Object.keys(u.area_roles).length
          ? h(
              'ul',
              { class: 'tags' },
              Object.entries(u.area_roles).map(([a, r]) => h('li', { class: 'tag' }, `${a}: ${r}`)),
            )
          : '—',
    },
    { label: 'State', cell: (u) => (u.disabled ? badge('disabled', 'muted') : badge('enabled', 'ok')) },
    { label: 'Last login', cell: (u) => ago(u.last_login_at) },
    {
      label: 'Actions',
      className: 'actions',
      cell: (u) =>
        h(
          'div',
          { class: 'btn-row' },
          h(
            'button',
            {
              type: 'button',
              class: 'btn btn-small',
              'aria-label': `Edit ${u.username}`,
              on: { click: () => editForm(u) },
            },
            'Edit',
          ),
          u.id === me
            ? null
            : h(
                'button',
                {
                  type: 'button',
                  class: 'btn btn-small',
                  'aria-label': `${u.disabled ? 'Enable' : 'Disable'} ${u.username}`,
                  on: {
                    click: () => {
                      const cur = users.find((x) => x.id === u.id) ?? u;
                      void setDisabled(cur, !cur.disabled);
                    },
                  },
                },
                u.disabled ? 'Enable' : 'Disable',
              ),
          u.id === me
            ? null
            : confirmButton('Delete', 'Confirm delete', () => void remove(u), {
                'aria-label': `Delete ${u.username}`,
              }),
        ),
    },
  ];
  renderHead(thead, columns);
  messageRow(tbody, columns.length, 'Loading…');
  const poller = ctx.poll(async () => {
    try {
      users = (await api.call('GET /users')).users;
      syncRows(tbody, users, (u) => u.id, columns, { init: (tr, u) => (tr.dataset.user = u.username) });
    } catch (e) {
      fail(e);
    }
  }, 10_000);
  return section(
    'admin-users',
    'Users',
    h(
      'div',
      { class: 'btn-row' },
      h(
        'button',
        { type: 'button', class: 'btn btn-primary', id: 'new-user', on: { click: () => editForm() } },
        'New user',
      ),
    ),
    editor,
    flash,
    h('div', { class: 'table-wrap' }, h('table', { class: 'data', id: 'users-table' }, thead, tbody)),
  );
}

// ------------------------------------------------------------------------------------ tokens

function tokensSection(ctx: PageContext): HTMLElement {
  const flash = h('div', { class: 'results', id: 'token-results', 'aria-live': 'polite' });
  const secret = h('div', { id: 'token-secret', 'aria-live': 'polite' });
  const all = checkbox('tokens-all', "Everyone's tokens", false);
  const name = textInput('token-name', '', { required: true, maxlength: 100, placeholder: 'ci-deploy' });
  const role = selectOf('token-role', [['', 'my role'], ...ROLES.map((r): [string, string] => [r, r])], '');
  const expires = selectOf(
    'token-expires',
    [
      ['', 'never'],
      ['24h', '1 day'],
      ['168h', '7 days'],
      ['720h', '30 days'],
      ['2160h', '90 days'],
    ],
    '720h',
  );
  const areas = textInput('token-areas', '', { placeholder: 'area-1,area-2 (empty: every area)' });
  const create = h(
    'button',
    { type: 'submit', class: 'btn btn-primary', id: 'token-create' },
    'Create token',
  );
  const thead = h('thead');
  const tbody = h('tbody');
  const state = (t: Token) =>
    t.revoked_at
      ? badge('revoked', 'muted')
      : t.expires_at && Date.parse(t.expires_at) <= Date.now()
        ? badge('expired', 'muted')
        : badge('active', 'ok');
  const columns: Column<Token>[] = [
    { label: 'Name', cell: (t) => h('strong', null, t.name) },
    { label: 'Owner', cell: (t) => t.username },
    { label: 'Role', cell: (t) => t.role },
    { label: 'Scope', cell: (t) => (t.areas ? t.areas.join(', ') : 'every area') },
    { label: 'State', cell: state },
    { label: 'Expires', cell: (t) => (t.expires_at ? new Date(t.expires_at).toLocaleDateString() : 'never') },
    { label: 'Last used', cell: (t) => ago(t.last_used_at) },
    { label: 'Prefix', cell: (t) => h('code', null, `opsp_${t.prefix}…`) },
    {
      label: 'Actions',
      className: 'actions',
      cell: (t) =>
        t.revoked_at
          ? null
          : confirmButton('Revoke', 'Confirm revoke', () => void revoke(t), {
              'aria-label': `Revoke ${t.name}`,
            }),
    },
  ];
  renderHead(thead, columns);
  messageRow(tbody, columns.length, 'Loading…');
  const revoke = (t: Token) =>
    api.call('DELETE /tokens/:id', { params: { id: t.id } }).then(
      () => {
        put(flash, notice(`Revoked ${t.name}.`, 'ok'));
        void poller.refresh();
      },
      (e: unknown) => put(flash, errorBox(errorMessage(e))),
    );
  const submit = (ev: SubmitEvent) => {
    ev.preventDefault();
    const scope = areas.value
      .split(',')
      .map((a) => a.trim())
      .filter(Boolean);
    void busy(create, async () => {
      try {
        const t = await api.call('POST /tokens', {
          body: {
            name: name.value.trim(),
            ...(role.value ? { role: role.value as Role } : {}),
            ...(expires.value ? { expires_in: expires.value } : {}),
            ...(scope.length ? { areas: scope } : {}),
          },
        });
        const value = h('input', {
          type: 'text',
          id: 'token-value',
          readonly: true,
          props: { value: t.token },
          'aria-label': 'The new token',
        });
        put(
          secret,
          h(
            'div',
            { class: 'alert alert-warn', role: 'status' },
            h('p', null, `Token ${t.name} created. Copy it now: it is shown only once.`),
            value,
          ),
        );
        value.select();
        name.value = '';
        void poller.refresh();
      } catch (e) {
        put(flash, errorBox(errorMessage(e)));
      }
    });
  };
  all.input.addEventListener('change', () => void poller.refresh());
  const poller = ctx.poll(async () => {
    try {
      const r = await api.call('GET /tokens', { query: { all: all.input.checked ? 'true' : undefined } });
      syncRows(tbody, r.tokens, (t) => t.id, columns, {
        empty: 'No tokens.',
        init: (tr, t) => (tr.dataset.token = t.name),
      });
    } catch (e) {
      put(flash, errorBox(errorMessage(e)));
    }
  }, 10_000);
  return section(
    'admin-tokens',
    'API tokens',
    canOperate()
      ? h(
          'form',
          { class: 'form-grid', 'aria-label': 'New API token', on: { submit } },
          labelled('Name', name),
          labelled('Role', role, 'at most yours'),
          labelled('Expires', expires),
          labelled('Areas (scope)', areas, 'it may change things in these areas only'),
          h('div', { class: 'form-actions' }, create),
        )
      : h('p', { class: 'muted' }, 'Viewers cannot create tokens.'),
    secret,
    isAdmin() ? all.el : null,
    flash,
    h('div', { class: 'table-wrap' }, h('table', { class: 'data', id: 'tokens-table' }, thead, tbody)),
  );
}

// ------------------------------------------------------------------------------------ areas

function areasSection(ctx: PageContext): HTMLElement {
  const flash = h('div', { class: 'results', id: 'area-results', 'aria-live': 'polite' });
  const thead = h('thead');
  const tbody = h('tbody');
  const editor = h('div', { id: 'area-editor' });
  let areas: Area[] = [];
  const edit = (name: string) => {
    const a = areas.find((x) => x.name === name);
    if (!a) return;
    const secretIn = h('input', {
      type: 'password',
      id: 'area-agent-secret',
      autocomplete: 'off',
      minlength: 16,
    });
    const tokenIn = h('input', { type: 'password', id: 'area-controller-token', autocomplete: 'off' });
    const clearSecret = checkbox('area-clear-secret', 'Remove the agent secret');
    const clearToken = checkbox('area-clear-token', 'Remove the controller token');
    const save = h(
      'button',
      { type: 'submit', class: 'btn btn-primary', id: 'area-save' },
      'Save credentials',
    );
    const msg = h('div', { 'aria-live': 'polite' });
    const submit = (ev: SubmitEvent) => {
      ev.preventDefault();
      const body = {
        ...(secretIn.value
          ? { agent_secret: secretIn.value }
          : clearSecret.input.checked
            ? { agent_secret: null }
            : {}),
        ...(tokenIn.value
          ? { controller_token: tokenIn.value }
          : clearToken.input.checked
            ? { controller_token: null }
            : {}),
      };
      if (Object.keys(body).length === 0) return put(msg, notice('Nothing to change.', 'info'));
      void busy(save, async () => {
        try {
          await api.call('PUT /areas/:area/credentials', { params: { area: a.name }, body });
          put(editor);
          put(flash, notice(`Credentials of ${a.name} saved.`, 'ok'));
          void poller.refresh();
        } catch (e) {
          put(msg, errorBox(errorMessage(e)));
        }
      });
    };
    put(
      editor,
      h(
        'form',
        { class: 'form-grid panel-form', 'aria-label': `Credentials of ${a.name}`, on: { submit } },
        h('h3', null, `Credentials of ${a.name}`),
        labelled(
          'Agent secret',
          secretIn,
          a.has_agent_secret ? 'set — leave empty to keep it' : 'not set (at least 16 characters)',
        ),
        a.has_agent_secret ? clearSecret.el : null,
        labelled(
          'Controller API token',
          tokenIn,
          a.has_controller_token ? 'set — leave empty to keep it' : 'not set',
        ),
        a.has_controller_token ? clearToken.el : null,
        h(
          'div',
          { class: 'form-actions' },
          save,
          h('button', { type: 'button', class: 'btn', on: { click: () => put(editor) } }, 'Cancel'),
        ),
        msg,
      ),
    );
    secretIn.focus();
  };
  const yes = (b: boolean) => (b ? badge('set', 'ok') : badge('not set', 'muted'));
  const columns: Column<Area>[] = [
    { label: 'Area', cell: (a) => h('strong', null, a.name) },
    { label: 'Controllers', cell: (a) => `${a.controllers_online}/${a.controllers} online` },
    { label: 'Devices', cell: (a) => a.devices },
    { label: 'Agents', cell: (a) => a.agents },
    { label: 'Agent secret', cell: (a) => yes(a.has_agent_secret) },
    { label: 'Controller token', cell: (a) => yes(a.has_controller_token) },
    { label: 'Your role', cell: (a) => roleIn(a.name) },
    {
      label: 'Actions',
      className: 'actions',
      cell: (a) =>
        roleIn(a.name) === 'admin'
          ? h(
              'button',
              {
                type: 'button',
                class: 'btn btn-small',
                'aria-label': `Set the credentials of ${a.name}`,
                on: { click: () => edit(a.name) },
              },
              'Credentials…',
            )
          : null,
    },
  ];
  renderHead(thead, columns);
  messageRow(tbody, columns.length, 'Loading…');
  const poller = ctx.poll(async () => {
    try {
      const r = await api.call('GET /areas');
      areas = r.areas;
      syncRows(tbody, r.areas, (a) => a.name, columns, {
        empty: 'No areas yet.',
        init: (tr, a) => (tr.dataset.area = a.name),
      });
    } catch (e) {
      put(flash, errorBox(errorMessage(e)));
    }
  }, 10_000);
  return section(
    'admin-areas',
    'Areas and their credentials',
    editor,
    flash,
    h('div', { class: 'table-wrap' }, h('table', { class: 'data', id: 'areas-table' }, thead, tbody)),
  );
}

export function adminPage(ctx: PageContext): void {
  const me = session();
  append(
    ctx.root,
    pageHeader('Administration'),
    h(
      'p',
      { class: 'muted' },
      `You are ${me?.user.username ?? '?'}: ${me?.role ?? 'viewer'} in every area`,
      me && Object.keys(me.area_roles).length
        ? `, ${Object.entries(me.area_roles)
            .map(([a, r]) => `${r} in ${a}`)
            .join(', ')}`
        : '',
      '.',
    ),
    isAdmin() ? usersSection(ctx) : null,
    tokensSection(ctx),
    areasSection(ctx),
  );
}
