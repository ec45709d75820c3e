/**
 * Roles per area. A user has a role (`users.role`) that holds in every area, and may have another
 * role in some areas (`user_area_roles`) — higher or lower: operator in area-1, viewer elsewhere.
 * An API token caps every role at its own and, when it is scoped to areas, acts as viewer in the
 * others (and for what concerns no area). Authentication computes the caller's effective roles
 * once (accounts.ts); this file is what services ask:
 *
 * - `roleIn(caller, area)`: the role for a change in that area (devices, agents, batches,
 *   deployments, alerts, silences, area credentials);
 * - `caller.role`: the role for what concerns no area (users, tokens, bundles);
 * - `bestRole(caller)`: what the HTTP edge checks for endpoints of `scope: 'area'` (the caller
 *   has that role somewhere), before the service checks the areas the request touches.
 */
import { ForbiddenError } from '@opsplane/models';
import { highestRole, roleAtLeast, type Role } from '@opsplane/api';
import type { Actor } from './audit-trail.js';

/** What the area checks need of a caller. */
export interface AreaAccess {
  username: string;
  /** The role where `areaRoles` says nothing (and for what concerns no area). */
  role: Role;
  /** Effective roles per area (token caps and scope applied). */
  areaRoles: Readonly<Record<string, Role>>;
}

/** Who acts (for the audit trail) and what they may do per area: what area-scoped changes take. */
export type AreaActor = Actor & AreaAccess;

/** A system actor (the server itself, tests) that may do everything everywhere. */
export const systemActor = (username: string): AreaActor => ({
  username,
  userId: null,
  ip: null,
  role: 'admin',
  areaRoles: {},
});

export function roleIn(caller: AreaAccess, area: string): Role {
  return caller.areaRoles[area] ?? caller.role;
}

/** The highest role the caller has anywhere. */
export function bestRole(caller: AreaAccess): Role {
  return highestRole([caller.role, ...Object.values(caller.areaRoles)]);
}

/** The areas among `areas` where the caller lacks `min`. */
export function areasWithout(caller: AreaAccess, areas: Iterable<string>, min: Role): string[] {
  const out = new Set<string>();
  for (const a of areas) if (!roleAtLeast(roleIn(caller, a), min)) out.add(a);
  return [...out].sort();
}

/**
 * Throws a ForbiddenError naming the areas where the caller lacks `min` (`what` says what was
 * asked). An empty `areas` asks nothing. `''` stands for "no area": judged by `caller.role`.
 */
export function requireInAreas(caller: AreaAccess, areas: Iterable<string>, min: Role, what: string): void {
  const list = [...areas];
  const noArea = list.includes('');
  const missing = areasWithout(
    caller,
    list.filter((a) => a !== ''),
    min,
  );
  if (noArea && !roleAtLeast(caller.role, min)) missing.unshift('(no area)');
  if (missing.length === 0) return;
  const shown = missing.slice(0, 10).join(', ') + (missing.length > 10 ? `, … (${missing.length})` : '');
  throw new ForbiddenError(
    `${what} needs the ${min} role in ${missing.length === 1 ? 'area' : 'areas'} ${shown}; ` +
      `${caller.username} does not have it there`,
  );
}

/**
 * The effective roles of a caller: the user's, capped by a token's role and limited by its areas.
 * `tokenAreas` null = not scoped.
 */
export function effectiveRoles(
  userRole: Role,
  userAreaRoles: Readonly<Record<string, Role>>,
  token?: { role: Role; areas: readonly string[] | null },
): { role: Role; areaRoles: Record<string, Role> } {
  const cap = (r: Role): Role => (token && !roleAtLeast(token.role, r) ? token.role : r);
  if (!token) return { role: userRole, areaRoles: { ...userAreaRoles } };
  if (token.areas === null) {
    return {
      role: cap(userRole),
      areaRoles: Object.fromEntries(Object.entries(userAreaRoles).map(([a, r]) => [a, cap(r)])),
    };
  }
  return {
    role: 'viewer',
    areaRoles: Object.fromEntries(token.areas.map((a) => [a, cap(userAreaRoles[a] ?? userRole)])),
  };
}
