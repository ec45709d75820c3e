/**
 * Accounts: who may use the platform and how they prove it. Logins (scrypt passwords, sessions
 * whose random id the client keeps and the database keeps only hashed), API tokens checked by
 * hash, users and their roles. The last enabled admin cannot be demoted, disabled or deleted, so
 * the platform cannot lock itself out. A password change or reset, or disabling a user, ends the
 * user's sessions and revokes the user's API tokens (whoever knew the old password may have
 * made some). Also the one place user rows become the API's User.
 */
import {
  ConflictError,
  ForbiddenError,
  NotFoundError,
  UnauthorizedError,
  ValidationError,
} from '@opsplane/models';
import {
  iso,
  isoOrNull,
  type MeResponse,
  type PasswordChange,
  type Role,
  type User,
  type UserCreate,
  type UserListResponse,
  type UserUpdate,
} from '@opsplane/api';
import type { Counter } from 'prom-client';
import type { Store } from '../storage/store.js';
import type { UserRow } from '../storage/schema.js';
import type { UserPatch } from '../storage/users-repo.js';
import { dummyHash, hashPassword, needsRehash, verifyPassword } from '../security/passwords.js';
import { looksLikeApiToken, newSessionId, sha256Hex } from '../security/tokens.js';
import { changesBetween, secretChange, type Actor, type AuditTrail } from './audit-trail.js';
import { effectiveRoles, type AreaAccess } from './access.js';

export function toUser(r: UserRow, areaRoles: Record<string, string> = {}): User {
  return {
    id: r.id,
    username: r.username,
    role: r.role as Role,
    area_roles: areaRoles as Record<string, Role>,
    disabled: r.disabled,
    created_at: iso(r.createdAt),
    updated_at: iso(r.updatedAt),
    last_login_at: isoOrNull(r.lastLoginAt),
  };
}

/** An authenticated caller of the API. */
export interface Caller extends Actor, AreaAccess {
  userId: string;
  user: User;
  /**
   * Effective role where `areaRoles` names none, and for what concerns no area: the user's,
   * capped by the token's (viewer for a token scoped to areas).
   */
  role: Role;
  /** Effective roles per area (access.ts). */
  areaRoles: Record<string, Role>;
  /** The token's scope, when it has one. */
  tokenAreas: string[] | null;
  via: 'session' | 'token';
  sessionHash?: string;
  sessionExpiresAt?: Date;
  tokenId?: string;
}

export interface AccountsOptions {
  store: Store;
  audit: AuditTrail;
  sessionTtlMs: number;
  loginFailures: Counter;
}

/** Last-used timestamps are written at most once a minute per session/token. */
const TOUCH_INTERVAL_MS = 60_000;

export class Accounts {
  private readonly touched = new Map<string, number>();

  constructor(private readonly o: AccountsOptions) {}

  // ------------------------------------------------------------------------- authentication

  /** The caller behind an API token (`opsp_…`); UnauthorizedError when it is not a usable one. */
  async byToken(token: string, ip: string | null): Promise<Caller> {
    if (!looksLikeApiToken(token)) throw new UnauthorizedError('invalid API token');
    const found = await this.o.store.tokens.findActiveByHash(sha256Hex(token));
    if (!found) throw new UnauthorizedError('invalid, expired or revoked API token');
    if (found.user.disabled) throw new UnauthorizedError('account disabled');
    this.touchLater(`t:${found.token.id}`, () => this.o.store.tokens.touch(found.token.id));
    const areaRoles = (await this.o.store.users.areaRoles(found.user.id)) as Record<string, Role>;
    const areas = found.token.areas ?? null;
    return {
      ...this.callerOf(found.user, ip, areaRoles),
      ...effectiveRoles(found.user.role as Role, areaRoles, { role: found.token.role as Role, areas }),
      tokenAreas: areas,
      via: 'token',
      tokenId: found.token.id,
    };
  }

  /** The caller behind a session cookie; UnauthorizedError (`ended`: clear the cookie) otherwise. */
  async bySession(sid: string, ip: string | null): Promise<Caller> {
    const hash = sha256Hex(sid);
    const found = await this.o.store.sessions.findValid(hash);
    if (!found || found.user.disabled) {
      throw new UnauthorizedError(found ? 'account disabled' : 'session expired or invalid; log in again');
    }
    this.touchLater(`s:${hash}`, () => this.o.store.sessions.touch(hash));
    const areaRoles = (await this.o.store.users.areaRoles(found.user.id)) as Record<string, Role>;
    return {
      ...this.callerOf(found.user, ip, areaRoles),
      via: 'session',
      sessionHash: hash,
      sessionExpiresAt: found.session.expiresAt,
    };
  }

  /**
   * Checks the password (in the same time whether the user exists or not), opens a session and
   * returns its id — for the cookie only. Failures are counted and audited; UnauthorizedError.
   */
  async login(
    username: string,
    password: string,
    client: { ip: string | null; userAgent?: string | undefined },
  ): Promise<{ sid: string; me: MeResponse; expiresAt: Date }> {
    const { store, audit } = this.o;
    const user = await store.users.getByUsername(username);
    const ok = await verifyPassword(password, user?.passwordHash ?? (await dummyHash()));
    if (!user || !ok || user.disabled) {
      this.o.loginFailures.inc();
      await audit.record(
        { username: username.slice(0, 64), userId: user?.id ?? null, ip: client.ip },
        {
          action: 'auth.login',
          result: 'failure',
          details: { reason: !user ? 'unknown_user' : !ok ? 'bad_password' : 'disabled' },
        },
      );
      throw new UnauthorizedError('invalid username or password');
    }
    const sid = newSessionId();
    const expiresAt = new Date(Date.now() + this.o.sessionTtlMs);
    const actor = this.callerOf(user, client.ip);
    await audit.run(actor, { action: 'auth.login', targetType: 'user', targetId: user.id }, async (tx) => {
      await tx.sessions.create({
        idHash: sha256Hex(sid),
        userId: user.id,
        expiresAt,
        ...(client.ip ? { ip: client.ip } : {}),
        ...(client.userAgent ? { userAgent: client.userAgent } : {}),
      });
      await tx.users.recordLogin(user.id);
      if (needsRehash(user.passwordHash))
        await tx.users.update(user.id, { passwordHash: await hashPassword(password) });
    });
    void store.sessions.purgeExpired().catch(() => undefined);
    const areaRoles = await store.users.areaRoles(user.id);
    const me: MeResponse = {
      user: toUser(user, areaRoles),
      auth: 'session',
      role: user.role as Role,
      area_roles: areaRoles as Record<string, Role>,
      token_areas: null,
      session_expires_at: expiresAt.toISOString(),
    };
    return { sid, me, expiresAt };
  }

  /** Ends the caller's session (a token-authenticated caller has none to end). */
  async logout(caller: Caller): Promise<void> {
    const hash = caller.sessionHash;
    if (caller.via !== 'session' || !hash) return;
    await this.o.audit.run(
      caller,
      { action: 'auth.logout', targetType: 'user', targetId: caller.userId },
      (tx) => tx.sessions.delete(hash),
    );
  }

  me(caller: Caller): MeResponse {
    return {
      user: caller.user,
      auth: caller.via,
      role: caller.role,
      area_roles: caller.areaRoles,
      token_areas: caller.tokenAreas,
      ...(caller.sessionExpiresAt ? { session_expires_at: caller.sessionExpiresAt.toISOString() } : {}),
    };
  }

  purgeExpiredSessions(): Promise<number> {
    return this.o.store.sessions.purgeExpired();
  }

  // -------------------------------------------------------------------------------- users

  async listUsers(): Promise<UserListResponse> {
    const rows = await this.o.store.users.list();
    const roles = await this.o.store.users.areaRolesOf(rows.map((r) => r.id));
    return { users: rows.map((r) => toUser(r, roles.get(r.id))), total: rows.length };
  }

  async getUser(caller: Caller, id: string): Promise<User> {
    if (caller.role !== 'admin' && caller.userId !== id)
      throw new ForbiddenError('only admins can see other users');
    const row = await this.o.store.users.get(id);
    if (!row) throw new NotFoundError(`user ${id} not found`);
    return toUser(row, await this.o.store.users.areaRoles(id));
  }

  async createUser(caller: Caller, input: UserCreate): Promise<User> {
    const { username, password, role } = input;
    const areaRoles = input.area_roles ?? {};
    const passwordHash = await hashPassword(password);
    return this.o.audit.run(
      caller,
      { action: 'user.create', targetType: 'user', details: { username, role } },
      async (tx, spec) => {
        const u = await tx.users.create({ username, role, passwordHash });
        await tx.users.setAreaRoles(u.id, areaRoles);
        spec.targetId = u.id;
        const user = toUser(u, areaRoles);
        spec.changes = [...changesBetween(null, user), secretChange('password', false, 'set')];
        return user;
      },
    );
  }

  async updateUser(caller: Caller, id: string, body: UserUpdate): Promise<User> {
    const patch: UserPatch = {};
    if (body.role !== undefined) patch.role = body.role;
    if (body.disabled !== undefined) patch.disabled = body.disabled;
    if (body.password !== undefined) patch.passwordHash = await hashPassword(body.password);
    const spec = {
      action: 'user.update',
      targetType: 'user',
      targetId: id,
      details: { changed: Object.keys(body) },
    };
    return this.o.audit.run(caller, spec, async (tx, s) => {
      const cur = await tx.users.get(id);
      if (!cur) throw new NotFoundError(`user ${id} not found`);
      if (cur.role === 'admin' && ((body.role && body.role !== 'admin') || body.disabled === true)) {
        await ensureAnotherAdmin(tx, id, body.disabled ? 'disable' : 'demote');
      }
      const before = toUser(cur, await tx.users.areaRoles(id));
      const updated = (await tx.users.update(id, patch)) as UserRow;
      if (body.area_roles) await tx.users.setAreaRoles(id, body.area_roles);
      s.details = { username: cur.username, changed: Object.keys(body) };
      // A disabled account or a password reset ends the user's sessions and revokes its tokens.
      if (body.disabled === true || body.password !== undefined) {
        s.details = { ...s.details, ...(await signOutEverywhere(tx, id)) };
      }
      const after = toUser(updated, await tx.users.areaRoles(id));
      s.changes = [
        ...changesBetween(before, after),
        ...(body.password !== undefined ? [secretChange('password', true, 'set')] : []),
      ];
      return after;
    });
  }

  async deleteUser(caller: Caller, id: string): Promise<void> {
    await this.o.audit.run(
      caller,
      { action: 'user.delete', targetType: 'user', targetId: id },
      async (tx, spec) => {
        if (id === caller.userId) throw new ConflictError('you cannot delete yourself');
        const cur = await tx.users.get(id);
        if (!cur) throw new NotFoundError(`user ${id} not found`);
        spec.details = { username: cur.username };
        spec.changes = changesBetween(toUser(cur, await tx.users.areaRoles(id)), null);
        if (cur.role === 'admin') await ensureAnotherAdmin(tx, id, 'delete');
        await tx.users.delete(id);
      },
    );
  }

  /**
   * Changes the caller's own password, ends their other sessions (the one this request came
   * with, if any, stays) and revokes all their API tokens — the one this request came with too.
   */
  async changeOwnPassword(caller: Caller, body: PasswordChange): Promise<void> {
    const passwordHash = await hashPassword(body.new_password);
    await this.o.audit.run(
      caller,
      { action: 'user.password', targetType: 'user', targetId: caller.userId },
      async (tx, s) => {
        s.changes = [secretChange('password', true, 'set')];
        const cur = await tx.users.get(caller.userId);
        if (!cur || !(await verifyPassword(body.current_password, cur.passwordHash))) {
          throw new ValidationError('current_password: wrong password');
        }
        await tx.users.update(caller.userId, { passwordHash });
        s.details = await signOutEverywhere(tx, caller.userId, caller.sessionHash);
      },
    );
  }

  // ----------------------------------------------------------------------------- internals

  private callerOf(
    user: UserRow,
    ip: string | null,
    areaRoles: Record<string, Role> = {},
  ): Omit<Caller, 'via'> & { via: 'session' } {
    return {
      username: user.username,
      userId: user.id,
      ip,
      user: toUser(user, areaRoles),
      role: user.role as Role,
      areaRoles: { ...areaRoles },
      tokenAreas: null,
      via: 'session',
    };
  }

  private touchLater(key: string, write: () => Promise<void>): void {
    const now = Date.now();
    if ((this.touched.get(key) ?? 0) + TOUCH_INTERVAL_MS > now) return;
    if (this.touched.size > 10_000) this.touched.clear();
    this.touched.set(key, now);
    // Best effort: a missed last-used timestamp is not worth failing the request for.
    void write().catch(() => undefined);
  }
}

/**
 * Ends a user's sessions (but `keepSession`) and revokes its API tokens; the counts, for the
 * audit record (not named `…token…`: the audit log redacts the values of such keys).
 */
async function signOutEverywhere(
  tx: Store,
  userId: string,
  keepSession?: string,
): Promise<{ sessions_ended: number; api_access_revoked: number }> {
  const sessions = await tx.sessions.deleteForUser(userId, keepSession);
  const revoked = await tx.tokens.revokeForUser(userId);
  return { sessions_ended: sessions, api_access_revoked: revoked };
}

async function ensureAnotherAdmin(tx: Store, userId: string, what: string): Promise<void> {
  if ((await tx.users.countActiveAdmins(userId)) === 0) {
    throw new ConflictError(`cannot ${what} the last enabled admin`);
  }
}
