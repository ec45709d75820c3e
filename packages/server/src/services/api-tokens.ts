/**
 * API tokens for automation (`Authorization: Bearer opsp_…`). The secret exists once, in the
 * answer that creates it; the database keeps its SHA-256. Operators manage their own tokens,
 * admins anyone's. A token's role is at most its creator's (and its owner's current role still
 * caps it, see Accounts.byToken). Also the one place token rows become the API's Token.
 */
import { ForbiddenError, NotFoundError } from '@opsplane/models';
import {
  iso,
  isoOrNull,
  roleAtLeast,
  type Role,
  type Token,
  type TokenCreate,
  type TokenCreated,
  type TokenListResponse,
} from '@opsplane/api';
import type { ApiTokenRow } from '../storage/schema.js';
import type { Store } from '../storage/store.js';
import { newApiToken, sha256Hex } from '../security/tokens.js';
import type { Caller } from './accounts.js';
import { changesBetween, type AuditTrail } from './audit-trail.js';
import { areasWithout, roleIn } from './access.js';

export function toToken(r: ApiTokenRow, username: string): Token {
  return {
    id: r.id,
    name: r.name,
    role: r.role as Role,
    prefix: r.prefix,
    areas: r.areas ?? null,
    user_id: r.userId,
    username,
    created_at: iso(r.createdAt),
    expires_at: isoOrNull(r.expiresAt),
    last_used_at: isoOrNull(r.lastUsedAt),
    revoked_at: isoOrNull(r.revokedAt),
  };
}

export class ApiTokens {
  constructor(
    private readonly store: Store,
    private readonly audit: AuditTrail,
  ) {}

  async list(caller: Caller, all: boolean): Promise<TokenListResponse> {
    if (all && caller.role !== 'admin') throw new ForbiddenError("only admins can list other users' tokens");
    const rows = await this.store.tokens.list(all ? undefined : caller.userId);
    return { tokens: rows.map((r) => toToken(r.token, r.username)) };
  }

  async create(caller: Caller, body: TokenCreate): Promise<TokenCreated> {
    const areas = body.areas ? [...new Set(body.areas)].sort() : null;
    // Scoped to areas: at most the caller's role in each of them; else at most the caller's role.
    const best = areas
      ? areas.map((a) => roleIn(caller, a)).reduce((x, y) => (roleAtLeast(x, y) ? y : x))
      : caller.role;
    const role = body.role ?? best;
    if (areas) {
      const short = areasWithout(caller, areas, role);
      if (short.length > 0)
        throw new ForbiddenError(
          `you cannot create a token with the ${role} role in ${short.join(', ')}: you do not have it there`,
        );
    } else if (!roleAtLeast(caller.role, role))
      throw new ForbiddenError(`you cannot create a token with more than your role (${caller.role})`);
    const { token, prefix } = newApiToken();
    const expiresAt = body.expires_in !== undefined ? new Date(Date.now() + body.expires_in) : null;
    const spec = {
      action: 'token.create',
      targetType: 'api_token',
      details: { name: body.name, role, prefix, areas },
    };
    const row = await this.audit.run(caller, spec, async (tx, s) => {
      const t = await tx.tokens.create({
        userId: caller.userId,
        name: body.name,
        role,
        tokenHash: sha256Hex(token),
        prefix,
        expiresAt,
        areas,
      });
      s.targetId = t.id;
      s.changes = changesBetween(null, toToken(t, caller.username), ['id', 'created_at', 'last_used_at']);
      return t;
    });
    return { ...toToken(row, caller.username), token };
  }

  async revoke(caller: Caller, id: string): Promise<void> {
    await this.audit.run(
      caller,
      { action: 'token.revoke', targetType: 'api_token', targetId: id },
      async (tx, spec) => {
        const found = await tx.tokens.get(id);
        if (!found) throw new NotFoundError(`token ${id} not found`);
        if (found.token.userId !== caller.userId && caller.role !== 'admin') {
          throw new ForbiddenError("only admins can revoke other users' tokens");
        }
        spec.details = { name: found.token.name, owner: found.username };
        if (await tx.tokens.revoke(id)) {
          const after = await tx.tokens.get(id);
          if (after)
            spec.changes = changesBetween(
              toToken(found.token, found.username),
              toToken(after.token, after.username),
            );
        }
      },
    );
  }
}
