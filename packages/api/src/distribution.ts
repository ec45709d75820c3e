/**
 * Distribution on the wire (server API): signed artifacts (packages and agent bundles) stored by
 * the server, policies — the desired state of agents by area and label selector, with a revision
 * per change — and staged rollouts of a policy revision in waves with automatic rollback.
 *
 * Policy rules (the server enforces them; the README repeats them):
 * - An agent follows ONE policy: the highest `priority` among those whose `areas` (empty = all)
 *   contain its area and whose `selector` matches its labels; ties go to the older policy.
 * - Every create or change makes a new revision. `applied_revision` is what agents outside a
 *   running rollout get (new hosts on first connect included). A revision made without
 *   `staged: true` becomes `applied_revision` at once; a staged one only when a rollout of it
 *   succeeds. A halted or cancelled rollout leaves `applied_revision` as it was.
 */
import { z } from 'zod';
import {
  AreaNameSchema,
  ArtifactKindSchema,
  ArtifactPublicKeySchema,
  ArtifactRefSchema,
  ArtifactVersionSchema,
  ConfigItemSchema,
  DistributionStatusSchema,
  PackageNameSchema,
  Sha256Schema,
} from '@opsplane/models';
import { PageQuery, TimestampOut } from './common.js';
import { LabelSelectorSchema } from './selectors.js';

/** The name every agent artifact carries (it is part of what is signed). */
export const AGENT_ARTIFACT_NAME = 'opsplane-agent';

// ------------------------------------------------------------------------------ artifacts

export const ArtifactSchema = ArtifactRefSchema.extend({
  signed_by: z
    .enum(['server', 'uploader'])
    .describe("server: signed with the server's key on upload; uploader: uploaded signed by a trusted key"),
  /** Package artifacts: what package.yaml declares to start it (agents: ''). */
  command: z.string(),
  uploaded_by: z.string(),
  created_at: TimestampOut,
}).meta({ id: 'Artifact' });
export type Artifact = z.infer<typeof ArtifactSchema>;

export const ArtifactParamsSchema = z.object({ sha256: Sha256Schema });

export const ArtifactListQuerySchema = z
  .object({
    ...PageQuery,
    kind: ArtifactKindSchema.optional(),
    name: PackageNameSchema.optional(),
    version: ArtifactVersionSchema.optional(),
  })
  .strict();
export type ArtifactListQuery = z.infer<typeof ArtifactListQuerySchema>;

export const ArtifactListResponseSchema = z
  .object({
    items: z.array(ArtifactSchema),
    total: z.number().int(),
    page: z.number().int(),
    pageSize: z.number().int(),
  })
  .meta({ id: 'ArtifactList' });
export type ArtifactListResponse = z.infer<typeof ArtifactListResponseSchema>;

export const ArtifactUploadQuerySchema = z
  .object({
    kind: ArtifactKindSchema.default('package').describe(
      'package: a tar.gz with package.yaml at its top; agent: an agent bundle',
    ),
    signature: z
      .string()
      .min(1)
      .max(200)
      .optional()
      .describe(
        'base64 ed25519 signature over the artifact signing message, by a key in artifacts.trusted_keys',
      ),
    key_id: z
      .string()
      .regex(/^[0-9a-f]{16}$/, { message: 'key_id is 16 hex digits' })
      .optional(),
  })
  .strict()
  .refine((q) => (q.signature === undefined) === (q.key_id === undefined), {
    message: 'signature and key_id go together',
  });
export type ArtifactUploadQuery = z.infer<typeof ArtifactUploadQuerySchema>;

export const ArtifactKeySchema = z
  .object({
    key: ArtifactPublicKeySchema,
    key_id: z.string(),
    source: z.enum(['server', 'trusted']).describe("server: the cluster's own signing key"),
  })
  .meta({ id: 'ArtifactKey' });

export const ArtifactKeysResponseSchema = z
  .object({
    keys: z.array(ArtifactKeySchema).describe('every key agents and controllers should pin in artifact_keys'),
  })
  .meta({ id: 'ArtifactKeys' });
export type ArtifactKeysResponse = z.infer<typeof ArtifactKeysResponseSchema>;

// ------------------------------------------------------------------------------ policies

export const PolicyNameSchema = z
  .string()
  .min(1)
  .max(64)
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, {
    message: "policy name may contain only letters, digits, '.', '_' and '-'",
  });

export const PolicyPackageSchema = z
  .object({
    name: PackageNameSchema,
    version: ArtifactVersionSchema,
    configs: z.array(ConfigItemSchema).max(50).default([]),
  })
  .meta({ id: 'PolicyPackage' });
export type PolicyPackage = z.infer<typeof PolicyPackageSchema>;

const uniquePackages = (pkgs: readonly { name: string }[]) =>
  new Set(pkgs.map((p) => p.name)).size === pkgs.length;

/** The fields a revision fixes (what agents get). */
const policySpecFields = {
  description: z.string().max(1000),
  areas: z.array(AreaNameSchema).max(500).describe('areas the policy applies to; empty = every area'),
  selector: LabelSelectorSchema.describe('label selector on agent labels; empty = every agent'),
  priority: z
    .number()
    .int()
    .min(-1000)
    .max(1000)
    .describe('an agent follows only the highest-priority policy that matches it (ties: the older policy)'),
  packages: z
    .array(PolicyPackageSchema)
    .max(50)
    .refine(uniquePackages, { message: 'a package may appear only once in a policy' }),
  agent_version: ArtifactVersionSchema.nullable().describe(
    `the agent version to run (self-upgrade through an '${AGENT_ARTIFACT_NAME}' artifact); null = leave as is`,
  ),
  correct_drift: z.boolean().describe('rewrite config files that differ from the policy (else only report)'),
  health_timeout_ms: z.number().int().min(1_000).max(3_600_000),
};

export const PolicyCreateSchema = z
  .object({
    name: PolicyNameSchema,
    description: policySpecFields.description.default(''),
    areas: policySpecFields.areas.default([]),
    selector: policySpecFields.selector.default(''),
    priority: policySpecFields.priority.default(0),
    packages: policySpecFields.packages.default([]),
    agent_version: policySpecFields.agent_version.default(null),
    correct_drift: policySpecFields.correct_drift.default(false),
    health_timeout_ms: policySpecFields.health_timeout_ms.default(60_000),
    staged: z
      .boolean()
      .default(false)
      .describe('true: the revision reaches agents only through a rollout; false: applied at once'),
  })
  .strict();
export type PolicyCreate = z.infer<typeof PolicyCreateSchema>;
export type PolicyCreateInput = z.input<typeof PolicyCreateSchema>;

export const PolicyUpdateSchema = z
  .object({
    name: PolicyNameSchema.optional(),
    description: policySpecFields.description.optional(),
    areas: policySpecFields.areas.optional(),
    selector: policySpecFields.selector.optional(),
    priority: policySpecFields.priority.optional(),
    packages: policySpecFields.packages.optional(),
    agent_version: policySpecFields.agent_version.optional(),
    correct_drift: policySpecFields.correct_drift.optional(),
    health_timeout_ms: policySpecFields.health_timeout_ms.optional(),
    staged: z
      .boolean()
      .default(false)
      .describe('true: the new revision reaches agents only through a rollout; false: applied at once'),
  })
  .strict();
export type PolicyUpdate = z.infer<typeof PolicyUpdateSchema>;
export type PolicyUpdateInput = z.input<typeof PolicyUpdateSchema>;

/** What one revision holds. */
export const PolicySpecSchema = z
  .object({
    name: PolicyNameSchema,
    description: z.string(),
    areas: z.array(z.string()),
    selector: z.string(),
    priority: z.number().int(),
    packages: z.array(PolicyPackageSchema),
    agent_version: z.string().nullable(),
    correct_drift: z.boolean(),
    health_timeout_ms: z.number().int(),
  })
  .meta({ id: 'PolicySpec' });
export type PolicySpec = z.infer<typeof PolicySpecSchema>;

export const PolicySchema = PolicySpecSchema.extend({
  id: z.uuid(),
  revision: z.number().int().describe('the latest revision'),
  applied_revision: z
    .number()
    .int()
    .nullable()
    .describe('what agents outside a running rollout get; null: none yet (a staged policy never rolled out)'),
  created_by: z.string(),
  created_at: TimestampOut,
  updated_at: TimestampOut,
}).meta({ id: 'Policy' });
export type Policy = z.infer<typeof PolicySchema>;

export const PolicyListResponseSchema = z
  .object({ items: z.array(PolicySchema), total: z.number().int() })
  .meta({ id: 'PolicyList' });
export type PolicyListResponse = z.infer<typeof PolicyListResponseSchema>;

export const PolicyRevisionSchema = z
  .object({
    revision: z.number().int(),
    spec: PolicySpecSchema,
    created_by: z.string(),
    created_at: TimestampOut,
  })
  .meta({ id: 'PolicyRevision' });
export type PolicyRevision = z.infer<typeof PolicyRevisionSchema>;

export const PolicyRevisionListSchema = z
  .object({ revisions: z.array(PolicyRevisionSchema).describe('newest first') })
  .meta({ id: 'PolicyRevisionList' });
export type PolicyRevisionList = z.infer<typeof PolicyRevisionListSchema>;

export const PolicyAgentSchema = z
  .object({
    agent_code: z.string(),
    area: z.string(),
    controller_id: z.string().nullable(),
    online: z.boolean(),
    assigned_revision: z
      .number()
      .int()
      .nullable()
      .describe('the revision last handed to the agent; null: none yet'),
    target_revision: z
      .number()
      .int()
      .nullable()
      .describe('the revision it should run now (applied_revision, or its rollout assignment)'),
    rollout_id: z.uuid().nullable().describe('the running rollout that holds the agent, if any'),
    distribution: DistributionStatusSchema.nullable().describe('what the agent last reported'),
    state: z
      .enum(['pending', 'applying', 'applied', 'failed'])
      .describe('pending: it has not reported the target revision yet'),
  })
  .meta({ id: 'PolicyAgent' });
export type PolicyAgent = z.infer<typeof PolicyAgentSchema>;

export const PolicyAgentListSchema = z
  .object({ items: z.array(PolicyAgentSchema), total: z.number().int() })
  .meta({ id: 'PolicyAgentList' });
export type PolicyAgentList = z.infer<typeof PolicyAgentListSchema>;

// ------------------------------------------------------------------------------ rollouts

export const POLICY_ROLLOUT_STATUSES = ['running', 'paused', 'succeeded', 'halted', 'cancelled'] as const;
export const PolicyRolloutStatusSchema = z.enum(POLICY_ROLLOUT_STATUSES);
export type PolicyRolloutStatus = z.infer<typeof PolicyRolloutStatusSchema>;
export const isRolloutActive = (s: PolicyRolloutStatus): boolean => s === 'running' || s === 'paused';

export const ROLLOUT_AGENT_STATUSES = [
  'pending',
  'applying',
  'applied',
  'failed',
  'rolled_back',
  'skipped',
] as const;
export const RolloutAgentStatusSchema = z.enum(ROLLOUT_AGENT_STATUSES);
export type RolloutAgentStatus = z.infer<typeof RolloutAgentStatusSchema>;

export const PolicyRolloutCreateSchema = z
  .object({
    policy_id: z.uuid(),
    revision: z.number().int().min(1).optional().describe('default: the latest revision'),
    batch_size: z.number().int().min(1).max(100_000).optional().describe('agents per wave'),
    batch_percent: z
      .number()
      .int()
      .min(1)
      .max(100)
      .optional()
      .describe('agents per wave as a percentage of all (rounded up); default 100 when batch_size is unset'),
    pause_ms: z.number().int().min(0).max(86_400_000).default(0).describe('pause between waves'),
    max_failures: z
      .number()
      .int()
      .min(0)
      .default(0)
      .describe('more failures than this halt the rollout and roll back every touched agent'),
    wave_timeout_ms: z
      .number()
      .int()
      .min(1_000)
      .max(86_400_000)
      .default(300_000)
      .describe('an agent that has not reported applied/failed for the revision by then counts as failed'),
  })
  .strict()
  .refine((r) => r.batch_size === undefined || r.batch_percent === undefined, {
    message: 'give batch_size or batch_percent, not both',
  });
export type PolicyRolloutCreate = z.infer<typeof PolicyRolloutCreateSchema>;
export type PolicyRolloutCreateInput = z.input<typeof PolicyRolloutCreateSchema>;

export const RolloutCountsSchema = z.object({
  total: z.number().int(),
  pending: z.number().int(),
  applying: z.number().int(),
  applied: z.number().int(),
  failed: z.number().int(),
  rolled_back: z.number().int(),
  skipped: z.number().int(),
});
export type RolloutCounts = z.infer<typeof RolloutCountsSchema>;

export const RolloutAgentSchema = z
  .object({
    agent_code: z.string(),
    area: z.string(),
    wave: z.number().int().describe('from 1'),
    status: RolloutAgentStatusSchema,
    previous_revision: z.number().int().nullable().describe('what it is rolled back to'),
    error: z.object({ code: z.string(), message: z.string() }).nullable(),
    started_at: TimestampOut.nullable(),
    finished_at: TimestampOut.nullable(),
  })
  .meta({ id: 'RolloutAgent' });
export type RolloutAgent = z.infer<typeof RolloutAgentSchema>;

export const RolloutWaveSchema = z
  .object({
    index: z.number().int().describe('from 1'),
    status: z.enum(['pending', 'running', 'done', 'failed']),
    agents: z.number().int(),
    started_at: TimestampOut.nullable(),
    finished_at: TimestampOut.nullable(),
  })
  .meta({ id: 'RolloutWave' });
export type RolloutWave = z.infer<typeof RolloutWaveSchema>;

export const PolicyRolloutSchema = z
  .object({
    id: z.uuid(),
    policy_id: z.uuid(),
    policy_name: z.string(),
    revision: z.number().int(),
    previous_revision: z.number().int().nullable().describe('applied_revision when the rollout began'),
    status: PolicyRolloutStatusSchema,
    batch_size: z.number().int().describe('agents per wave (batch_percent resolved at start)'),
    pause_ms: z.number().int(),
    max_failures: z.number().int(),
    wave_timeout_ms: z.number().int(),
    current_wave: z.number().int().describe('0 before the first wave'),
    waves: z.array(RolloutWaveSchema),
    counts: RolloutCountsSchema,
    message: z.string().describe('why it halted, or what it waits for'),
    created_by: z.string(),
    created_at: TimestampOut,
    updated_at: TimestampOut,
    finished_at: TimestampOut.nullable(),
    agents: z.array(RolloutAgentSchema).optional().describe('one rollout only (not in lists)'),
  })
  .meta({ id: 'PolicyRollout' });
export type PolicyRollout = z.infer<typeof PolicyRolloutSchema>;

export const PolicyRolloutListQuerySchema = z
  .object({
    ...PageQuery,
    policy_id: z.uuid().optional(),
    status: PolicyRolloutStatusSchema.optional(),
  })
  .strict();
export type PolicyRolloutListQuery = z.infer<typeof PolicyRolloutListQuerySchema>;

export const PolicyRolloutListResponseSchema = z
  .object({
    items: z.array(PolicyRolloutSchema),
    total: z.number().int(),
    page: z.number().int(),
    pageSize: z.number().int(),
  })
  .meta({ id: 'PolicyRolloutList' });
export type PolicyRolloutListResponse = z.infer<typeof PolicyRolloutListResponseSchema>;
