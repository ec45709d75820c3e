/**
 * `opsplane tokens list|create|revoke` — API tokens for automation: create one with an expiry
 * (`--expires 720h`), a role (at most yours) and a scope (`--areas area-1,area-2`: it may change
 * things there only); the secret is printed once. `list --all` (admins) shows everyone's, with
 * when each was last used.
 */
import { ROLES, type Role, type Token } from '@opsplane/api';
import { EXIT, UsageError, defineCommand } from '../command.js';
import { connect, listFlag } from '../client/api.js';
import { ago, json, table } from '../client/format.js';
import { outputOption, serverOption, wantsJson } from '../client/common-options.js';

const state = (t: Token, now = Date.now()) =>
  t.revoked_at ? 'revoked' : t.expires_at && Date.parse(t.expires_at) <= now ? 'expired' : 'active';

export default defineCommand({
  name: 'tokens',
  summary: 'List, create (with expiry, role and area scope) or revoke API tokens.',
  positionals: '<list|create|revoke> [name|id]',
  options: {
    server: serverOption,
    role: {
      type: 'string',
      value: '<viewer|operator|admin>',
      description: 'create: at most your role (default yours)',
    },
    expires: {
      type: 'string',
      value: '<duration>',
      description: "create: lifetime, e.g. '720h' (default: never)",
    },
    areas: {
      type: 'string',
      multiple: true,
      value: '<a,b,…>',
      description: 'create: scope — the areas it may change things in (viewer elsewhere)',
    },
    all: { type: 'boolean', description: "list: everyone's tokens (admins)" },
    output: outputOption,
    json: { type: 'boolean', description: 'same as --output json' },
  },
  details: [
    'Examples:',
    '  opsplane tokens create ci-deploy --role operator --expires 720h --areas area-1',
    '  opsplane tokens list --all',
    '  opsplane tokens revoke 3f2a…',
  ].join('\n'),
  async run(v, io) {
    const [action, arg, ...extra] = v._;
    const asJson = wantsJson(v, 'tokens');
    if (extra.length) throw new UsageError(`unexpected argument '${extra[0]}'`, 'tokens');
    if (action === 'list') {
      if (arg) throw new UsageError(`unexpected argument '${arg}'`, 'tokens');
      const api = await connect(v.server);
      const r = await api.call('GET /tokens', { query: { all: v.all ? 'true' : undefined } });
      if (asJson) io.out(json(r));
      else {
        for (const l of table(
          ['NAME', 'OWNER', 'ROLE', 'SCOPE', 'STATE', 'EXPIRES', 'LAST USED', 'PREFIX', 'ID'],
          r.tokens.map((t) => [
            t.name,
            t.username,
            t.role,
            t.areas ? t.areas.join(',') : 'all areas',
            state(t),
            t.expires_at ?? 'never',
            ago(t.last_used_at),
            `opsp_${t.prefix}…`,
            t.id,
          ]),
        ))
          io.out(l);
        io.out(`${r.tokens.length} token(s)`);
      }
      return EXIT.ok;
    }
    if (action === 'create') {
      if (!arg) throw new UsageError('create needs a name: opsplane tokens create <name>', 'tokens');
      if (v.role !== undefined && !(ROLES as readonly string[]).includes(v.role))
        throw new UsageError(`--role must be one of ${ROLES.join(', ')}`, 'tokens');
      const areas = listFlag(v.areas);
      const api = await connect(v.server);
      const t = await api.call('POST /tokens', {
        body: {
          name: arg,
          ...(v.role ? { role: v.role as Role } : {}),
          ...(v.expires ? { expires_in: v.expires } : {}),
          ...(areas.length ? { areas } : {}),
        },
      });
      if (asJson) io.out(json(t));
      else {
        io.out(t.token);
        io.err(
          `token ${t.name} (${t.role}, ${t.areas ? `areas ${t.areas.join(',')}` : 'all areas'}, ` +
            `expires ${t.expires_at ?? 'never'}): the secret above is shown only now`,
        );
      }
      return EXIT.ok;
    }
    if (action === 'revoke') {
      if (!arg) throw new UsageError('revoke needs a token id: opsplane tokens revoke <id>', 'tokens');
      const api = await connect(v.server);
      await api.call('DELETE /tokens/:id', { params: { id: arg } });
      if (!asJson) io.out(`revoked token ${arg}`);
      return EXIT.ok;
    }
    throw new UsageError(
      action ? `unknown action '${action}' (list, create, revoke)` : 'say list, create or revoke',
      'tokens',
    );
  },
});
