/** Users, login, sessions and API tokens on the wire. */
import { z } from 'zod';
import { DurationSchema } from '@opsplane/kit';
import { AreaNameSchema } from '@opsplane/models';
import { RoleSchema } from './roles.js';
import { TimestampOut } from './common.js';

export const UsernameSchema = z
  .string()
  .min(1, { message: 'username must not be empty' })
  .max(64, { message: 'username must be at most 64 characters' })
  .regex(/^[A-Za-z0-9][A-Za-z0-9._@-]*$/, {
    message: "username may contain only letters, digits, '.', '_', '@' and '-'",
  });

/** Password bounds: long enough to resist guessing, short enough that hashing cannot be abused. */
export const MIN_PASSWORD_LENGTH = 8;
export const MAX_PASSWORD_LENGTH = 1024;

export const NewPasswordSchema = z
  .string()
  .min(MIN_PASSWORD_LENGTH, { message: `password must be at least ${MIN_PASSWORD_LENGTH} characters` })
  .max(MAX_PASSWORD_LENGTH, { message: `password must be at most ${MAX_PASSWORD_LENGTH} characters` });

/**
 * Roles per area: a user's `role` holds in every area unless `area_roles` names another for an
 * area (higher or lower) — e.g. operator in area-1 and viewer elsewhere. Changes that concern an
 * area (its devices, agents, batches, deployments, alerts, credentials) are judged by the role
 * in that area; the rest (users, tokens, bundles) by `role`.
 */
export const AreaRolesSchema = z
  .record(AreaNameSchema, RoleSchema)
  .refine((m) => Object.keys(m).length <= 200, { message: 'at most 200 area roles' });
export type AreaRoles = z.infer<typeof AreaRolesSchema>;

export const UserSchema = z
  .object({
    id: z.uuid(),
    username: z.string(),
    role: RoleSchema.describe('the role in every area without an entry in area_roles'),
    area_roles: z.record(z.string(), RoleSchema).describe('role per area, where it differs from role'),
    disabled: z.boolean(),
    created_at: TimestampOut,
    updated_at: TimestampOut,
    last_login_at: TimestampOut.nullable(),
  })
  .meta({ id: 'User' });
export type User = z.infer<typeof UserSchema>;

export const UserCreateSchema = z
  .object({
    username: UsernameSchema,
    password: NewPasswordSchema,
    role: RoleSchema.default('viewer'),
    area_roles: AreaRolesSchema.optional(),
  })
  .strict();

export const UserUpdateSchema = z
  .object({
    role: RoleSchema.optional(),
    disabled: z.boolean().optional(),
    password: NewPasswordSchema.optional(),
    area_roles: z
      .record(AreaNameSchema, RoleSchema.nullable())
      .optional()
      .describe('per area: a role sets it, null removes it (back to role); areas not named keep theirs'),
  })
  .strict()
  .refine((u) => Object.keys(u).length > 0, { message: 'nothing to update' });

export const PasswordChangeSchema = z
  .object({ current_password: z.string().min(1).max(MAX_PASSWORD_LENGTH), new_password: NewPasswordSchema })
  .strict();

export const UserListResponseSchema = z.object({ users: z.array(UserSchema), total: z.number().int() });

export const LoginBodySchema = z
  .object({ username: z.string().min(1).max(256), password: z.string().min(1).max(MAX_PASSWORD_LENGTH) })
  .strict();

export const MeResponseSchema = z.object({
  user: UserSchema,
  auth: z.enum(['session', 'token', 'metrics_token']),
  /** The effective role (a token may carry less than its owner). */
  role: RoleSchema,
  /** Effective roles per area where they differ from `role` (the token's scope applied). */
  area_roles: z.record(z.string(), RoleSchema),
  /** A token limited to these areas acts as viewer in every other area; null = not limited. */
  token_areas: z.array(z.string()).nullable(),
  session_expires_at: TimestampOut.optional(),
});

export const TokenSchema = z
  .object({
    id: z.uuid(),
    name: z.string(),
    role: RoleSchema,
    prefix: z.string().describe('first characters after opsp_, to recognise a token'),
    areas: z
      .array(z.string())
      .nullable()
      .describe('scope: the areas it may change things in (viewer elsewhere); null = every area'),
    user_id: z.uuid(),
    username: z.string(),
    created_at: TimestampOut,
    expires_at: TimestampOut.nullable(),
    last_used_at: TimestampOut.nullable(),
    revoked_at: TimestampOut.nullable(),
  })
  .meta({ id: 'ApiToken' });
export type Token = z.infer<typeof TokenSchema>;

export const TokenCreateSchema = z
  .object({
    name: z.string().min(1).max(100),
    role: RoleSchema.optional().describe('at most your own role; default your role'),
    areas: z
      .array(AreaNameSchema)
      .min(1)
      .max(100)
      .optional()
      .describe('scope: only these areas may be changed with it (it reads everything); default every area'),
    expires_in: DurationSchema.pipe(z.number().min(60_000, { message: 'expires_in must be at least 1m' }))
      .optional()
      .describe("e.g. '720h'; default: never"),
  })
  .strict();

export const TokenCreatedSchema = TokenSchema.extend({
  token: z.string().describe('the secret, shown only in this response'),
});

export const TokenListQuerySchema = z
  .object({
    all: z
      .enum(['true', 'false'])
      .default('false')
      .transform((v) => v === 'true'),
  })
  .strict();

export const TokenListResponseSchema = z.object({ tokens: z.array(TokenSchema) });

export type Username = z.infer<typeof UsernameSchema>;
export type NewPassword = z.infer<typeof NewPasswordSchema>;
export type UserCreate = z.infer<typeof UserCreateSchema>;
export type UserUpdate = z.infer<typeof UserUpdateSchema>;
export type PasswordChange = z.infer<typeof PasswordChangeSchema>;
export type UserListResponse = z.infer<typeof UserListResponseSchema>;
export type LoginBody = z.infer<typeof LoginBodySchema>;
export type MeResponse = z.infer<typeof MeResponseSchema>;
export type TokenCreate = z.infer<typeof TokenCreateSchema>;
export type TokenCreated = z.infer<typeof TokenCreatedSchema>;
export type TokenListQuery = z.infer<typeof TokenListQuerySchema>;
export type TokenListResponse = z.infer<typeof TokenListResponseSchema>;
