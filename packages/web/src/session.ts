/**
 * Who is logged in: the answer of GET /auth/me (or of the login), kept for the page's life.
 * The cookie itself is HttpOnly; this only decides what to show (the server enforces roles).
 */
import type { RouteResponse } from '@opsplane/api';
import { api, ApiError } from './api.js';

type Me = RouteResponse<'GET /auth/me'>;

let current: Me | undefined;

export function session(): Me | undefined {
  return current;
}

export function setSession(me: Me | undefined): void {
  current = me;
}

type Role = Me['role'];
const RANK: Record<Role, number> = { viewer: 1, operator: 2, admin: 3 };

/** The role in an area: the per-area one where there is one, else the global one. */
export function roleIn(area: string): Role {
  return current ? (current.area_roles[area] ?? current.role) : 'viewer';
}

/** The highest role the user has anywhere (roles are per area). */
export function bestRole(): Role {
  if (!current) return 'viewer';
  return [current.role, ...Object.values(current.area_roles)].reduce((a, b) => (RANK[b] > RANK[a] ? b : a));
}

/**
 * Operators and admins (in some area) may act: batches, deployments, devices; viewers only
 * look. The server checks the area of each change.
 */
export function canOperate(): boolean {
  return RANK[bestRole()] >= RANK.operator;
}

/** May act in this area (operator or admin there). */
export function canOperateIn(area: string): boolean {
  return RANK[roleIn(area)] >= RANK.operator;
}

/** Admins of the platform (users, all tokens, bundles). */
export function isAdmin(): boolean {
  return current?.role === 'admin';
}

/** The session from the server; undefined when there is none (401). Other errors are thrown. */
export async function loadSession(): Promise<Me | undefined> {
  try {
    current = await api.call('GET /auth/me', {}, { expect401: true });
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) current = undefined;
    else throw e;
  }
  return current;
}

export async function login(username: string, password: string): Promise<Me> {
  current = await api.call('POST /auth/login', { body: { username, password } }, { expect401: true });
  return current;
}

export async function logout(): Promise<void> {
  try {
    await api.call('POST /auth/logout', {}, { expect401: true });
  } finally {
    current = undefined;
  }
}
