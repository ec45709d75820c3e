/** Endpoints of login and sessions, users and API tokens. */
import { z } from 'zod';
import { ErrorBodySchema, IdParamsSchema, commonErrors, withErrors } from '../common.js';
import { endpoint } from '../endpoint.js';
import {
  LoginBodySchema,
  MeResponseSchema,
  PasswordChangeSchema,
  TokenCreateSchema,
  TokenCreatedSchema,
  TokenListQuerySchema,
  TokenListResponseSchema,
  UserCreateSchema,
  UserListResponseSchema,
  UserSchema,
  UserUpdateSchema,
} from '../users.js';

export const authEndpoints = {
  login: endpoint({
    method: 'POST',
    path: '/auth/login',
    access: 'public',
    action: 'auth.login',
    summary: 'Log in with username and password; sets the session cookie',
    description:
      'The session id travels only in an HttpOnly, SameSite=Strict cookie (Secure over https). Failed ' +
      'logins are audited and rate-limited per client address (429).',
    tags: ['auth'],
    body: LoginBodySchema,
    response: { 200: MeResponseSchema, 400: ErrorBodySchema, 401: ErrorBodySchema, 429: ErrorBodySchema },
  }),
  logout: endpoint({
    method: 'POST',
    path: '/auth/logout',
    access: 'viewer',
    action: 'auth.logout',
    summary: 'End the current session (a token-authenticated call just succeeds)',
    tags: ['auth'],
    response: { 204: z.null(), ...commonErrors },
  }),
  me: endpoint({
    method: 'GET',
    path: '/auth/me',
    access: 'viewer',
    summary: 'The authenticated user',
    tags: ['auth'],
    response: { 200: MeResponseSchema, ...commonErrors },
  }),
} as const;

export const userEndpoints = {
  list: endpoint({
    method: 'GET',
    path: '/users',
    access: 'admin',
    summary: 'List users',
    tags: ['users'],
    response: { 200: UserListResponseSchema, ...withErrors(404, 409) },
  }),
  create: endpoint({
    method: 'POST',
    path: '/users',
    access: 'admin',
    action: 'user.create',
    summary: 'Create a user',
    tags: ['users'],
    body: UserCreateSchema,
    response: { 201: UserSchema, ...withErrors(404, 409) },
  }),
  changeOwnPassword: endpoint({
    method: 'PUT',
    path: '/users/me/password',
    access: 'viewer',
    action: 'user.password',
    summary: 'Change your own password (ends your other sessions and revokes your API tokens)',
    tags: ['users'],
    body: PasswordChangeSchema,
    response: { 204: z.null(), ...withErrors(404, 409) },
  }),
  get: endpoint({
    method: 'GET',
    path: '/users/:id',
    access: 'viewer',
    summary: 'One user (admins: anyone; others: themselves)',
    tags: ['users'],
    params: IdParamsSchema,
    response: { 200: UserSchema, ...withErrors(404, 409) },
  }),
  update: endpoint({
    method: 'PATCH',
    path: '/users/:id',
    access: 'admin',
    action: 'user.update',
    summary: 'Change role, disable/enable, or set a new password',
    description:
      "The last enabled admin cannot be demoted or disabled (409). Disabling a user or setting a password ends the user's " +
      'sessions and revokes its API tokens (re-enabling brings none of them back).',
    tags: ['users'],
    params: IdParamsSchema,
    body: UserUpdateSchema,
    response: { 200: UserSchema, ...withErrors(404, 409) },
  }),
  delete: endpoint({
    method: 'DELETE',
    path: '/users/:id',
    access: 'admin',
    action: 'user.delete',
    summary: 'Delete a user (their sessions and tokens go too)',
    tags: ['users'],
    params: IdParamsSchema,
    response: { 204: z.null(), ...withErrors(404, 409) },
  }),
} as const;

export const tokenEndpoints = {
  list: endpoint({
    method: 'GET',
    path: '/tokens',
    access: 'viewer',
    summary: 'Your API tokens (admins: all=true lists everyone’s)',
    tags: ['tokens'],
    querystring: TokenListQuerySchema,
    response: { 200: TokenListResponseSchema, ...withErrors(404) },
  }),
  create: endpoint({
    method: 'POST',
    path: '/tokens',
    access: 'operator',
    scope: 'area',
    action: 'token.create',
    summary: 'Create an API token; the secret is in this response only',
    description:
      "`Authorization: Bearer opsp_…`. A token's role is at most its creator's (in each of its `areas` when it " +
      "is scoped to some: it acts as viewer in the others), and its owner's current roles still cap it. " +
      'Operators of some area may create tokens scoped to those areas. The secret is stored as a SHA-256 hash.',
    tags: ['tokens'],
    body: TokenCreateSchema,
    response: { 201: TokenCreatedSchema, ...withErrors(404) },
  }),
  revoke: endpoint({
    method: 'DELETE',
    path: '/tokens/:id',
    access: 'operator',
    scope: 'area',
    action: 'token.revoke',
    summary: 'Revoke an API token (idempotent)',
    tags: ['tokens'],
    params: IdParamsSchema,
    response: { 204: z.null(), ...withErrors(404) },
  }),
} as const;
