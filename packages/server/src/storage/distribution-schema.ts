/**
 * The distribution tables in code (migration 8): artifacts and their content chunks, policies
 * and their revisions, policy rollouts and their agents, and what each agent was last assigned.
 */
import { sql } from 'drizzle-orm';
import {
  bigint,
  boolean,
  customType,
  integer,
  jsonb,
  pgTable,
  primaryKey,
  text,
  timestamp,
  uuid,
} from 'drizzle-orm/pg-core';

const ts = (name: string) => timestamp(name, { withTimezone: true, mode: 'date' });

/** Raw bytes (PGlite and node-postgres both hand back a Uint8Array/Buffer). */
const bytea = customType<{ data: Buffer; driverData: Uint8Array }>({
  dataType: () => 'bytea',
  fromDriver: (v) => Buffer.from(v.buffer, v.byteOffset, v.byteLength),
});

export const artifacts = pgTable('artifacts', {
  sha256: text('sha256').primaryKey(),
  size: bigint('size', { mode: 'number' }).notNull(),
  kind: text('kind').notNull(),
  name: text('name').notNull(),
  version: text('version').notNull(),
  os: text('os').notNull(),
  arch: text('arch').notNull(),
  signature: text('signature').notNull(),
  keyId: text('key_id').notNull(),
  signedBy: text('signed_by').notNull(),
  command: text('command').notNull().default(''),
  manifest: jsonb('manifest').notNull().default({}),
  complete: boolean('complete').notNull().default(false),
  uploadedBy: text('uploaded_by').notNull(),
  createdAt: ts('created_at').notNull().defaultNow(),
});

export const artifactChunks = pgTable(
  'artifact_chunks',
  {
    sha256: text('sha256').notNull(),
    seq: integer('seq').notNull(),
    data: bytea('data').notNull(),
  },
  (t) => [primaryKey({ columns: [t.sha256, t.seq] })],
);

export const policies = pgTable('policies', {
  id: uuid('id')
    .primaryKey()
    .default(sql`gen_random_uuid()`),
  name: text('name').notNull(),
  revision: integer('revision').notNull(),
  appliedRevision: integer('applied_revision'),
  createdBy: text('created_by').notNull(),
  createdAt: ts('created_at').notNull().defaultNow(),
  updatedAt: ts('updated_at').notNull().defaultNow(),
});

export const policyRevisions = pgTable(
  'policy_revisions',
  {
    policyId: uuid('policy_id').notNull(),
    revision: integer('revision').notNull(),
    spec: jsonb('spec').notNull(),
    createdBy: text('created_by').notNull(),
    createdAt: ts('created_at').notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.policyId, t.revision] })],
);

export const policyRollouts = pgTable('policy_rollouts', {
  id: uuid('id')
    .primaryKey()
    .default(sql`gen_random_uuid()`),
  policyId: uuid('policy_id').notNull(),
  policyName: text('policy_name').notNull(),
  revision: integer('revision').notNull(),
  previousRevision: integer('previous_revision'),
  status: text('status').notNull(),
  batchSize: integer('batch_size').notNull(),
  pauseMs: integer('pause_ms').notNull(),
  maxFailures: integer('max_failures').notNull(),
  waveTimeoutMs: integer('wave_timeout_ms').notNull(),
  currentWave: integer('current_wave').notNull().default(0),
  waveCount: integer('wave_count').notNull().default(0),
  waveStartedAt: ts('wave_started_at'),
  nextWaveAt: ts('next_wave_at'),
  message: text('message').notNull().default(''),
  owner: text('owner'),
  leaseUntil: ts('lease_until'),
  createdBy: text('created_by').notNull(),
  createdAt: ts('created_at').notNull().defaultNow(),
  updatedAt: ts('updated_at').notNull().defaultNow(),
  finishedAt: ts('finished_at'),
});

export const policyRolloutAgents = pgTable(
  'policy_rollout_agents',
  {
    rolloutId: uuid('rollout_id').notNull(),
    agentCode: text('agent_code').notNull(),
    area: text('area').notNull(),
    wave: integer('wave').notNull(),
    status: text('status').notNull(),
    previousRevision: integer('previous_revision'),
    errorCode: text('error_code'),
    errorMessage: text('error_message'),
    startedAt: ts('started_at'),
    finishedAt: ts('finished_at'),
  },
  (t) => [primaryKey({ columns: [t.rolloutId, t.agentCode] })],
);

export const agentAssignments = pgTable('agent_assignments', {
  agentCode: text('agent_code').primaryKey(),
  policyId: uuid('policy_id').notNull(),
  revision: integer('revision').notNull(),
  assignedAt: ts('assigned_at').notNull().defaultNow(),
});

export const DISTRIBUTION_TABLES = {
  artifacts,
  artifact_chunks: artifactChunks,
  policies,
  policy_revisions: policyRevisions,
  policy_rollouts: policyRollouts,
  policy_rollout_agents: policyRolloutAgents,
  agent_assignments: agentAssignments,
} as const;

export type ArtifactRow = typeof artifacts.$inferSelect;
export type PolicyRow = typeof policies.$inferSelect;
export type PolicyRevisionRow = typeof policyRevisions.$inferSelect;
export type PolicyRolloutRow = typeof policyRollouts.$inferSelect;
export type PolicyRolloutAgentRow = typeof policyRolloutAgents.$inferSelect;
export type AgentAssignmentRow = typeof agentAssignments.$inferSelect;
