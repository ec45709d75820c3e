/**
 * The one set of SQL migrations, for PGlite and PostgreSQL alike. Each migration is a list of
 * statements (PGlite's extended protocol runs one statement per query). All pending migrations
 * run in one transaction under an advisory lock, so concurrent starts cannot apply one twice and
 * a failure leaves the schema as it was. Applied migrations are recorded with a checksum; editing
 * an applied migration is refused — add a new one instead.
 */
import { createHash } from 'node:crypto';
import { sql } from 'drizzle-orm';
import { OpsplaneError } from '@opsplane/models';
import { queryRows, type Database } from './database.js';

export interface Migration {
  version: number;
  name: string;
  statements: readonly string[];
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'initial',
    statements: [
      `CREATE TABLE users (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        username text NOT NULL UNIQUE,
        role text NOT NULL CHECK (role IN ('viewer', 'operator', 'admin')),
        password_hash text NOT NULL,
        disabled boolean NOT NULL DEFAULT false,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        last_login_at timestamptz
      )`,
      `CREATE TABLE sessions (
        id_hash text PRIMARY KEY,
        user_id uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        created_at timestamptz NOT NULL DEFAULT now(),
        expires_at timestamptz NOT NULL,
        last_seen_at timestamptz NOT NULL DEFAULT now(),
        ip text,
        user_agent text
      )`,
      `CREATE INDEX sessions_user_idx ON sessions (user_id)`,
      `CREATE INDEX sessions_expires_idx ON sessions (expires_at)`,
      `CREATE TABLE api_tokens (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        user_id uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        name text NOT NULL,
        role text NOT NULL CHECK (role IN ('viewer', 'operator', 'admin')),
        token_hash text NOT NULL UNIQUE,
        prefix text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        expires_at timestamptz,
        last_used_at timestamptz,
        revoked_at timestamptz
      )`,
      `CREATE INDEX api_tokens_user_idx ON api_tokens (user_id)`,
      `CREATE TABLE agent_codes (
        code text PRIMARY KEY,
        issued_at timestamptz NOT NULL DEFAULT now()
      )`,
      `CREATE TABLE devices (
        id uuid PRIMARY KEY,
        name text NOT NULL UNIQUE,
        ip text NOT NULL,
        function_area text NOT NULL,
        status text NOT NULL DEFAULT 'new'
          CHECK (status IN ('new', 'deploying', 'online', 'offline', 'failed', 'uninstalled')),
        agent_code text NOT NULL UNIQUE REFERENCES agent_codes(code),
        agent_version text NOT NULL DEFAULT '',
        os text NOT NULL CHECK (os IN ('linux', 'windows')),
        arch text NOT NULL CHECK (arch IN ('amd64', 'arm64')),
        login_method text NOT NULL CHECK (login_method IN ('ssh', 'winrm')),
        login_port integer NOT NULL CHECK (login_port BETWEEN 1 AND 65535),
        login_username text NOT NULL,
        login_password_enc text,
        login_private_key_enc text,
        login_passphrase_enc text,
        metadata jsonb NOT NULL DEFAULT '{}'::jsonb,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now()
      )`,
      `CREATE INDEX devices_area_idx ON devices (function_area)`,
      `CREATE INDEX devices_status_idx ON devices (status)`,
      `CREATE INDEX devices_created_idx ON devices (created_at)`,
      `CREATE TABLE audit_log (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        at timestamptz NOT NULL DEFAULT now(),
        actor text NOT NULL,
        actor_id uuid,
        action text NOT NULL,
        target_type text,
        target_id text,
        result text NOT NULL CHECK (result IN ('success', 'failure')),
        details jsonb NOT NULL DEFAULT '{}'::jsonb,
        ip text
      )`,
      `CREATE INDEX audit_log_at_idx ON audit_log (at)`,
      `CREATE INDEX audit_log_actor_idx ON audit_log (actor)`,
      `CREATE INDEX audit_log_action_idx ON audit_log (action)`,
      `CREATE INDEX audit_log_target_idx ON audit_log (target_type, target_id)`,
      `CREATE TABLE controllers_history (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        area text NOT NULL,
        controller_id text NOT NULL,
        address text NOT NULL,
        version text NOT NULL DEFAULT '',
        came_at timestamptz NOT NULL DEFAULT now(),
        went_at timestamptz,
        last_seen_at timestamptz NOT NULL DEFAULT now()
      )`,
      `CREATE INDEX controllers_history_ctrl_idx ON controllers_history (area, controller_id, came_at)`,
      `CREATE UNIQUE INDEX controllers_history_open_idx ON controllers_history (area, controller_id) WHERE went_at IS NULL`,
      `CREATE TABLE batch_jobs (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        action text NOT NULL,
        requested_by text NOT NULL,
        request jsonb NOT NULL,
        status text NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'done', 'failed')),
        total integer NOT NULL DEFAULT 0,
        success integer NOT NULL DEFAULT 0,
        failed integer NOT NULL DEFAULT 0,
        created_at timestamptz NOT NULL DEFAULT now(),
        finished_at timestamptz,
        duration_ms integer
      )`,
      `CREATE INDEX batch_jobs_created_idx ON batch_jobs (created_at)`,
      `CREATE TABLE batch_results (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        job_id uuid NOT NULL REFERENCES batch_jobs(id) ON DELETE CASCADE,
        agent_code text NOT NULL,
        package text NOT NULL,
        area text,
        success boolean NOT NULL,
        error text,
        message text
      )`,
      `CREATE INDEX batch_results_job_idx ON batch_results (job_id)`,
      `CREATE TABLE settings (
        key text PRIMARY KEY,
        value jsonb NOT NULL,
        updated_at timestamptz NOT NULL DEFAULT now()
      )`,
      `CREATE TABLE secrets (
        scope text NOT NULL,
        name text NOT NULL,
        ciphertext text NOT NULL CHECK (ciphertext LIKE 'v1:%'),
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (scope, name)
      )`,
    ],
  },
  {
    version: 2,
    name: 'batch_jobs_interrupted',
    statements: [
      // Jobs cut off by a server crash are marked 'interrupted' at the next start.
      `ALTER TABLE batch_jobs DROP CONSTRAINT batch_jobs_status_check`,
      `ALTER TABLE batch_jobs ADD CONSTRAINT batch_jobs_status_check
        CHECK (status IN ('running', 'done', 'failed', 'interrupted'))`,
    ],
  },
  {
    version: 3,
    name: 'deployments',
    statements: [
      `CREATE TABLE rollouts (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        type text NOT NULL CHECK (type IN ('install', 'upgrade', 'uninstall', 'restart')),
        version text NOT NULL DEFAULT '',
        batch_size integer NOT NULL CHECK (batch_size >= 1),
        max_failures integer NOT NULL DEFAULT 0 CHECK (max_failures >= 0),
        accept_changed_host_key boolean NOT NULL DEFAULT false,
        status text NOT NULL DEFAULT 'running'
          CHECK (status IN ('running', 'succeeded', 'failed', 'stopped', 'cancelled')),
        requested_by text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        finished_at timestamptz
      )`,
      `CREATE INDEX rollouts_created_idx ON rollouts (created_at)`,
      `CREATE TABLE deployments (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        rollout_id uuid NOT NULL REFERENCES rollouts(id) ON DELETE CASCADE,
        type text NOT NULL CHECK (type IN ('install', 'upgrade', 'uninstall', 'restart')),
        device_id uuid REFERENCES devices(id) ON DELETE SET NULL,
        device_name text NOT NULL,
        area text NOT NULL,
        position integer NOT NULL DEFAULT 0,
        version text NOT NULL DEFAULT '',
        status text NOT NULL DEFAULT 'queued'
          CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
        attempt integer NOT NULL DEFAULT 0,
        retry_of uuid REFERENCES deployments(id) ON DELETE SET NULL,
        cancel_requested boolean NOT NULL DEFAULT false,
        steps jsonb NOT NULL DEFAULT '[]'::jsonb,
        error text,
        error_code text,
        requested_by text NOT NULL,
        lease_owner text,
        lease_expires_at timestamptz,
        created_at timestamptz NOT NULL DEFAULT now(),
        started_at timestamptz,
        finished_at timestamptz
      )`,
      `CREATE INDEX deployments_rollout_idx ON deployments (rollout_id)`,
      `CREATE INDEX deployments_device_idx ON deployments (device_id, created_at)`,
      `CREATE INDEX deployments_created_idx ON deployments (created_at)`,
      `CREATE INDEX deployments_active_idx ON deployments (status) WHERE status IN ('queued', 'running')`,
      // At most one unfinished deployment per device: two would fight over the same host.
      `CREATE UNIQUE INDEX deployments_one_active_per_device
        ON deployments (device_id) WHERE status IN ('queued', 'running')`,
      `CREATE TABLE deployment_logs (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        deployment_id uuid NOT NULL REFERENCES deployments(id) ON DELETE CASCADE,
        at timestamptz NOT NULL DEFAULT now(),
        level text NOT NULL CHECK (level IN ('info', 'warn', 'error')),
        step text,
        message text NOT NULL
      )`,
      `CREATE INDEX deployment_logs_deployment_idx ON deployment_logs (deployment_id, id)`,
      `CREATE TABLE host_keys (
        host_port text PRIMARY KEY,
        fingerprint text NOT NULL,
        recorded_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now()
      )`,
    ],
  },
  {
    version: 4,
    name: 'alerts',
    statements: [
      `CREATE TABLE alerts (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        kind text NOT NULL
          CHECK (kind IN ('controller_offline', 'agent_offline', 'package_unhealthy', 'deployment_failed')),
        severity text NOT NULL CHECK (severity IN ('critical', 'warning')),
        subject text NOT NULL,
        area text NOT NULL DEFAULT '',
        title text NOT NULL,
        message text NOT NULL DEFAULT '',
        labels jsonb NOT NULL DEFAULT '{}'::jsonb,
        status text NOT NULL DEFAULT 'firing' CHECK (status IN ('firing', 'resolved')),
        first_seen timestamptz NOT NULL DEFAULT now(),
        last_seen timestamptz NOT NULL DEFAULT now(),
        resolved_at timestamptz,
        acknowledged_by text,
        acknowledged_at timestamptz
      )`,
      // One firing alert per subject: what makes firing idempotent, also across servers sharing
      // a PostgreSQL database (the second insert does nothing, so only one server notifies).
      `CREATE UNIQUE INDEX alerts_one_firing_per_subject ON alerts (subject) WHERE status = 'firing'`,
      `CREATE INDEX alerts_subject_idx ON alerts (subject)`,
      `CREATE INDEX alerts_first_seen_idx ON alerts (first_seen)`,
      `CREATE INDEX alerts_status_idx ON alerts (status, kind)`,
      // The deployment_failed rule looks for recent failures on every evaluation.
      `CREATE INDEX deployments_failed_idx ON deployments (finished_at) WHERE status = 'failed'`,
    ],
  },
  {
    version: 5,
    name: 'batch_operations',
    statements: [
      // The agents a batch addresses, written with the job: what a restarted server asks the
      // agents about (by the job's operation id) when the job was cut off.
      `CREATE TABLE batch_targets (
        job_id uuid NOT NULL REFERENCES batch_jobs(id) ON DELETE CASCADE,
        agent_code text NOT NULL,
        area text,
        PRIMARY KEY (job_id, agent_code)
      )`,
      `ALTER TABLE batch_jobs ADD COLUMN deadline_at timestamptz`,
      `ALTER TABLE batch_results ADD COLUMN reason text`,
      // old/new pid, the agent's duration, replayed, attempts.
      `ALTER TABLE batch_results ADD COLUMN details jsonb NOT NULL DEFAULT '{}'::jsonb`,
      // Results arrive as they become final (and again from reconciliation): one per pair.
      `CREATE UNIQUE INDEX batch_results_one_per_pair ON batch_results (job_id, agent_code, package)`,
    ],
  },
  {
    version: 6,
    name: 'replicas',
    statements: [
      // A running batch is owned by one server replica while its lease is renewed; a lapsed
      // lease lets another replica take the job over (and ask its agents what they did).
      `ALTER TABLE batch_jobs ADD COLUMN owner text`,
      `ALTER TABLE batch_jobs ADD COLUMN lease_expires_at timestamptz`,
      `CREATE INDEX batch_jobs_running_idx ON batch_jobs (lease_expires_at) WHERE status = 'running'`,
      // Fencing of cluster-wide duties (alert evaluation, device status, controller history):
      // the elected leader's term; a write of an older term is refused.
      `CREATE TABLE leadership (
        duty text PRIMARY KEY,
        term bigint NOT NULL,
        holder text NOT NULL,
        since timestamptz NOT NULL DEFAULT now()
      )`,
      // Webhook notifications, delivered at least once: written with the alert change, sent by
      // the leader, retried with backoff; the key is the receivers' idempotency key.
      `CREATE TABLE outbox (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        key text NOT NULL,
        target integer NOT NULL,
        event text NOT NULL,
        payload jsonb NOT NULL,
        status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
        attempts integer NOT NULL DEFAULT 0,
        next_attempt_at timestamptz NOT NULL DEFAULT now(),
        last_error text,
        created_at timestamptz NOT NULL DEFAULT now(),
        delivered_at timestamptz,
        UNIQUE (key, target)
      )`,
      `CREATE INDEX outbox_due_idx ON outbox (next_attempt_at) WHERE status = 'pending'`,
      // Fixed-window counters shared by every replica (the login rate limit).
      `CREATE TABLE rate_limits (
        key text PRIMARY KEY,
        count integer NOT NULL,
        reset_at timestamptz NOT NULL
      )`,
      // Agents some leader saw online: an agent gone offline alerts only if it was ever seen
      // online, and a newly elected leader must know that too.
      `CREATE TABLE agents_seen (
        code text PRIMARY KEY,
        first_seen timestamptz NOT NULL DEFAULT now()
      )`,
    ],
  },
  {
    version: 7,
    name: 'daily_operations',
    statements: [
      // Roles per area: where a user's role differs from their global one (users.role).
      `CREATE TABLE user_area_roles (
        user_id uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        area text NOT NULL,
        role text NOT NULL CHECK (role IN ('viewer', 'operator', 'admin')),
        PRIMARY KEY (user_id, area)
      )`,
      // A token's scope: the areas it may change things in (NULL = every area).
      `ALTER TABLE api_tokens ADD COLUMN areas jsonb`,
      `CREATE TABLE alert_silences (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        kind text,
        area text,
        agent_code text,
        comment text NOT NULL DEFAULT '',
        created_by text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        expires_at timestamptz NOT NULL
      )`,
      `CREATE INDEX alert_silences_expires_idx ON alert_silences (expires_at)`,
      // Metrics over time: one sample per agent (and package) per interval, kept for the retention.
      `CREATE TABLE agent_metrics (
        agent_code text NOT NULL,
        at timestamptz NOT NULL,
        cpu_percent double precision NOT NULL,
        memory_used_bytes double precision NOT NULL,
        memory_total_bytes double precision NOT NULL,
        load1 double precision NOT NULL,
        rx_bytes double precision NOT NULL,
        tx_bytes double precision NOT NULL,
        PRIMARY KEY (agent_code, at)
      )`,
      `CREATE INDEX agent_metrics_at_idx ON agent_metrics (at)`,
      `CREATE TABLE package_metrics (
        agent_code text NOT NULL,
        package text NOT NULL,
        at timestamptz NOT NULL,
        cpu_percent double precision NOT NULL,
        rss_bytes double precision NOT NULL,
        restarts integer NOT NULL,
        running boolean NOT NULL,
        PRIMARY KEY (agent_code, package, at)
      )`,
      `CREATE INDEX package_metrics_at_idx ON package_metrics (at)`,
    ],
  },
  {
    version: 8,
    name: 'distribution',
    statements: [
      // Artifacts: content-addressed, the bytes in the database (so every replica serves them)
      // as chunks of ARTIFACT_CHUNK_BYTES; complete once every chunk is written.
      `CREATE TABLE artifacts (
        sha256 text PRIMARY KEY,
        size bigint NOT NULL,
        kind text NOT NULL CHECK (kind IN ('package', 'agent')),
        name text NOT NULL,
        version text NOT NULL,
        os text NOT NULL,
        arch text NOT NULL,
        signature text NOT NULL,
        key_id text NOT NULL,
        signed_by text NOT NULL CHECK (signed_by IN ('server', 'uploader')),
        command text NOT NULL DEFAULT '',
        manifest jsonb NOT NULL DEFAULT '{}'::jsonb,
        complete boolean NOT NULL DEFAULT false,
        uploaded_by text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now()
      )`,
      `CREATE UNIQUE INDEX artifacts_identity_idx ON artifacts (kind, name, version, os, arch)`,
      `CREATE TABLE artifact_chunks (
        sha256 text NOT NULL REFERENCES artifacts(sha256) ON DELETE CASCADE,
        seq integer NOT NULL,
        data bytea NOT NULL,
        PRIMARY KEY (sha256, seq)
      )`,
      `CREATE TABLE policies (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        name text NOT NULL UNIQUE,
        revision integer NOT NULL,
        applied_revision integer,
        created_by text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now()
      )`,
      `CREATE TABLE policy_revisions (
        policy_id uuid NOT NULL REFERENCES policies(id) ON DELETE CASCADE,
        revision integer NOT NULL,
        spec jsonb NOT NULL,
        created_by text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (policy_id, revision)
      )`,
      `CREATE TABLE policy_rollouts (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        policy_id uuid NOT NULL REFERENCES policies(id) ON DELETE CASCADE,
        policy_name text NOT NULL,
        revision integer NOT NULL,
        previous_revision integer,
        status text NOT NULL CHECK (status IN ('running', 'paused', 'succeeded', 'halted', 'cancelled')),
        batch_size integer NOT NULL,
        pause_ms integer NOT NULL,
        max_failures integer NOT NULL,
        wave_timeout_ms integer NOT NULL,
        current_wave integer NOT NULL DEFAULT 0,
        wave_count integer NOT NULL DEFAULT 0,
        wave_started_at timestamptz,
        next_wave_at timestamptz,
        message text NOT NULL DEFAULT '',
        owner text,
        lease_until timestamptz,
        created_by text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        finished_at timestamptz
      )`,
      // One running (or paused) rollout per policy.
      `CREATE UNIQUE INDEX policy_rollouts_active_idx ON policy_rollouts (policy_id) WHERE status IN ('running', 'paused')`,
      `CREATE INDEX policy_rollouts_created_idx ON policy_rollouts (created_at)`,
      `CREATE TABLE policy_rollout_agents (
        rollout_id uuid NOT NULL REFERENCES policy_rollouts(id) ON DELETE CASCADE,
        agent_code text NOT NULL,
        area text NOT NULL,
        wave integer NOT NULL,
        status text NOT NULL,
        previous_revision integer,
        error_code text,
        error_message text,
        started_at timestamptz,
        finished_at timestamptz,
        PRIMARY KEY (rollout_id, agent_code)
      )`,
      // What each agent was last handed (by the convergence loop or a rollout).
      `CREATE TABLE agent_assignments (
        agent_code text PRIMARY KEY,
        policy_id uuid NOT NULL REFERENCES policies(id) ON DELETE CASCADE,
        revision integer NOT NULL,
        assigned_at timestamptz NOT NULL DEFAULT now()
      )`,
    ],
  },
];

export function migrationChecksum(m: Migration): string {
  return createHash('sha256').update(m.statements.join(';\n')).digest('hex');
}

export class MigrationError extends OpsplaneError {
  constructor(message: string) {
    super('internal', message);
  }
}

// Arbitrary constant shared by every Opsplane server that migrates this database.
const MIGRATION_LOCK_ID = 0x6f707370;

export interface MigrationReport {
  applied: number[];
  current: number;
}

/** Brings the schema to the latest version; safe to call on every start and concurrently. */
export async function migrate(
  db: Database,
  migrations: readonly Migration[] = MIGRATIONS,
): Promise<MigrationReport> {
  return db.transaction(async (tx) => {
    await tx.execute(sql`SELECT pg_advisory_xact_lock(${MIGRATION_LOCK_ID})`);
    await tx.execute(
      sql.raw(`CREATE TABLE IF NOT EXISTS schema_migrations (
        version integer PRIMARY KEY,
        name text NOT NULL,
        checksum text NOT NULL,
        applied_at timestamptz NOT NULL DEFAULT now()
      )`),
    );
    const rows = await queryRows<{ version: number; checksum: string }>(
      tx,
      sql`SELECT version, checksum FROM schema_migrations ORDER BY version`,
    );
    const done = new Map(rows.map((r) => [Number(r.version), r.checksum]));
    const known = new Set(migrations.map((m) => m.version));
    const unknown = [...done.keys()].filter((v) => !known.has(v));
    if (unknown.length > 0) {
      throw new MigrationError(
        `database has migrations ${unknown.join(', ')} that this server does not know; it was written by a newer version`,
      );
    }
    const applied: number[] = [];
    for (const m of [...migrations].sort((a, b) => a.version - b.version)) {
      const checksum = migrationChecksum(m);
      const have = done.get(m.version);
      if (have !== undefined) {
        if (have !== checksum) {
          throw new MigrationError(`migration ${m.version} (${m.name}) was changed after it was applied`);
        }
        continue;
      }
      for (const stmt of m.statements) await tx.execute(sql.raw(stmt));
      await tx.execute(
        sql`INSERT INTO schema_migrations (version, name, checksum) VALUES (${m.version}, ${m.name}, ${checksum})`,
      );
      applied.push(m.version);
    }
    const current = Math.max(0, ...migrations.map((m) => m.version));
    return { applied, current };
  });
}
