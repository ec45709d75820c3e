/**
 * Roles, ordered by what they may do: viewers read, operators also change devices (and later
 * agents, batches, deployments) and their own API tokens, admins also manage users and everything else.
 */
import { z } from 'zod';

export const ROLES = ['viewer', 'operator', 'admin'] as const;
export const RoleSchema = z.enum(ROLES);
export type Role = z.infer<typeof RoleSchema>;

const RANK: Record<Role, number> = { viewer: 1, operator: 2, admin: 3 };

export function roleAtLeast(role: Role, min: Role): boolean {
  return RANK[role] >= RANK[min];
}

export function lowerRole(a: Role, b: Role): Role {
  return RANK[a] <= RANK[b] ? a : b;
}

export function higherRole(a: Role, b: Role): Role {
  return RANK[a] >= RANK[b] ? a : b;
}

/** The highest of `roles` (viewer when there are none). */
export function highestRole(roles: Iterable<Role>): Role {
  let out: Role = 'viewer';
  for (const r of roles) out = higherRole(out, r);
  return out;
}
