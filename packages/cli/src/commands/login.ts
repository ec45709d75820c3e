/**
 * `opsplane login` — logs in to a platform server and stores a credential for the other
 * commands: an API token created for this CLI (operators and admins), or the session (viewers,
 * who may not create tokens). Stored in ~/.config/opsplane/credentials.json (0600).
 */
import { hostname } from 'node:os';
import { useCaFile } from '../client/tls.js';
import { CliError, EXIT, UsageError, defineCommand } from '../command.js';
import { ApiClient, ApiError, DEFAULT_SERVER, normalizeServer } from '../client/api.js';
import { readCredentials, writeCredentials } from '../client/credentials.js';
import { prompt } from '../client/prompt.js';

export default defineCommand({
  name: 'login',
  summary: 'Log in to a platform server and store a credential for the other commands.',
  options: {
    server: {
      type: 'string',
      short: 's',
      value: '<url>',
      description: `server URL (default $OPSPLANE_SERVER, the last one, or ${DEFAULT_SERVER})`,
    },
    username: {
      type: 'string',
      short: 'u',
      value: '<name>',
      description: 'user name (default $OPSPLANE_USERNAME, or asked)',
    },
    user: { type: 'string', value: '<name>', description: 'same as --username' },
    password: {
      type: 'string',
      short: 'p',
      value: '<password>',
      description: 'password (better: $OPSPLANE_PASSWORD, or asked without echo, or one line on stdin)',
    },
    ca: {
      type: 'string',
      value: '<file>',
      description:
        "CA bundle to verify the server's certificate with (the built-in CA's ca.crt; default $OPSPLANE_CA_FILE), stored for later commands",
    },
    'token-ttl': {
      type: 'string',
      value: '<duration>',
      description: "lifetime of the CLI's API token (default 720h)",
    },
  },
  details: [
    'Operators and admins get an API token named opsplane-cli@<host>; viewers (who may not create',
    'tokens) keep the session, which expires with server.session_ttl.',
    '',
    'Environment:',
    '  OPSPLANE_SERVER       server URL for every command',
    '  OPSPLANE_USERNAME     user name',
    '  OPSPLANE_PASSWORD     password (not asked then)',
    '  OPSPLANE_TOKEN        an API token every command uses instead of the stored credential',
    '  OPSPLANE_CONFIG_DIR   where credentials.json lives (default ~/.config/opsplane)',
    '  OPSPLANE_CA_FILE      CA bundle to verify the server with (instead of the system CAs)',
  ].join('\n'),
  async run(v, io) {
    if (v._.length > 0) throw new UsageError(`unexpected argument '${v._[0]}'`, 'login');
    const stored = await readCredentials();
    const server = normalizeServer(
      v.server ?? process.env.OPSPLANE_SERVER ?? stored?.server ?? DEFAULT_SERVER,
    );
    const caFile = useCaFile(
      v.ca ??
        process.env.OPSPLANE_CA_FILE ??
        (stored && normalizeServer(stored.server) === server ? stored.ca_file : undefined),
    );
    const tty = process.stdin.isTTY === true;
    let username = v.username ?? v.user ?? process.env.OPSPLANE_USERNAME;
    if (!username) {
      if (!tty) throw new UsageError('--username is required (or OPSPLANE_USERNAME)', 'login');
      username = (await prompt(`Username for ${server}: `, false)).trim();
    }
    let password = v.password ?? process.env.OPSPLANE_PASSWORD;
    if (password === undefined) password = await prompt(`Password for ${username}: `, true);
    if (!username || !password) throw new UsageError('username and password must not be empty', 'login');

    const anon = new ApiClient(server, {});
    let cookie: string;
    let role: string;
    try {
      const r = await anon.send('POST /auth/login', { body: { username, password } });
      const set = r.headers.getSetCookie().find((c) => c.startsWith('opsplane_session='));
      if (!set) throw new CliError('the server answered the login without a session cookie');
      cookie = set.split(';')[0] as string;
      role = r.body.role;
    } catch (e) {
      if (e instanceof ApiError && e.status === 401)
        throw new CliError(`login to ${server} failed: invalid username or password`);
      throw e;
    }

    const session = new ApiClient(server, { cookie });
    const base = {
      server,
      username,
      role,
      created_at: new Date().toISOString(),
      ...(caFile ? { ca_file: caFile } : {}),
    };
    let path: string;
    let what: string;
    try {
      const t = await session.call('POST /tokens', {
        body: { name: `opsplane-cli@${hostname()}`, expires_in: v['token-ttl'] ?? '720h' },
      });
      path = await writeCredentials({
        ...base,
        token: t.token,
        token_id: t.id,
        expires_at: t.expires_at,
      });
      what = `API token${t.expires_at ? ` (valid until ${t.expires_at})` : ''}`;
      // The token is what we keep; the session is not needed any more.
      await session.call('POST /auth/logout').catch(() => undefined);
    } catch (e) {
      if (!(e instanceof ApiError) || e.status !== 403) throw e;
      const me = await session.call('GET /auth/me');
      path = await writeCredentials({
        ...base,
        session: cookie.slice('opsplane_session='.length),
        expires_at: me.session_expires_at ?? null,
      });
      what = `session${me.session_expires_at ? ` (valid until ${me.session_expires_at})` : ''}`;
    }
    io.out(`Logged in to ${server} as ${username} (${role}); ${what} stored in ${path}`);
    return EXIT.ok;
  },
});
