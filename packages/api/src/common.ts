/**
 * Wire pieces shared by the server's endpoints: error body, pagination, ids, timestamps. The
 * server's own wire types live here (not in @opsplane/models) because only the server and its
 * clients (CLI, UI) speak them.
 */
import { z } from 'zod';
import { ErrorBodySchema } from '@opsplane/models';

export { ErrorBodySchema };
/** `{"error":{"code","message"}}`: the body of every error answer. */
export type ErrorBody = z.infer<typeof ErrorBodySchema>;

export const MAX_SERVER_PAGE_SIZE = 500;

const intParam = (name: string, min: number, max: number) =>
  z
    .string()
    .regex(/^\d{1,9}$/, { message: `${name} must be a positive integer` })
    .transform(Number)
    .pipe(
      z
        .number()
        .int()
        .min(min, { message: `${name} must be at least ${min}` })
        .max(max, { message: `${name} must be at most ${max}` }),
    );

/** `page` (from 1) and `pageSize` (camelCase, as the controller API spells it). */
export const PageQuery = {
  page: intParam('page', 1, 1_000_000).default(1),
  pageSize: intParam('pageSize', 1, MAX_SERVER_PAGE_SIZE).default(50),
};

export const IdParamsSchema = z.object({ id: z.uuid({ message: 'id must be a UUID' }) });

export const TimestampOut = z.string().describe('RFC 3339 timestamp');

/** Error responses every authenticated route can give: bad request, not logged in, not allowed. */
export const commonErrors = {
  400: ErrorBodySchema,
  401: ErrorBodySchema,
  403: ErrorBodySchema,
} as const;

/** commonErrors plus these statuses, each answered with the error body. */
export function withErrors<const S extends readonly number[]>(
  ...statuses: S
): typeof commonErrors & { [K in S[number]]: typeof ErrorBodySchema } {
  const out: Record<number, typeof ErrorBodySchema> = { ...commonErrors };
  for (const s of statuses) out[s] = ErrorBodySchema;
  return out as typeof commonErrors & { [K in S[number]]: typeof ErrorBodySchema };
}

export const iso = (d: Date): string => d.toISOString();
export const isoOrNull = (d: Date | null): string | null => (d ? d.toISOString() : null);
