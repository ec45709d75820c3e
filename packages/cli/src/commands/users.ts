/**
 * `opsplane users list|get|create|update|disable|enable|reset-password|delete` — user
 * administration (admins): roles, roles per area (`--area-role area-1=operator`, `=none` removes
 * one), disabling and password resets. Passwords come from --password, $OPSPLANE_NEW_PASSWORD, or
 * are asked without echo (one line of stdin when it is not a terminal); they are never printed.
 */
import { ROLES, type Role, type User } from '@opsplane/api';
import { EXIT, UsageError, defineCommand, type CliIO } from '../command.js';
import { connect, listFlag, type ApiClient } from '../client/api.js';
import { ago, json, table } from '../client/format.js';
import { outputOption, serverOption, wantsJson } from '../client/common-options.js';
import { secretFrom } from '../client/prompt.js';

const isRole = (r: string): r is Role => (ROLES as readonly string[]).includes(r);

function role(v: string | undefined): Role | undefined {
  if (v === undefined) return undefined;
  if (!isRole(v)) throw new UsageError(`--role must be one of ${ROLES.join(', ')} (got '${v}')`, 'users');
  return v;
}

/** `--area-role area-1=operator,area-2=none` → {area-1: 'operator', area-2: null}. */
export function areaRoles(values: string[] | undefined, allowNone: boolean): Record<string, Role | null> {
  const out: Record<string, Role | null> = {};
  for (const item of listFlag(values)) {
    const m = /^([^=\s]+)=(\w+)$/.exec(item);
    if (!m) throw new UsageError(`--area-role takes area=role (got '${item}')`, 'users');
    const [, area = '', r = ''] = m;
    if (r === 'none' && allowNone) out[area] = null;
    else if (isRole(r)) out[area] = r;
    else
      throw new UsageError(
        `--area-role ${area}: role must be one of ${ROLES.join(', ')}${allowNone ? ' or none' : ''} (got '${r}')`,
        'users',
      );
  }
  return out;
}

const fmtAreaRoles = (u: User) =>
  Object.entries(u.area_roles)
    .map(([a, r]) => `${a}=${r}`)
    .join(',') || '-';

function printUser(u: User, io: CliIO): void {
  const rows: [string, string][] = [
    ['id', u.id],
    ['username', u.username],
    ['role', u.role],
    ['area roles', fmtAreaRoles(u)],
    ['disabled', u.disabled ? 'yes' : 'no'],
    ['created', u.created_at],
    ['last login', u.last_login_at ? `${u.last_login_at} (${ago(u.last_login_at)})` : '-'],
  ];
  for (const [k, val] of rows) io.out(`${k.padEnd(10)}  ${val}`);
}

/** A user by id or username. */
async function findUser(api: ApiClient, ref: string): Promise<User> {
  if (/^[0-9a-f-]{36}$/i.test(ref)) return api.call('GET /users/:id', { params: { id: ref } });
  const { users } = await api.call('GET /users');
  const u = users.find((x) => x.username === ref);
  if (!u) throw new UsageError(`no user '${ref}'`, 'users');
  return u;
}

export default defineCommand({
  name: 'users',
  summary: 'Manage users (admins): create, change roles and roles per area, disable, reset passwords.',
  positionals: '<list|get|create|update|disable|enable|reset-password|delete> [user]',
  options: {
    server: serverOption,
    role: {
      type: 'string',
      value: '<viewer|operator|admin>',
      description: 'create/update: the role in every area',
    },
    'area-role': {
      type: 'string',
      multiple: true,
      value: '<area=role,…>',
      description: 'create/update: another role in an area (update: area=none goes back to --role)',
    },
    password: {
      type: 'string',
      value: '<password>',
      description: 'create/reset-password: the password (better: $OPSPLANE_NEW_PASSWORD, or asked)',
    },
    output: outputOption,
    json: { type: 'boolean', description: 'same as --output json' },
  },
  details: [
    'A user has a role in every area, and may have another one in some areas: operator in area-1',
    'and viewer elsewhere is `--role viewer --area-role area-1=operator`. Users are named by',
    'username or id.',
    '',
    'Examples:',
    '  opsplane users create alice --role viewer --area-role area-1=operator',
    '  opsplane users update alice --area-role area-2=operator,area-1=none',
    '  opsplane users disable alice',
    '  opsplane users reset-password alice      # asks for the new password',
  ].join('\n'),
  async run(v, io) {
    const [action, ref, ...extra] = v._;
    const asJson = wantsJson(v, 'users');
    if (extra.length) throw new UsageError(`unexpected argument '${extra[0]}'`, 'users');
    const needsUser = () => {
      if (!ref) throw new UsageError(`${action} needs a user (username or id)`, 'users');
      return ref;
    };
    const api = async () => connect(v.server);
    const show = (u: User) => (asJson ? io.out(json(u)) : printUser(u, io));
    switch (action) {
      case 'list': {
        if (ref) throw new UsageError(`unexpected argument '${ref}'`, 'users');
        const r = await (await api()).call('GET /users');
        if (asJson) io.out(json(r));
        else {
          for (const l of table(
            ['USERNAME', 'ROLE', 'AREA ROLES', 'DISABLED', 'LAST LOGIN', 'ID'],
            r.users.map((u) => [
              u.username,
              u.role,
              fmtAreaRoles(u),
              u.disabled ? 'yes' : 'no',
              ago(u.last_login_at),
              u.id,
            ]),
          ))
            io.out(l);
          io.out(`${r.total} user(s)`);
        }
        return EXIT.ok;
      }
      case 'get':
        show(await findUser(await api(), needsUser()));
        return EXIT.ok;
      case 'create': {
        const username = needsUser();
        const c = await api();
        const password = await secretFrom(v.password, 'OPSPLANE_NEW_PASSWORD', `Password for ${username}: `);
        const roles = areaRoles(v['area-role'], false) as Record<string, Role>;
        const r = role(v.role);
        const u = await c.call('POST /users', {
          body: {
            username,
            password,
            ...(r ? { role: r } : {}),
            ...(Object.keys(roles).length ? { area_roles: roles } : {}),
          },
        });
        if (!asJson)
          io.out(
            `created user ${u.username} (${u.role}${Object.keys(u.area_roles).length ? `; ${fmtAreaRoles(u)}` : ''})`,
          );
        else show(u);
        return EXIT.ok;
      }
      case 'update':
      case 'disable':
      case 'enable':
      case 'reset-password': {
        const c = await api();
        const u = await findUser(c, needsUser());
        const body: {
          role?: Role;
          disabled?: boolean;
          password?: string;
          area_roles?: Record<string, Role | null>;
        } = {};
        if (action === 'update') {
          const r = role(v.role);
          if (r) body.role = r;
          const roles = areaRoles(v['area-role'], true);
          if (Object.keys(roles).length) body.area_roles = roles;
          if (Object.keys(body).length === 0)
            throw new UsageError('update needs --role and/or --area-role', 'users');
        } else if (action === 'reset-password') {
          body.password = await secretFrom(
            v.password,
            'OPSPLANE_NEW_PASSWORD',
            `New password for ${u.username}: `,
          );
        } else body.disabled = action === 'disable';
        const updated = await c.call('PATCH /users/:id', { params: { id: u.id }, body });
        if (asJson) show(updated);
        else
          io.out(
            action === 'reset-password'
              ? `password of ${updated.username} reset; their sessions were ended`
              : action === 'update'
                ? `${updated.username}: ${updated.role}; area roles ${fmtAreaRoles(updated)}`
                : `${updated.username} ${updated.disabled ? 'disabled (sessions ended)' : 'enabled'}`,
          );
        return EXIT.ok;
      }
      case 'delete': {
        const c = await api();
        const u = await findUser(c, needsUser());
        await c.call('DELETE /users/:id', { params: { id: u.id } });
        if (!asJson) io.out(`deleted user ${u.username}`);
        return EXIT.ok;
      }
      default:
        throw new UsageError(
          action
            ? `unknown action '${action}' (list, get, create, update, disable, enable, reset-password, delete)`
            : 'say list, get, create, update, disable, enable, reset-password or delete',
          'users',
        );
    }
  },
});
