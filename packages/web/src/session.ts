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

/** Operators and admins may act (batches, deployments); viewers only look. */
export function canOperate(): boolean {
  return current?.role === 'operator' || current?.role === 'admin';
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
