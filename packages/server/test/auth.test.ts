/**
 * Authentication and authorisation over real HTTP: the full route × caller matrix (with API
 * tokens and with session cookies), token lifecycle, cookie attributes, session end, rate-limited
 * and audited logins, and the role rules inside handlers.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { roleAtLeast, type Role } from '@opsplane/api';
import { http, sessionFor, startTestServer, tokenFor, type Auth, type TestServer } from './helpers.js';
import { ROUTES } from './routes.js';

type Caller = 'none' | Role;
const CALLERS: Caller[] = ['none', 'viewer', 'operator', 'admin'];

function expected(access: string, ok: number, caller: Caller): number {
  if (access === 'public') return ok;
  if (caller === 'none') return 401;
  const min: Role = access === 'metrics' ? 'viewer' : (access as Role);
  return roleAtLeast(caller, min) ? ok : 403;
}

describe('auth', { timeout: 90_000 }, () => {
  let t: TestServer;
  before(async () => {
    // The deployment cases' fixtures must stay queued until called: the queue only looks on a kick.
    t = await startTestServer('pglite', {
      server: { login_rate_limit: { max: 1000 }, deploy: { poll_interval: '1h' } },
    });
  });
  after(async () => t?.stop());

  for (const via of ['token', 'session'] as const) {
    it(`route × caller matrix (${via})`, async () => {
      const failures: string[] = [];
      let checked = 0;
      for (const rc of ROUTES) {
        for (const caller of CALLERS) {
          const user = caller === 'none' ? undefined : t.users[caller];
          const req = (await rc.prepare?.(t, user)) ?? {};
          // logout ends the session it is called with: give it a throwaway one.
          let auth: Auth | undefined = user?.[via];
          if (user && via === 'session' && rc.route === '/api/v1/auth/logout')
            auth = await sessionFor(t.server, user.id);
          const path = req.path ?? rc.route;
          const res = await http(t.url, rc.method, path, {
            auth,
            ...(req.body !== undefined ? { body: req.body } : {}),
            ...(req.contentType ? { contentType: req.contentType } : {}),
          });
          const want = expected(rc.access, rc.ok, caller);
          checked++;
          // A password change revokes the caller's tokens and ends its other sessions: new ones.
          if (user && res.status === 204 && rc.route === '/api/v1/users/me/password') {
            user.token = { token: (await tokenFor(t.server, user.id, user.role)).token as string };
            if (via === 'token') user.session = await sessionFor(t.server, user.id);
          }
          if (res.status !== want)
            failures.push(
              `${rc.method} ${path} as ${caller}: want ${want}, got ${res.status} ${res.text.slice(0, 200)}`,
            );
          if (res.status === 401 || res.status === 403) {
            const code = (res.json as { error?: { code?: string } }).error?.code;
            if (code !== (res.status === 401 ? 'unauthorized' : 'forbidden'))
              failures.push(`${rc.method} ${path} as ${caller}: code ${code}`);
          }
        }
      }
      assert.deepEqual(failures, []);
      assert.equal(checked, ROUTES.length * CALLERS.length);
      // A password change made with a token ends all of that user's sessions: start afresh.
      for (const role of ['viewer', 'operator', 'admin'] as const)
        t.users[role].session = await sessionFor(t.server, t.users[role].id);
    });
  }

  it('unknown routes need auth too (401), then 404 in the error format', async () => {
    assert.equal((await t.call('GET', '/api/v1/nope')).status, 401);
    const res = await t.call<{ error: { code: string } }>('GET', '/api/v1/nope', {
      auth: t.users.viewer.token,
    });
    assert.equal(res.status, 404);
    assert.equal(res.json.error.code, 'not_found');
  });

  it('API tokens: created once in clear, listed without secret, work until revoked', async () => {
    const op = t.users.operator;
    const created = await t.call<{ id: string; token: string; prefix: string; role: string }>(
      'POST',
      '/api/v1/tokens',
      {
        auth: op.session,
        body: { name: 'automation' },
      },
    );
    assert.equal(created.status, 201);
    assert.match(created.json.token, /^opsp_[A-Za-z0-9_-]{43}$/);
    assert.equal(created.json.role, 'operator');
    const auth = { token: created.json.token };
    assert.equal((await t.call('GET', '/api/v1/auth/me', { auth })).status, 200);
    const list = await t.call<{ tokens: { id: string; prefix: string }[] }>('GET', '/api/v1/tokens', {
      auth: op.session,
    });
    assert.ok(
      list.json.tokens.some(
        (x) => x.id === created.json.id && created.json.token.startsWith(`opsp_${x.prefix}`),
      ),
    );
    assert.ok(!list.text.includes(created.json.token), 'list never shows the secret');
    const stored = await t.server.store.tokens.get(created.json.id);
    assert.ok(stored && !JSON.stringify(stored).includes(created.json.token), 'stored hashed');
    assert.equal(
      (await t.call('DELETE', `/api/v1/tokens/${created.json.id}`, { auth: op.session })).status,
      204,
    );
    const after = await t.call<{ error: { code: string } }>('GET', '/api/v1/auth/me', { auth });
    assert.equal(after.status, 401);
    assert.equal(after.json.error.code, 'unauthorized');
    assert.equal(
      (await t.call('DELETE', `/api/v1/tokens/${created.json.id}`, { auth: op.session })).status,
      204,
      'idempotent',
    );
  });

  it('API tokens: expired, malformed, unknown, capped by role, owner disabled', async () => {
    const op = t.users.operator;
    const expired = await tokenFor(t.server, op.id, 'operator', new Date(Date.now() - 1000));
    assert.equal(
      (await t.call('GET', '/api/v1/auth/me', { auth: { token: expired.token as string } })).status,
      401,
    );
    assert.equal(
      (await t.call('GET', '/api/v1/auth/me', { auth: { token: 'opsp_' + 'A'.repeat(43) } })).status,
      401,
    );
    assert.equal((await t.call('GET', '/api/v1/auth/me', { auth: { token: 'garbage' } })).status, 401);
    assert.equal(
      (await t.call('GET', '/api/v1/auth/me', { headers: { authorization: 'Basic Zm9vOmJhcg==' } })).status,
      401,
    );
    // A viewer-role token of an operator can read but not write.
    const vt = await t.call<{ token: string }>('POST', '/api/v1/tokens', {
      auth: op.session,
      body: { name: 'ro', role: 'viewer' },
    });
    const me = await t.call<{ role: string }>('GET', '/api/v1/auth/me', { auth: { token: vt.json.token } });
    assert.equal(me.json.role, 'viewer');
    assert.equal(
      (await t.call('POST', '/api/v1/devices', { auth: { token: vt.json.token }, body: {} })).status,
      403,
    );
    // No escalation: an operator cannot mint an admin token.
    assert.equal(
      (await t.call('POST', '/api/v1/tokens', { auth: op.session, body: { name: 'x', role: 'admin' } }))
        .status,
      403,
    );
    // The owner's current role caps the token: demote the owner, the admin-role token acts as viewer.
    const temp = await t.server.store.users.create({
      username: 'temp-admin',
      role: 'admin',
      passwordHash: 'x',
    });
    const adminTok = await tokenFor(t.server, temp.id, 'admin');
    await t.server.store.users.update(temp.id, { role: 'viewer' });
    assert.equal(
      (
        await t.call<{ role: string }>('GET', '/api/v1/auth/me', {
          auth: { token: adminTok.token as string },
        })
      ).json.role,
      'viewer',
    );
    await t.server.store.users.update(temp.id, { disabled: true });
    assert.equal(
      (await t.call('GET', '/api/v1/auth/me', { auth: { token: adminTok.token as string } })).status,
      401,
    );
  });

  it('operators manage only their own tokens; admins see and revoke all', async () => {
    const adminTok = await tokenFor(t.server, t.users.admin.id, 'admin');
    const op = t.users.operator.session;
    assert.equal((await t.call('DELETE', `/api/v1/tokens/${adminTok.id}`, { auth: op })).status, 403);
    assert.equal((await t.call('GET', '/api/v1/tokens?all=true', { auth: op })).status, 403);
    const all = await t.call<{ tokens: { username: string }[] }>('GET', '/api/v1/tokens?all=true', {
      auth: t.users.admin.session,
    });
    assert.ok(all.json.tokens.some((x) => x.username === 'operator-user'));
    const opTok = await tokenFor(t.server, t.users.operator.id, 'operator');
    assert.equal(
      (await t.call('DELETE', `/api/v1/tokens/${opTok.id}`, { auth: t.users.admin.session })).status,
      204,
    );
    assert.equal(
      (await t.call('DELETE', `/api/v1/tokens/00000000-0000-4000-8000-000000000000`, { auth: op })).status,
      404,
    );
  });

  it('login sets an HttpOnly, SameSite=Strict session cookie; logout ends the session', async () => {
    const res = await t.call<{ user: { username: string }; auth: string }>('POST', '/api/v1/auth/login', {
      body: { username: 'viewer-user', password: t.users.viewer.password },
    });
    assert.equal(res.status, 200);
    assert.equal(res.json.user.username, 'viewer-user');
    const setCookie = res.headers.get('set-cookie') ?? '';
    assert.match(setCookie, /^opsplane_session=[A-Za-z0-9_-]{43};/);
    assert.match(setCookie, /HttpOnly/);
    assert.match(setCookie, /SameSite=Strict/);
    assert.match(setCookie, /Path=\//);
    assert.match(setCookie, /Max-Age=\d+/);
    assert.doesNotMatch(setCookie, /Secure/, 'plain http: no Secure flag');
    const cookie = setCookie.split(';')[0] as string;
    const sid = cookie.split('=')[1] as string;
    assert.ok(!(await t.server.store.sessions.findValid(sid)), 'the database holds only a hash of the id');
    assert.equal((await t.call('GET', '/api/v1/auth/me', { auth: { cookie } })).status, 200);
    const out = await t.call('POST', '/api/v1/auth/logout', { auth: { cookie } });
    assert.equal(out.status, 204);
    assert.match(out.headers.get('set-cookie') ?? '', /opsplane_session=;/);
    assert.equal((await t.call('GET', '/api/v1/auth/me', { auth: { cookie } })).status, 401);
  });

  it('expired sessions and sessions of disabled users are refused', async () => {
    const u = await t.server.store.users.create({
      username: 'short-lived',
      role: 'viewer',
      passwordHash: 'x',
    });
    const expired = await sessionFor(t.server, u.id, -1000);
    assert.equal((await t.call('GET', '/api/v1/auth/me', { auth: expired })).status, 401);
    const live = await sessionFor(t.server, u.id);
    assert.equal((await t.call('GET', '/api/v1/auth/me', { auth: live })).status, 200);
    const dis = await t.call('PATCH', `/api/v1/users/${u.id}`, {
      auth: t.users.admin.session,
      body: { disabled: true },
    });
    assert.equal(dis.status, 200);
    assert.equal((await t.call('GET', '/api/v1/auth/me', { auth: live })).status, 401);
  });

  it('failed logins are audited without the password, and answer like unknown users', async () => {
    const bad = await t.call<{ error: { code: string; message: string } }>('POST', '/api/v1/auth/login', {
      body: { username: 'viewer-user', password: 'wrong-password-123' },
    });
    const unknown = await t.call<{ error: { code: string; message: string } }>('POST', '/api/v1/auth/login', {
      body: { username: 'nobody', password: 'wrong-password-123' },
    });
    assert.equal(bad.status, 401);
    assert.deepEqual(bad.json, unknown.json);
    const audit = await t.call<{ entries: { actor: string; result: string; details: { reason: string } }[] }>(
      'GET',
      '/api/v1/audit?action=auth.login&result=failure',
      { auth: t.users.admin.session },
    );
    const reasons = audit.json.entries.map((e) => `${e.actor}:${e.details.reason}`);
    assert.ok(reasons.includes('viewer-user:bad_password'));
    assert.ok(reasons.includes('nobody:unknown_user'));
    assert.ok(!audit.text.includes('wrong-password-123'));
  });

  it('user rules: last admin, self-delete, viewers see only themselves, own password change', async () => {
    const admin = t.users.admin.session;
    const v = t.users.viewer;
    // Other admins exist? Make the test admin the last enabled one first.
    const users = await t.call<{
      users: { id: string; role: string; disabled: boolean; username: string }[];
    }>('GET', '/api/v1/users', { auth: admin });
    for (const u of users.json.users) {
      if (u.role === 'admin' && u.id !== t.users.admin.id && !u.disabled) {
        assert.equal(
          (await t.call('PATCH', `/api/v1/users/${u.id}`, { auth: admin, body: { disabled: true } })).status,
          200,
        );
      }
    }
    const demote = await t.call<{ error: { code: string } }>('PATCH', `/api/v1/users/${t.users.admin.id}`, {
      auth: admin,
      body: { role: 'viewer' },
    });
    assert.equal(demote.status, 409);
    assert.equal(demote.json.error.code, 'conflict');
    assert.equal((await t.call('DELETE', `/api/v1/users/${t.users.admin.id}`, { auth: admin })).status, 409);
    assert.equal((await t.call('GET', `/api/v1/users/${v.id}`, { auth: v.session })).status, 200);
    assert.equal((await t.call('GET', `/api/v1/users/${t.users.admin.id}`, { auth: v.session })).status, 403);
    const dup = await t.call('POST', '/api/v1/users', {
      auth: admin,
      body: { username: 'viewer-user', password: 'a-long-password' },
    });
    assert.equal(dup.status, 409);
    const weak = await t.call<{ error: { message: string } }>('POST', '/api/v1/users', {
      auth: admin,
      body: { username: 'weak', password: 'short' },
    });
    assert.equal(weak.status, 400);
    assert.match(weak.json.error.message, /body\.password/);
    const wrong = await t.call('PUT', '/api/v1/users/me/password', {
      auth: v.session,
      body: { current_password: 'nope', new_password: 'another-password' },
    });
    assert.equal(wrong.status, 400);
    const other = await sessionFor(t.server, v.id);
    const ok = await t.call('PUT', '/api/v1/users/me/password', {
      auth: v.session,
      body: { current_password: v.password, new_password: 'another-password' },
    });
    assert.equal(ok.status, 204);
    assert.equal(
      (await t.call('GET', '/api/v1/auth/me', { auth: v.session })).status,
      200,
      'current session kept',
    );
    assert.equal(
      (await t.call('GET', '/api/v1/auth/me', { auth: other })).status,
      401,
      'other sessions ended',
    );
    assert.equal(
      (await t.call('GET', '/api/v1/auth/me', { auth: v.token })).status,
      401,
      'API tokens revoked',
    );
    const login = await t.call('POST', '/api/v1/auth/login', {
      body: { username: v.username, password: 'another-password' },
    });
    assert.equal(login.status, 200);
    await t.call('PUT', '/api/v1/users/me/password', {
      auth: v.session,
      body: { current_password: 'another-password', new_password: v.password },
    });
    v.token = { token: (await tokenFor(t.server, v.id, 'viewer')).token as string };
  });

  it('a password reset or disabling a user ends its sessions and revokes its API tokens for good', async () => {
    const admin = t.users.admin.token;
    for (const change of [{ password: 'a-reset-password-1' }, { disabled: true }]) {
      const u = await t.call<{ id: string }>('POST', '/api/v1/users', {
        auth: admin,
        body: { username: `gone-${Object.keys(change)[0]}`, password: 'first-password-1', role: 'operator' },
      });
      assert.equal(u.status, 201);
      const session = await sessionFor(t.server, u.json.id);
      const token = await tokenFor(t.server, u.json.id, 'operator');
      const made = await t.call<{ token: string }>('POST', '/api/v1/tokens', {
        auth: token,
        body: { name: 'x' },
      });
      assert.equal(made.status, 201);
      for (const a of [session, token, { token: made.json.token }])
        assert.equal((await t.call('GET', '/api/v1/auth/me', { auth: a })).status, 200);
      const r = await t.call('PATCH', `/api/v1/users/${u.json.id}`, { auth: admin, body: change });
      assert.equal(r.status, 200, r.text);
      for (const a of [session, token, { token: made.json.token }])
        assert.equal(
          (await t.call('GET', '/api/v1/auth/me', { auth: a })).status,
          401,
          JSON.stringify(change),
        );
      const listed = await t.call<{ tokens: { revoked_at: string | null }[] }>(
        'GET',
        '/api/v1/tokens?all=true',
        {
          auth: admin,
        },
      );
      assert.ok(listed.json.tokens.length > 0);
      const audit = await t.call<{ entries: { details: Record<string, unknown> }[] }>(
        'GET',
        `/api/v1/audit?action=user.update&target_id=${u.json.id}`,
        { auth: admin },
      );
      assert.deepEqual(
        [audit.json.entries[0]?.details.sessions_ended, audit.json.entries[0]?.details.api_access_revoked],
        [1, 2],
      );
      if ('disabled' in change) {
        // Enabling the user again brings none of its tokens back.
        await t.call('PATCH', `/api/v1/users/${u.json.id}`, { auth: admin, body: { disabled: false } });
        assert.equal((await t.call('GET', '/api/v1/auth/me', { auth: token })).status, 401);
      }
    }
  });

  it('changing your own password with a token revokes that token too', async () => {
    const u = await t.call<{ id: string }>('POST', '/api/v1/users', {
      auth: t.users.admin.token,
      body: { username: 'self-changer', password: 'first-password-1', role: 'viewer' },
    });
    const token = await tokenFor(t.server, u.json.id, 'viewer');
    const session = await sessionFor(t.server, u.json.id);
    const r = await t.call('PUT', '/api/v1/users/me/password', {
      auth: token,
      body: { current_password: 'first-password-1', new_password: 'second-password-2' },
    });
    assert.equal(r.status, 204);
    assert.equal((await t.call('GET', '/api/v1/auth/me', { auth: token })).status, 401);
    assert.equal((await t.call('GET', '/api/v1/auth/me', { auth: session })).status, 401);
  });

  it('denied changes are audited', async () => {
    await t.call('POST', '/api/v1/devices', { auth: t.users.viewer.token, body: {} });
    const audit = await t.call<{ entries: { actor: string; action: string; details: { error: string } }[] }>(
      'GET',
      '/api/v1/audit?actor=viewer-user&result=failure&action=device.create',
      { auth: t.users.admin.token },
    );
    assert.ok(audit.json.entries.some((e) => e.details.error === 'forbidden'));
  });
});

describe('login rate limit and https cookies', { timeout: 60_000 }, () => {
  let t: TestServer;
  before(async () => {
    t = await startTestServer('pglite', {
      server: { login_rate_limit: { max: 3, window: '1m' }, trust_proxy: true },
    });
  });
  after(async () => t?.stop());

  it('Secure cookie when the request came over https (trusted proxy)', async () => {
    const res = await t.call('POST', '/api/v1/auth/login', {
      body: { username: 'admin-user', password: t.users.admin.password },
      headers: { 'x-forwarded-proto': 'https' },
    });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('set-cookie') ?? '', /; Secure/);
  });

  it('too many login attempts from one address → 429 rate_limited, audited', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) {
      const r = await t.call<{ error: { code: string } }>('POST', '/api/v1/auth/login', {
        body: { username: 'admin-user', password: `guess-${i}-xxxxxx` },
      });
      statuses.push(r.status);
      if (r.status === 429) assert.equal(r.json.error.code, 'rate_limited');
    }
    // One attempt was spent by the previous test.
    assert.deepEqual(statuses, [401, 401, 429, 429]);
    const audit = await t.call<{ entries: { details: { reason: string } }[] }>(
      'GET',
      '/api/v1/audit?action=auth.login&result=failure',
      {
        auth: t.users.admin.token,
      },
    );
    assert.ok(audit.json.entries.some((e) => e.details.reason === 'rate_limited'));
  });
});
