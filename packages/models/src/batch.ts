/**
 * Batch operations (POST /agents/batch/{start,stop,restart,configs}). The result carries exactly
 * one entry per (agent, package) asked for; a batch never fails as a whole because agents fail.
 */
import { z } from 'zod';
import { AgentCodeSchema, ConfigFileNameSchema, PackageNameSchema } from './names.js';
import {
  BatchTimeoutSchema,
  OperationIdSchema,
  ResultReasonSchema,
  type ResultReason,
} from './operations.js';

export const BATCH_ACTIONS = ['start', 'stop', 'restart'] as const;
export const BatchActionSchema = z.enum(BATCH_ACTIONS);
export type BatchAction = z.infer<typeof BatchActionSchema>;

/** Max bytes of one config file's content accepted on the wire. */
export const MAX_CONFIG_CONTENT_BYTES = 1024 * 1024;

const encoder = new TextEncoder();
const utf8Length = (s: string) => encoder.encode(s).length;

export const BatchOperationRequestSchema = z.object({
  agents: z.array(AgentCodeSchema).min(1, { message: 'agents must list at least one agent' }),
  /** Empty or absent = every package of each agent. */
  packages: z
    .array(PackageNameSchema)
    .nullish()
    .transform((v) => v ?? []),
  /** Opsplane: the operation id (also the Idempotency-Key header); the same id never acts twice. */
  operation_id: OperationIdSchema.optional(),
  /** Opsplane: what is left of the caller's deadline; the controller answers within it. */
  timeout_ms: BatchTimeoutSchema.optional(),
});
export type BatchOperationRequest = z.infer<typeof BatchOperationRequestSchema>;
export type BatchOperationRequestInput = z.input<typeof BatchOperationRequestSchema>;

export const ConfigItemSchema = z.object({
  file_name: ConfigFileNameSchema,
  content: z.string().refine((s) => utf8Length(s) <= MAX_CONFIG_CONTENT_BYTES, {
    message: `content must be at most ${MAX_CONFIG_CONTENT_BYTES} bytes`,
  }),
});
export type ConfigItem = z.infer<typeof ConfigItemSchema>;

export const BatchConfigRequestSchema = z
  .object({
    agents: z.array(AgentCodeSchema).min(1, { message: 'agents must list at least one agent' }),
    package: PackageNameSchema,
    /**
     * The files to write. The Go client sends `null` for a nil slice and the Go controller
     * answered it per agent; so null (or []) is accepted here and the controller answers each
     * agent with a `no_configs` result, writing nothing.
     */
    configs: z
      .array(ConfigItemSchema)
      .nullish()
      .transform((v) => v ?? []),
    /** The package's main config file among `configs` (defaults to the first). */
    config_file: z.string().optional(),
    operation_id: OperationIdSchema.optional(),
    timeout_ms: BatchTimeoutSchema.optional(),
  })
  .superRefine((req, ctx) => {
    const names = new Set<string>();
    for (const [i, c] of req.configs.entries()) {
      if (names.has(c.file_name)) {
        ctx.addIssue({
          code: 'custom',
          path: ['configs', i, 'file_name'],
          message: `duplicate file_name '${c.file_name}'`,
        });
      }
      names.add(c.file_name);
    }
    if (req.config_file !== undefined && req.config_file !== '' && !names.has(req.config_file)) {
      ctx.addIssue({
        code: 'custom',
        path: ['config_file'],
        message: 'config_file must name one of the files in configs',
      });
    }
  });
export type BatchConfigRequest = z.infer<typeof BatchConfigRequestSchema>;
export type BatchConfigRequestInput = z.input<typeof BatchConfigRequestSchema>;

export const OperationResultSchema = z.object({
  agent_code: z.string(),
  package: z.string(),
  success: z.boolean(),
  error: z.string().optional(),
  message: z.string().optional(),
  // Opsplane's additions (Go clients ignore them): what happened, typed.
  reason: ResultReasonSchema.optional(),
  operation_id: z.string().optional(),
  /** The package's process before and after the operation, as the agent saw them. */
  old_pid: z.number().int().optional(),
  new_pid: z.number().int().optional(),
  /** How long the agent spent on it. */
  agent_duration_ms: z.number().nonnegative().optional(),
  /** The agent answered from its journal: the operation had run before (not again now). */
  replayed: z.boolean().optional(),
  /** How many times the platform sent it (more than 1 after a controller failed). */
  attempts: z.number().int().positive().optional(),
});
export type OperationResult = z.infer<typeof OperationResultSchema>;

export const BatchOperationResultSchema = z.object({
  total: z.number().int().nonnegative(),
  success: z.number().int().nonnegative(),
  failed: z.number().int().nonnegative(),
  results: z
    .array(OperationResultSchema)
    .nullish()
    .transform((v) => v ?? []),
  duration_ms: z.number().nonnegative().default(0),
});
export type BatchOperationResult = z.infer<typeof BatchOperationResultSchema>;

/** Builds a result with counts that always agree with its entries. */
export function batchResult(results: OperationResult[], durationMs: number): BatchOperationResult {
  const success = results.filter((r) => r.success).length;
  return {
    total: results.length,
    success,
    failed: results.length - success,
    results,
    duration_ms: Math.round(durationMs),
  };
}

/** Merges per-area or per-controller results into one. */
export function mergeBatchResults(parts: readonly BatchOperationResult[], durationMs: number) {
  return batchResult(
    parts.flatMap((p) => p.results),
    durationMs,
  );
}

/**
 * One failed entry per (agent, package) — for agents a whole group could not reach. `reason`
 * says whether the operation may have reached them.
 */
export function failedResults(
  agents: readonly string[],
  packages: readonly string[],
  error: string,
  reason: ResultReason,
  extra: Pick<OperationResult, 'message' | 'operation_id'> = {},
): OperationResult[] {
  // With no package list the packages are unknown to the caller: one entry with package ''.
  const pkgs = packages.length > 0 ? packages : [''];
  return agents.flatMap((agent_code) =>
    pkgs.map((pkg) => ({ agent_code, package: pkg, success: false, error, reason, ...extra })),
  );
}
