/**
 * API tokens for automation: `Authorization: Bearer opsp_…`. The secret is shown once, at
 * creation, and stored as a SHA-256 hash. Operators manage their own tokens; admins anyone's.
 * A token's role is at most its creator's, and its owner's current role still caps it.
 */
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { ForbiddenError, NotFoundError } from '@opsplane/models';
import { audited } from '../audit.js';
import { principalOf } from '../auth.js';
import type { RouteOptions } from '../context.js';
import {
  ErrorBodySchema,
  IdParamsSchema,
  TokenCreateSchema,
  TokenCreatedSchema,
  TokenListQuerySchema,
  TokenListResponseSchema,
  commonErrors,
  roleAtLeast,
} from '@opsplane/api';
import { toToken } from '../../storage/tokens-repo.js';
import { newApiToken, sha256Hex } from '../../security/tokens.js';

const errors = { ...commonErrors, 404: ErrorBodySchema };

export const tokenRoutes: FastifyPluginAsyncZod<RouteOptions> = async (app, { ctx }) => {
  const { store } = ctx;

  app.get(
    '/tokens',
    {
      config: { access: 'viewer' },
      schema: {
        summary: 'Your API tokens (admins: all=true lists everyone’s)',
        tags: ['tokens'],
        querystring: TokenListQuerySchema,
        response: { 200: TokenListResponseSchema, ...errors },
      },
    },
    async (req) => {
      const p = principalOf(req);
      if (req.query.all && p.role !== 'admin')
        throw new ForbiddenError("only admins can list other users' tokens");
      const rows = await store.tokens.list(req.query.all ? undefined : p.user.id);
      return { tokens: rows.map((r) => toToken(r.token, r.username)) };
    },
  );

  app.post(
    '/tokens',
    {
      config: { access: 'operator', action: 'token.create' },
      schema: {
        summary: 'Create an API token; the secret is in this response only',
        tags: ['tokens'],
        body: TokenCreateSchema,
        response: { 201: TokenCreatedSchema, ...errors },
      },
    },
    async (req, reply) => {
      const p = principalOf(req);
      const role = req.body.role ?? p.role;
      if (!roleAtLeast(p.role, role))
        throw new ForbiddenError(`you cannot create a token with more than your role (${p.role})`);
      const { token, prefix } = newApiToken();
      const expiresAt = req.body.expires_in !== undefined ? new Date(Date.now() + req.body.expires_in) : null;
      const spec = {
        action: 'token.create',
        targetType: 'api_token',
        details: { name: req.body.name, role, prefix },
      };
      const row = await audited(ctx, req, spec, async (tx, s) => {
        const t = await tx.tokens.create({
          userId: p.user.id,
          name: req.body.name,
          role,
          tokenHash: sha256Hex(token),
          prefix,
          expiresAt,
        });
        s.targetId = t.id;
        return t;
      });
      return reply.status(201).send({ ...toToken(row, p.user.username), token });
    },
  );

  app.delete(
    '/tokens/:id',
    {
      config: { access: 'operator', action: 'token.revoke' },
      schema: {
        summary: 'Revoke an API token (idempotent)',
        tags: ['tokens'],
        params: IdParamsSchema,
        response: { 204: z.null(), ...errors },
      },
    },
    async (req, reply) => {
      const p = principalOf(req);
      const { id } = req.params;
      await audited(
        ctx,
        req,
        { action: 'token.revoke', targetType: 'api_token', targetId: id },
        async (tx, spec) => {
          const found = await tx.tokens.get(id);
          if (!found) throw new NotFoundError(`token ${id} not found`);
          if (found.token.userId !== p.user.id && p.role !== 'admin') {
            throw new ForbiddenError("only admins can revoke other users' tokens");
          }
          spec.details = { name: found.token.name, owner: found.username };
          await tx.tokens.revoke(id);
        },
      );
      return reply.status(204).send(null);
    },
  );
};
