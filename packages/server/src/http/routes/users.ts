/**
 * User management (admin only) and changing one's own password (everyone). The last enabled
 * admin cannot be demoted, disabled or deleted, so the platform cannot lock itself out.
 */
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { ConflictError, ForbiddenError, NotFoundError, ValidationError } from '@opsplane/models';
import { audited } from '../audit.js';
import { principalOf } from '../auth.js';
import type { RouteOptions } from '../context.js';
import {
  ErrorBodySchema,
  IdParamsSchema,
  PasswordChangeSchema,
  UserCreateSchema,
  UserListResponseSchema,
  UserSchema,
  UserUpdateSchema,
  commonErrors,
} from '@opsplane/api';
import type { Store } from '../../storage/store.js';
import { toUser, type UserPatch } from '../../storage/users-repo.js';
import { hashPassword, verifyPassword } from '../../security/passwords.js';

const errors = { ...commonErrors, 404: ErrorBodySchema, 409: ErrorBodySchema };

async function ensureAnotherAdmin(tx: Store, userId: string, what: string): Promise<void> {
  if ((await tx.users.countActiveAdmins(userId)) === 0) {
    throw new ConflictError(`cannot ${what} the last enabled admin`);
  }
}

export const userRoutes: FastifyPluginAsyncZod<RouteOptions> = async (app, { ctx }) => {
  const { store } = ctx;

  app.get(
    '/users',
    {
      config: { access: 'admin' },
      schema: {
        summary: 'List users',
        tags: ['users'],
        response: { 200: UserListResponseSchema, ...errors },
      },
    },
    async () => {
      const rows = await store.users.list();
      return { users: rows.map(toUser), total: rows.length };
    },
  );

  app.post(
    '/users',
    {
      config: { access: 'admin', action: 'user.create' },
      schema: {
        summary: 'Create a user',
        tags: ['users'],
        body: UserCreateSchema,
        response: { 201: UserSchema, ...errors },
      },
    },
    async (req, reply) => {
      const { username, password, role } = req.body;
      const passwordHash = await hashPassword(password);
      const row = await audited(
        ctx,
        req,
        { action: 'user.create', targetType: 'user', details: { username, role } },
        async (tx, spec) => {
          const u = await tx.users.create({ username, role, passwordHash });
          spec.targetId = u.id;
          return u;
        },
      );
      return reply.status(201).send(toUser(row));
    },
  );

  app.put(
    '/users/me/password',
    {
      config: { access: 'viewer', action: 'user.password' },
      schema: {
        summary: 'Change your own password (ends your other sessions)',
        tags: ['users'],
        body: PasswordChangeSchema,
        response: { 204: z.null(), ...errors },
      },
    },
    async (req, reply) => {
      const p = principalOf(req);
      const spec = { action: 'user.password', targetType: 'user', targetId: p.user.id };
      const passwordHash = await hashPassword(req.body.new_password);
      await audited(ctx, req, spec, async (tx) => {
        const cur = await tx.users.get(p.user.id);
        if (!cur || !(await verifyPassword(req.body.current_password, cur.passwordHash))) {
          throw new ValidationError('current_password: wrong password');
        }
        await tx.users.update(p.user.id, { passwordHash });
        await tx.sessions.deleteForUser(p.user.id, p.sessionHash);
      });
      return reply.status(204).send(null);
    },
  );

  app.get(
    '/users/:id',
    {
      config: { access: 'viewer' },
      schema: {
        summary: 'One user (admins: anyone; others: themselves)',
        tags: ['users'],
        params: IdParamsSchema,
        response: { 200: UserSchema, ...errors },
      },
    },
    async (req) => {
      const p = principalOf(req);
      if (p.role !== 'admin' && p.user.id !== req.params.id)
        throw new ForbiddenError('only admins can see other users');
      const row = await store.users.get(req.params.id);
      if (!row) throw new NotFoundError(`user ${req.params.id} not found`);
      return toUser(row);
    },
  );

  app.patch(
    '/users/:id',
    {
      config: { access: 'admin', action: 'user.update' },
      schema: {
        summary: 'Change role, disable/enable, or set a new password',
        tags: ['users'],
        params: IdParamsSchema,
        body: UserUpdateSchema,
        response: { 200: UserSchema, ...errors },
      },
    },
    async (req) => {
      const { id } = req.params;
      const body = req.body;
      const patch: UserPatch = {};
      if (body.role !== undefined) patch.role = body.role;
      if (body.disabled !== undefined) patch.disabled = body.disabled;
      if (body.password !== undefined) patch.passwordHash = await hashPassword(body.password);
      const changed = Object.keys(body);
      const spec = {
        action: 'user.update',
        targetType: 'user',
        targetId: id,
        details: { changed, role: body.role, disabled: body.disabled },
      };
      const row = await audited(ctx, req, spec, async (tx) => {
        const cur = await tx.users.get(id);
        if (!cur) throw new NotFoundError(`user ${id} not found`);
        if (cur.role === 'admin' && ((body.role && body.role !== 'admin') || body.disabled === true)) {
          await ensureAnotherAdmin(tx, id, body.disabled ? 'disable' : 'demote');
        }
        const updated = await tx.users.update(id, patch);
        // A disabled account or a password reset ends the user's sessions.
        if (body.disabled === true || body.password !== undefined) await tx.sessions.deleteForUser(id);
        return updated as NonNullable<typeof updated>;
      });
      return toUser(row);
    },
  );

  app.delete(
    '/users/:id',
    {
      config: { access: 'admin', action: 'user.delete' },
      schema: {
        summary: 'Delete a user (their sessions and tokens go too)',
        tags: ['users'],
        params: IdParamsSchema,
        response: { 204: z.null(), ...errors },
      },
    },
    async (req, reply) => {
      const { id } = req.params;
      const p = principalOf(req);
      await audited(
        ctx,
        req,
        { action: 'user.delete', targetType: 'user', targetId: id },
        async (tx, spec) => {
          if (id === p.user.id) throw new ConflictError('you cannot delete yourself');
          const cur = await tx.users.get(id);
          if (!cur) throw new NotFoundError(`user ${id} not found`);
          spec.details = { username: cur.username };
          if (cur.role === 'admin') await ensureAnotherAdmin(tx, id, 'delete');
          await tx.users.delete(id);
        },
      );
      return reply.status(204).send(null);
    },
  );
};
