/**
 * The database schema in code (drizzle pg-core). It must agree with the SQL in migrations.ts —
 * the migrations are what actually creates tables, on PGlite and PostgreSQL alike; a test
 * compares both. Secrets live only in the `*_enc` columns, as SecretBox ciphertext.
 */
import { sql } from 'drizzle-orm';
import {
  bigint,
  boolean,
  doublePrecision,
  integer,
  jsonb,
  pgTable,
  primaryKey,
  text,
  timestamp,
  uuid,
} from 'drizzle-orm/pg-core';

import { DISTRIBUTION_TABLES } from './distribution-schema.js';

const ts = (name: string) => timestamp(name, { withTimezone: true, mode: 'date' });

export const schemaMigrations = pgTable('schema_migrations', {
  version: integer('version').primaryKey(),
  name: text('name').notNull(),
  checksum: text('checksum').notNull(),
  appliedAt: ts('applied_at').notNull().defaultNow(),
});

export const users = pgTable('users', {
  id: uuid('id')
    .primaryKey()
    .default(sql`gen_random_uuid()`),
  username: text('username').notNull().unique(),
  role: text('role').notNull(),
  passwordHash: text('password_hash').notNull(),
  disabled: boolean('disabled').notNull().default(false),
  createdAt: ts('created_at').notNull().defaultNow(),
  updatedAt: ts('updated_at').notNull().defaultNow(),
  lastLoginAt: ts('last_login_at'),
});

export const sessions = pgTable('sessions', {
  /** SHA-256 of the cookie value; the value itself is never stored. */
  idHash: text('id_hash').primaryKey(),
  userId: uuid('user_id')
    .notNull()
    .references(() => users.id, { onDelete: 'cascade' }),
  createdAt: ts('created_at').notNull().defaultNow(),
  expiresAt: ts('expires_at').notNull(),
  lastSeenAt: ts('last_seen_at').notNull().defaultNow(),
  ip: text('ip'),
  userAgent: text('user_agent'),
});

export const apiTokens = pgTable('api_tokens', {
  id: uuid('id')
    .primaryKey()
    .default(sql`gen_random_uuid()`),
  userId: uuid('user_id')
    .notNull()
    .references(() => users.id, { onDelete: 'cascade' }),
  name: text('name').notNull(),
  /** Upper bound on what the token may do; the owner's current role still caps it. */
  role: text('role').notNull(),
  tokenHash: text('token_hash').notNull().unique(),
  prefix: text('prefix').notNull(),
  createdAt: ts('created_at').notNull().defaultNow(),
  expiresAt: ts('expires_at'),
  lastUsedAt: ts('last_used_at'),
  revokedAt: ts('revoked_at'),
  /** Scope: the areas it may change things in; null = every area. */
  areas: jsonb('areas').$type<string[]>(),
});

/** A user's role in one area, where it differs from users.role. */
export const userAreaRoles = pgTable(
  'user_area_roles',
  {
    userId: uuid('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    area: text('area').notNull(),
    role: text('role').notNull(),
  },
  (t) => [primaryKey({ columns: [t.userId, t.area] })],
);

/** Every agent code ever issued, so that a code is never handed out twice (even after a delete). */
export const agentCodes = pgTable('agent_codes', {
  code: text('code').primaryKey(),
  issuedAt: ts('issued_at').notNull().defaultNow(),
});

export const devices = pgTable('devices', {
  id: uuid('id').primaryKey(),
  name: text('name').notNull().unique(),
  ip: text('ip').notNull(),
  functionArea: text('function_area').notNull(),
  status: text('status').notNull().default('new'),
  agentCode: text('agent_code')
    .notNull()
    .unique()
    .references(() => agentCodes.code),
  agentVersion: text('agent_version').notNull().default(''),
  os: text('os').notNull(),
  arch: text('arch').notNull(),
  loginMethod: text('login_method').notNull(),
  loginPort: integer('login_port').notNull(),
  loginUsername: text('login_username').notNull(),
  loginPasswordEnc: text('login_password_enc'),
  loginPrivateKeyEnc: text('login_private_key_enc'),
  loginPassphraseEnc: text('login_passphrase_enc'),
  metadata: jsonb('metadata').$type<Record<string, string>>().notNull().default({}),
  createdAt: ts('created_at').notNull().defaultNow(),
  updatedAt: ts('updated_at').notNull().defaultNow(),
});

export const auditLog = pgTable('audit_log', {
  id: bigint('id', { mode: 'number' }).primaryKey().generatedAlwaysAsIdentity(),
  at: ts('at').notNull().defaultNow(),
  actor: text('actor').notNull(),
  actorId: uuid('actor_id'),
  action: text('action').notNull(),
  targetType: text('target_type'),
  targetId: text('target_id'),
  result: text('result').notNull(),
  details: jsonb('details').$type<Record<string, unknown>>().notNull().default({}),
  ip: text('ip'),
});

/** One row per appearance of a controller in discovery: came_at … went_at (null while present). */
export const controllersHistory = pgTable('controllers_history', {
  id: bigint('id', { mode: 'number' }).primaryKey().generatedAlwaysAsIdentity(),
  area: text('area').notNull(),
  controllerId: text('controller_id').notNull(),
  address: text('address').notNull(),
  version: text('version').notNull().default(''),
  cameAt: ts('came_at').notNull().defaultNow(),
  wentAt: ts('went_at'),
  lastSeenAt: ts('last_seen_at').notNull().defaultNow(),
});

export const batchJobs = pgTable('batch_jobs', {
  id: uuid('id')
    .primaryKey()
    .default(sql`gen_random_uuid()`),
  action: text('action').notNull(),
  requestedBy: text('requested_by').notNull(),
  request: jsonb('request').$type<Record<string, unknown>>().notNull(),
  status: text('status').notNull().default('running'),
  total: integer('total').notNull().default(0),
  success: integer('success').notNull().default(0),
  failed: integer('failed').notNull().default(0),
  createdAt: ts('created_at').notNull().defaultNow(),
  finishedAt: ts('finished_at'),
  durationMs: integer('duration_ms'),
  deadlineAt: ts('deadline_at'),
  /** The replica running it while `leaseExpiresAt` is ahead. */
  owner: text('owner'),
  leaseExpiresAt: ts('lease_expires_at'),
});

/** Details of a result beyond success and error: what the agent reported. */
export interface BatchResultDetails {
  old_pid?: number;
  new_pid?: number;
  agent_duration_ms?: number;
  replayed?: boolean;
  attempts?: number;
}

export const batchTargets = pgTable(
  'batch_targets',
  {
    jobId: uuid('job_id')
      .notNull()
      .references(() => batchJobs.id, { onDelete: 'cascade' }),
    agentCode: text('agent_code').notNull(),
    area: text('area'),
  },
  (t) => [primaryKey({ columns: [t.jobId, t.agentCode] })],
);

export const batchResults = pgTable('batch_results', {
  id: bigint('id', { mode: 'number' }).primaryKey().generatedAlwaysAsIdentity(),
  jobId: uuid('job_id')
    .notNull()
    .references(() => batchJobs.id, { onDelete: 'cascade' }),
  agentCode: text('agent_code').notNull(),
  package: text('package').notNull(),
  area: text('area'),
  success: boolean('success').notNull(),
  error: text('error'),
  message: text('message'),
  reason: text('reason'),
  details: jsonb('details').$type<BatchResultDetails>().notNull().default({}),
});

/** The term of the elected leader of each cluster-wide duty (fencing). */
export const leadership = pgTable('leadership', {
  duty: text('duty').primaryKey(),
  term: bigint('term', { mode: 'number' }).notNull(),
  holder: text('holder').notNull(),
  since: ts('since').notNull().defaultNow(),
});

/** Webhook notifications to deliver (at least once). */
export const outbox = pgTable('outbox', {
  id: bigint('id', { mode: 'number' }).primaryKey().generatedAlwaysAsIdentity(),
  key: text('key').notNull(),
  target: integer('target').notNull(),
  event: text('event').notNull(),
  payload: jsonb('payload').$type<Record<string, unknown>>().notNull(),
  status: text('status').notNull().default('pending'),
  attempts: integer('attempts').notNull().default(0),
  nextAttemptAt: ts('next_attempt_at').notNull().defaultNow(),
  lastError: text('last_error'),
  createdAt: ts('created_at').notNull().defaultNow(),
  deliveredAt: ts('delivered_at'),
});

/** Fixed-window counters shared by every replica. */
export const rateLimits = pgTable('rate_limits', {
  key: text('key').primaryKey(),
  count: integer('count').notNull(),
  resetAt: ts('reset_at').notNull(),
});

/** Agents a leader saw online (what agent_offline alerts on; survives a change of leader). */
export const agentsSeen = pgTable('agents_seen', {
  code: text('code').primaryKey(),
  firstSeen: ts('first_seen').notNull().defaultNow(),
});

/** Plain, non-secret settings (JSON values). */
export const settings = pgTable('settings', {
  key: text('key').primaryKey(),
  value: jsonb('value').$type<unknown>().notNull(),
  updatedAt: ts('updated_at').notNull().defaultNow(),
});

/** Named secrets (per-area agent secret, controller API token, …), SecretBox ciphertext only. */
export const secrets = pgTable(
  'secrets',
  {
    scope: text('scope').notNull(),
    name: text('name').notNull(),
    ciphertext: text('ciphertext').notNull(),
    createdAt: ts('created_at').notNull().defaultNow(),
    updatedAt: ts('updated_at').notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.scope, t.name] })],
);

export const rollouts = pgTable('rollouts', {
  id: uuid('id')
    .primaryKey()
    .default(sql`gen_random_uuid()`),
  type: text('type').notNull(),
  version: text('version').notNull().default(''),
  batchSize: integer('batch_size').notNull(),
  maxFailures: integer('max_failures').notNull().default(0),
  acceptChangedHostKey: boolean('accept_changed_host_key').notNull().default(false),
  status: text('status').notNull().default('running'),
  requestedBy: text('requested_by').notNull(),
  createdAt: ts('created_at').notNull().defaultNow(),
  finishedAt: ts('finished_at'),
});

/** One step of a deployment as stored in deployments.steps. */
export interface StoredStep {
  name: string;
  status: 'pending' | 'running' | 'succeeded' | 'failed' | 'skipped';
  startedAt: string | null;
  finishedAt: string | null;
  message: string | null;
}

export const deployments = pgTable('deployments', {
  id: uuid('id')
    .primaryKey()
    .default(sql`gen_random_uuid()`),
  rolloutId: uuid('rollout_id')
    .notNull()
    .references(() => rollouts.id, { onDelete: 'cascade' }),
  type: text('type').notNull(),
  deviceId: uuid('device_id').references(() => devices.id, { onDelete: 'set null' }),
  deviceName: text('device_name').notNull(),
  area: text('area').notNull(),
  /** Order within the rollout: the order the devices were asked for. */
  position: integer('position').notNull().default(0),
  version: text('version').notNull().default(''),
  status: text('status').notNull().default('queued'),
  attempt: integer('attempt').notNull().default(0),
  retryOf: uuid('retry_of'),
  cancelRequested: boolean('cancel_requested').notNull().default(false),
  steps: jsonb('steps').$type<StoredStep[]>().notNull().default([]),
  error: text('error'),
  errorCode: text('error_code'),
  requestedBy: text('requested_by').notNull(),
  /** The server instance working on it; its lease lapses if that server dies. */
  leaseOwner: text('lease_owner'),
  leaseExpiresAt: ts('lease_expires_at'),
  createdAt: ts('created_at').notNull().defaultNow(),
  startedAt: ts('started_at'),
  finishedAt: ts('finished_at'),
});

export const deploymentLogs = pgTable('deployment_logs', {
  id: bigint('id', { mode: 'number' }).primaryKey().generatedAlwaysAsIdentity(),
  deploymentId: uuid('deployment_id')
    .notNull()
    .references(() => deployments.id, { onDelete: 'cascade' }),
  at: ts('at').notNull().defaultNow(),
  level: text('level').notNull(),
  step: text('step'),
  message: text('message').notNull(),
});

/** SSH host key fingerprints recorded on first use (`host:port` → `SHA256:…`). */
export const hostKeys = pgTable('host_keys', {
  hostPort: text('host_port').primaryKey(),
  fingerprint: text('fingerprint').notNull(),
  recordedAt: ts('recorded_at').notNull().defaultNow(),
  updatedAt: ts('updated_at').notNull().defaultNow(),
});

/** Alerts of the alert engine; at most one firing row per subject (partial unique index). */
export const alerts = pgTable('alerts', {
  id: uuid('id')
    .primaryKey()
    .default(sql`gen_random_uuid()`),
  kind: text('kind').notNull(),
  severity: text('severity').notNull(),
  /** `controller:<area>/<id>`, `agent:<code>`, `package:<code>/<name>`, `deployment:<id>`. */
  subject: text('subject').notNull(),
  area: text('area').notNull().default(''),
  title: text('title').notNull(),
  message: text('message').notNull().default(''),
  labels: jsonb('labels').$type<Record<string, string>>().notNull().default({}),
  status: text('status').notNull().default('firing'),
  firstSeen: ts('first_seen').notNull().defaultNow(),
  lastSeen: ts('last_seen').notNull().defaultNow(),
  resolvedAt: ts('resolved_at'),
  acknowledgedBy: text('acknowledged_by'),
  acknowledgedAt: ts('acknowledged_at'),
});

/** Silences: alerts they match notify nobody until expires_at. Null matchers match anything. */
export const alertSilences = pgTable('alert_silences', {
  id: uuid('id')
    .primaryKey()
    .default(sql`gen_random_uuid()`),
  kind: text('kind'),
  area: text('area'),
  agentCode: text('agent_code'),
  comment: text('comment').notNull().default(''),
  createdBy: text('created_by').notNull(),
  createdAt: ts('created_at').notNull().defaultNow(),
  expiresAt: ts('expires_at').notNull(),
});

/** One sample of an agent's system metrics per interval. */
export const agentMetrics = pgTable(
  'agent_metrics',
  {
    agentCode: text('agent_code').notNull(),
    at: ts('at').notNull(),
    cpuPercent: doublePrecision('cpu_percent').notNull(),
    memoryUsedBytes: doublePrecision('memory_used_bytes').notNull(),
    memoryTotalBytes: doublePrecision('memory_total_bytes').notNull(),
    load1: doublePrecision('load1').notNull(),
    rxBytes: doublePrecision('rx_bytes').notNull(),
    txBytes: doublePrecision('tx_bytes').notNull(),
  },
  (t) => [primaryKey({ columns: [t.agentCode, t.at] })],
);

/** One sample of a package's process metrics per interval. */
export const packageMetrics = pgTable(
  'package_metrics',
  {
    agentCode: text('agent_code').notNull(),
    package: text('package').notNull(),
    at: ts('at').notNull(),
    cpuPercent: doublePrecision('cpu_percent').notNull(),
    rssBytes: doublePrecision('rss_bytes').notNull(),
    restarts: integer('restarts').notNull(),
    running: boolean('running').notNull(),
  },
  (t) => [primaryKey({ columns: [t.agentCode, t.package, t.at] })],
);

export const ALL_TABLES = {
  schema_migrations: schemaMigrations,
  users,
  sessions,
  api_tokens: apiTokens,
  agent_codes: agentCodes,
  devices,
  audit_log: auditLog,
  controllers_history: controllersHistory,
  batch_jobs: batchJobs,
  batch_results: batchResults,
  batch_targets: batchTargets,
  leadership,
  outbox,
  rate_limits: rateLimits,
  agents_seen: agentsSeen,
  settings,
  secrets,
  rollouts,
  deployments,
  deployment_logs: deploymentLogs,
  host_keys: hostKeys,
  alerts,
  user_area_roles: userAreaRoles,
  alert_silences: alertSilences,
  agent_metrics: agentMetrics,
  package_metrics: packageMetrics,
  ...DISTRIBUTION_TABLES,
} as const;

export type UserRow = typeof users.$inferSelect;
export type SessionRow = typeof sessions.$inferSelect;
export type ApiTokenRow = typeof apiTokens.$inferSelect;
export type DeviceRow = typeof devices.$inferSelect;
export type NewDeviceRow = typeof devices.$inferInsert;
export type AuditRow = typeof auditLog.$inferSelect;
export type ControllerHistoryRow = typeof controllersHistory.$inferSelect;
export type BatchJobRow = typeof batchJobs.$inferSelect;
export type BatchResultRow = typeof batchResults.$inferSelect;
export type BatchTargetRow = typeof batchTargets.$inferSelect;
export type OutboxRow = typeof outbox.$inferSelect;
export type RolloutRow = typeof rollouts.$inferSelect;
export type DeploymentRow = typeof deployments.$inferSelect;
export type DeploymentLogRow = typeof deploymentLogs.$inferSelect;
export type AlertRow = typeof alerts.$inferSelect;
export type SilenceRow = typeof alertSilences.$inferSelect;
export type AgentMetricsRow = typeof agentMetrics.$inferSelect;
export type PackageMetricsRow = typeof packageMetrics.$inferSelect;
