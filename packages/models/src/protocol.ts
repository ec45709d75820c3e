/**
 * The agent ↔ controller protocol: JSON text frames over one agent-initiated WebSocket at
 * `GET /api/v1/agents/connect` on the controller.
 *
 * Authentication happens on the upgrade request: headers `x-opsplane-agent-code: <code>`,
 * `x-opsplane-area: <area>` and `authorization: Bearer <token>`, where the token is
 * HMAC-SHA256(area secret, "<area>:<code>") in hex (see `agentToken` in @opsplane/platform), so
 * a controller verifies agents with nothing but its area's secret. A refused upgrade gets 401.
 *
 * Flow: agent sends `hello` → controller answers `welcome` (heartbeat interval) → agent sends
 * `heartbeat` every interval (with its package states) → controller sends `request`s, agent
 * answers each with a `response` carrying the same `id`. Agents never receive shell commands:
 * requests name operations on packages defined by the agent's local manifests.
 */
import { z } from 'zod';
import { HealthStatusSchema, PackageStatusSchema } from './agent.js';
import { BatchActionSchema, ConfigItemSchema } from './batch.js';
import { OperationIdSchema, OperationStateSchema, ResultReasonSchema } from './operations.js';
import { AgentHealthSchema, ServiceHealthSchema } from './health.js';
import { ServiceMetricsSchema, SystemMetricsSchema } from './metrics.js';
import { CertificateMessageSchema, CsrMessageSchema } from './pki-frames.js';
import { ConfigFileContentSchema, ConfigFileListSchema } from './configs.js';
import { ConfigFileNameSchema, PackageNameSchema } from './names.js';
import { DesiredStateSchema, DistributionStatusSchema } from './distribution.js';

export const AGENT_CONNECT_PATH = '/api/v1/agents/connect';
export const AGENT_CODE_HEADER = 'x-opsplane-agent-code';
export const AGENT_AREA_HEADER = 'x-opsplane-area';
export const PROTOCOL_VERSION = 1;

/** What an agent says about itself in `hello`. */
export const AgentInfoSchema = z.object({
  agent_code: z.string(),
  area: z.string(),
  hostname: z.string(),
  address: z.string(),
  version: z.string(),
  os: z.string(),
  arch: z.string(),
  labels: z.record(z.string(), z.string()).default({}),
  zone: z.string().optional(),
  mode: z.string().optional(),
  group: z.string().optional(),
  deployment: z.string().optional(),
});
export type AgentInfo = z.infer<typeof AgentInfoSchema>;

export const HelloMessageSchema = z.object({
  type: z.literal('hello'),
  protocol: z.number().int(),
  agent: AgentInfoSchema,
  packages: z.array(PackageStatusSchema),
  health_status: HealthStatusSchema,
  /** Convergence on the desired state the platform gave (absent = never given one). */
  distribution: DistributionStatusSchema.optional(),
});

export const HeartbeatMessageSchema = z.object({
  type: z.literal('heartbeat'),
  seq: z.number().int().nonnegative(),
  packages: z.array(PackageStatusSchema),
  health_status: HealthStatusSchema,
  distribution: DistributionStatusSchema.optional(),
});

/** Result of one package operation on one agent. */
export const PackageOpResultSchema = z.object({
  package: z.string(),
  success: z.boolean(),
  error: z.string().optional(),
  message: z.string().optional(),
  /** done / failed_on_agent / interrupted — the agent's side of the story. */
  reason: ResultReasonSchema.optional(),
  old_pid: z.number().int().optional(),
  new_pid: z.number().int().optional(),
  duration_ms: z.number().nonnegative().optional(),
  /** Answered from the journal: this operation id had run before. */
  replayed: z.boolean().optional(),
});
export type PackageOpResult = z.infer<typeof PackageOpResultSchema>;

/** One journal entry of an agent, as the `operations` request returns it. */
export const JournalEntrySchema = z.object({
  operation_id: z.string(),
  package: z.string(),
  /** start, stop, restart, or configs. */
  action: z.string(),
  state: OperationStateSchema,
  started_at: z.string(),
  finished_at: z.string().optional(),
  result: PackageOpResultSchema.optional(),
});
export type JournalEntry = z.infer<typeof JournalEntrySchema>;

/** Operations a controller may request; each with its params and result shape. */
export const AgentRequestSchema = z.discriminatedUnion('op', [
  z.object({
    op: z.literal('action'),
    action: BatchActionSchema,
    /** Empty = every package of the agent. */
    packages: z.array(z.string()),
    /** Journaled: the same id never acts twice on this agent. */
    operation_id: OperationIdSchema.optional(),
  }),
  z.object({
    op: z.literal('configs'),
    package: z.string(),
    configs: z.array(ConfigItemSchema),
    config_file: z.string().optional(),
    operation_id: OperationIdSchema.optional(),
  }),
  /** What the agent's journal says about an operation id (never acts). */
  z.object({
    op: z.literal('operations'),
    operation_id: OperationIdSchema,
    packages: z.array(z.string()).optional(),
  }),
  z.object({ op: z.literal('packages') }),
  z.object({ op: z.literal('health') }),
  z.object({ op: z.literal('health_package'), package: z.string() }),
  z.object({ op: z.literal('metrics_system') }),
  z.object({
    op: z.literal('metrics_services'),
    package: z.string().optional(),
    running_only: z.boolean().optional(),
  }),
  /** The files in a package's config_dir (read-only). */
  z.object({ op: z.literal('config_files'), package: PackageNameSchema }),
  /** One file of a package's config_dir (read-only; a plain file name, never a path). */
  z.object({ op: z.literal('config_read'), package: PackageNameSchema, file_name: ConfigFileNameSchema }),
  /**
   * Persist this desired state and converge on it in the background (answer at once with the
   * current status). A desired state with a lower revision than the one held is refused.
   */
  z.object({ op: z.literal('desired_state'), desired: DesiredStateSchema }),
  /** The agent's current distribution status (never acts). */
  z.object({ op: z.literal('distribution') }),
]);
export type AgentRequest = z.infer<typeof AgentRequestSchema>;
export type AgentOp = AgentRequest['op'];

/** Result payload per op (what `response.result` holds when `ok`). */
export const AgentResultSchemas = {
  action: z.object({ results: z.array(PackageOpResultSchema) }),
  configs: z.object({ results: z.array(PackageOpResultSchema) }),
  operations: z.object({ entries: z.array(JournalEntrySchema) }),
  packages: z.object({ packages: z.array(PackageStatusSchema) }),
  health: AgentHealthSchema,
  health_package: ServiceHealthSchema,
  metrics_system: SystemMetricsSchema,
  metrics_services: ServiceMetricsSchema,
  config_files: ConfigFileListSchema,
  config_read: ConfigFileContentSchema,
  desired_state: DistributionStatusSchema,
  distribution: DistributionStatusSchema,
} as const;

export const RequestMessageSchema = z.object({
  type: z.literal('request'),
  id: z.string(),
  /** Milliseconds the controller will wait; the agent may give up on work past it. */
  timeout_ms: z.number().int().positive().optional(),
  request: AgentRequestSchema,
});

export const ResponseMessageSchema = z.object({
  type: z.literal('response'),
  id: z.string(),
  ok: z.boolean(),
  result: z.unknown().optional(),
  error: z.object({ code: z.string(), message: z.string() }).optional(),
});

export const WelcomeMessageSchema = z.object({
  type: z.literal('welcome'),
  protocol: z.number().int(),
  controller_id: z.string(),
  area: z.string(),
  heartbeat_interval_ms: z.number().int().positive(),
});

/** Frames an agent sends. */
export const AgentMessageSchema = z.discriminatedUnion('type', [
  HelloMessageSchema,
  HeartbeatMessageSchema,
  ResponseMessageSchema,
  CsrMessageSchema,
]);
export type AgentMessage = z.infer<typeof AgentMessageSchema>;

/** Frames a controller sends. */
export const ControllerMessageSchema = z.discriminatedUnion('type', [
  WelcomeMessageSchema,
  RequestMessageSchema,
  CertificateMessageSchema,
]);
export type ControllerMessage = z.infer<typeof ControllerMessageSchema>;

/** WebSocket close codes with a meaning in this protocol. */
export const CLOSE_CODES = {
  /** Another connection of the same agent code replaced this one. */
  replaced: 4000,
  /** Protocol violation (bad frame, missing hello). */
  protocol: 4002,
  /** The controller is shutting down; reconnect elsewhere. */
  shutdown: 4003,
  /** The agent's identity was revoked by the platform: do not come back. */
  revoked: 4004,
} as const;
