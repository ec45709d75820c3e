/**
 * Operation identity: every (agent, package, action) a batch asks for carries an operation id
 * that travels server → controller → agent. The agent journals each operation before it acts,
 * so an id seen again never acts twice — it answers with the recorded result, or waits for the
 * one in flight. Results say what happened with a typed reason.
 */
import { z } from 'zod';

/**
 * An operation id: the batch's id (the server's job id, a caller's Idempotency-Key, or one a
 * controller makes up for a caller that sent none). Plain characters only: it is a file key.
 */
export const OperationIdSchema = z
  .string()
  .min(1, { message: 'operation_id must not be empty' })
  .max(128, { message: 'operation_id must be at most 128 characters' })
  .regex(/^[A-Za-z0-9][A-Za-z0-9:._-]*$/, {
    message: "operation_id may contain only letters, digits, ':', '.', '_' and '-'",
  });

/**
 * Why a result is what it is — the question an operator asks before retrying:
 * - `done`: the agent did it.
 * - `failed_on_agent`: the agent tried and failed; `error` holds the agent's own error.
 * - `interrupted`: the agent stopped (crashed or restarted) while it ran the operation;
 *   `message` says what state the package is in now.
 * - `not_delivered`: the operation never reached the agent (offline, unknown, no controller,
 *   or the agent has no record of it) — nothing was done; safe to retry.
 * - `outcome_unknown`: it may have reached the agent, but no answer came before the deadline.
 */
export const RESULT_REASONS = [
  'done',
  'failed_on_agent',
  'interrupted',
  'not_delivered',
  'outcome_unknown',
] as const;
export const ResultReasonSchema = z.enum(RESULT_REASONS);
export type ResultReason = z.infer<typeof ResultReasonSchema>;

/** Where an operation stands in an agent's journal. */
export const OPERATION_STATES = ['in_flight', 'done', 'interrupted'] as const;
export const OperationStateSchema = z.enum(OPERATION_STATES);
export type OperationState = z.infer<typeof OperationStateSchema>;

/** Bounds of the caller's deadline a batch request may carry (`timeout_ms`). */
export const MIN_BATCH_TIMEOUT_MS = 100;
export const MAX_BATCH_TIMEOUT_MS = 3_600_000;
export const BatchTimeoutSchema = z
  .number()
  .int()
  .min(MIN_BATCH_TIMEOUT_MS, { message: `timeout_ms must be at least ${MIN_BATCH_TIMEOUT_MS}` })
  .max(MAX_BATCH_TIMEOUT_MS, { message: `timeout_ms must be at most ${MAX_BATCH_TIMEOUT_MS}` });

/**
 * POST /api/v1/agents/operations (Opsplane): what the agents' journals say about an operation
 * id — never acts. How the platform learns the true outcome after a controller died mid-request
 * or the server crashed mid-batch.
 */
export const OperationQueryRequestSchema = z.object({
  agents: z.array(z.string().min(1).max(128)).min(1, { message: 'agents must list at least one agent' }),
  operation_id: OperationIdSchema,
  /** Only these packages (default: every package the journal has for the id). */
  packages: z.array(z.string().min(1).max(64)).optional(),
});
export type OperationQueryRequest = z.infer<typeof OperationQueryRequestSchema>;

/**
 * Per agent (and package) what is known: `in_flight`, `done` and `interrupted` come from the
 * agent's journal (with its result); `unknown` — the agent has no record of the id (it never
 * reached it); `unreachable` — no controller of the area holds the agent now.
 */
export const OPERATION_QUERY_STATES = ['in_flight', 'done', 'interrupted', 'unknown', 'unreachable'] as const;
export const OperationQueryEntrySchema = z.object({
  agent_code: z.string(),
  /** '' when the agent has no entry at all for the id. */
  package: z.string(),
  state: z.enum(OPERATION_QUERY_STATES),
  action: z.string().optional(),
  success: z.boolean().optional(),
  reason: ResultReasonSchema.optional(),
  error: z.string().optional(),
  message: z.string().optional(),
  old_pid: z.number().int().optional(),
  new_pid: z.number().int().optional(),
  agent_duration_ms: z.number().nonnegative().optional(),
});
export type OperationQueryEntry = z.infer<typeof OperationQueryEntrySchema>;

export const OperationQueryResultSchema = z.object({
  operation_id: z.string(),
  entries: z.array(OperationQueryEntrySchema),
});
export type OperationQueryResult = z.infer<typeof OperationQueryResultSchema>;
