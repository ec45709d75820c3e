/**
 * Rollouts, deployments and their logs: the durable deployment queue. A deployment is claimed by
 * one server instance under a lease (lease_owner, lease_expires_at) that the worker renews while
 * it runs; a deployment whose lease lapsed (its server died) is claimable again, so nothing is
 * lost or left `running`. Claims are compare-and-set updates, so two servers sharing a
 * PostgreSQL database never run the same deployment twice.
 */
import { and, asc, count, desc, eq, gt, inArray, sql, type SQL } from 'drizzle-orm';
import { OpsplaneError } from '@opsplane/models';
import { queryRows, type Database } from './database.js';
import {
  deploymentLogs,
  deployments,
  rollouts,
  type DeploymentLogRow,
  type DeploymentRow,
  type RolloutRow,
  type StoredStep,
} from './schema.js';

export class DeploymentInProgressError extends OpsplaneError {
  constructor(devices: readonly string[]) {
    super(
      'deployment_in_progress',
      `a deployment is already queued or running for ${devices.length === 1 ? 'device' : 'devices'} ` +
        `${devices.slice(0, 10).join(', ')}${devices.length > 10 ? ', …' : ''}; cancel it or wait for it to finish`,
      { status: 409, details: { devices } },
    );
  }
}

export interface NewRollout {
  type: string;
  version: string;
  batchSize: number;
  maxFailures: number;
  acceptChangedHostKey: boolean;
  requestedBy: string;
  devices: readonly { id: string; name: string; area: string }[];
  steps: readonly string[];
  retryOf?: string;
}

export interface ClaimOptions {
  owner: string;
  leaseMs: number;
  /** How many to claim at most (free worker slots). */
  limit: number;
}

const ACTIVE = ['queued', 'running'] as const;

const pendingSteps = (names: readonly string[]): StoredStep[] =>
  names.map((name) => ({ name, status: 'pending', startedAt: null, finishedAt: null, message: null }));

export class DeploymentsRepo {
  constructor(private readonly db: Database) {}

  /** Creates the rollout and one queued deployment per device, or nothing (409) if any is busy. */
  async createRollout(r: NewRollout): Promise<{ rollout: RolloutRow; deployments: DeploymentRow[] }> {
    return this.db.transaction(async (tx) => {
      const ids = r.devices.map((d) => d.id);
      if (ids.length > 0) {
        const busy = await tx
          .select({ name: deployments.deviceName })
          .from(deployments)
          .where(and(inArray(deployments.deviceId, ids), inArray(deployments.status, [...ACTIVE])));
        if (busy.length > 0) throw new DeploymentInProgressError(busy.map((b) => b.name));
      }
      const [rollout] = await tx
        .insert(rollouts)
        .values({
          type: r.type,
          version: r.version,
          batchSize: r.batchSize,
          maxFailures: r.maxFailures,
          acceptChangedHostKey: r.acceptChangedHostKey,
          requestedBy: r.requestedBy,
          ...(r.devices.length === 0 ? { status: 'succeeded', finishedAt: sql`now()` } : {}),
        })
        .returning();
      const rows: DeploymentRow[] = [];
      for (let i = 0; i < r.devices.length; i += 500) {
        const chunk = r.devices.slice(i, i + 500);
        rows.push(
          ...(await tx
            .insert(deployments)
            .values(
              chunk.map((d, j) => ({
                rolloutId: rollout!.id,
                position: i + j,
                type: r.type,
                deviceId: d.id,
                deviceName: d.name,
                area: d.area,
                version: r.version,
                steps: pendingSteps(r.steps),
                requestedBy: r.requestedBy,
                retryOf: r.retryOf ?? null,
              })),
            )
            .returning()),
        );
      }
      return { rollout: rollout!, deployments: rows };
    });
  }

  /**
   * Claims up to `limit` deployments: queued ones, or running ones whose lease lapsed, oldest
   * first, keeping each rollout within its batch_size of running deployments.
   */
  async claim(o: ClaimOptions): Promise<DeploymentRow[]> {
    if (o.limit <= 0) return [];
    // Each rollout offers only as many as it has free slots, in request order, so a big rollout
    // at its batch_size never hides the deployments of the rollouts behind it.
    const candidates = await queryRows<{ id: string }>(
      this.db,
      sql`WITH running AS (
            SELECT rollout_id, count(*) AS n FROM deployments
            WHERE status = 'running' AND lease_expires_at >= now() GROUP BY rollout_id
          ), offered AS (
            SELECT d.id, d.created_at, d.position, r.batch_size - coalesce(run.n, 0) AS free,
                   row_number() OVER (PARTITION BY d.rollout_id ORDER BY d.created_at, d.position, d.id) AS rn
            FROM deployments d
            JOIN rollouts r ON r.id = d.rollout_id
            LEFT JOIN running run ON run.rollout_id = d.rollout_id
            WHERE d.status = 'queued' OR (d.status = 'running' AND d.lease_expires_at < now())
          )
          SELECT id FROM offered WHERE rn <= free ORDER BY created_at, position, id LIMIT ${o.limit}`,
    );
    const claimed: DeploymentRow[] = [];
    for (const c of candidates) {
      // Compare-and-set: another server may have taken it since.
      const [row] = await this.db
        .update(deployments)
        .set({
          status: 'running',
          leaseOwner: o.owner,
          leaseExpiresAt: sql`now() + make_interval(secs => ${o.leaseMs / 1000})`,
          attempt: sql`${deployments.attempt} + 1`,
          startedAt: sql`coalesce(${deployments.startedAt}, now())`,
        })
        .where(
          and(
            eq(deployments.id, c.id),
            sql`(${deployments.status} = 'queued' OR (${deployments.status} = 'running' AND ${deployments.leaseExpiresAt} < now()))`,
          ),
        )
        .returning();
      if (row) claimed.push(row);
    }
    return claimed;
  }

  /** Extends the leases this owner holds; returns the ids it still holds (others were taken over). */
  async renewLeases(owner: string, ids: readonly string[], leaseMs: number): Promise<Set<string>> {
    if (ids.length === 0) return new Set();
    const rows = await this.db
      .update(deployments)
      .set({ leaseExpiresAt: sql`now() + make_interval(secs => ${leaseMs / 1000})` })
      .where(
        and(
          inArray(deployments.id, [...ids]),
          eq(deployments.leaseOwner, owner),
          eq(deployments.status, 'running'),
        ),
      )
      .returning({ id: deployments.id });
    return new Set(rows.map((r) => r.id));
  }

  /** Hands running deployments back (graceful stop): claimable again at once. */
  async releaseLeases(owner: string, ids: readonly string[]): Promise<void> {
    if (ids.length === 0) return;
    await this.db
      .update(deployments)
      .set({ leaseExpiresAt: sql`now() - interval '1 second'` })
      .where(
        and(
          inArray(deployments.id, [...ids]),
          eq(deployments.leaseOwner, owner),
          eq(deployments.status, 'running'),
        ),
      );
  }

  /**
   * Lets every running deployment be claimed again at once. Only right for a database no other
   * server can be using (embedded PGlite is opened by one process at a time).
   */
  async expireAllLeases(): Promise<number> {
    const rows = await this.db
      .update(deployments)
      .set({ leaseExpiresAt: sql`now() - interval '1 second'` })
      .where(eq(deployments.status, 'running'))
      .returning({ id: deployments.id });
    return rows.length;
  }

  async setSteps(id: string, steps: readonly StoredStep[]): Promise<void> {
    await this.db
      .update(deployments)
      .set({ steps: [...steps] })
      .where(eq(deployments.id, id));
  }

  async appendLog(
    id: string,
    level: 'info' | 'warn' | 'error',
    step: string | null,
    message: string,
  ): Promise<DeploymentLogRow> {
    const [row] = await this.db
      .insert(deploymentLogs)
      .values({ deploymentId: id, level, step, message: message.slice(0, 8192) })
      .returning();
    return row!;
  }

  /** Ends a deployment this owner holds. Returns undefined if it no longer holds it. */
  async finish(
    id: string,
    owner: string,
    status: 'succeeded' | 'failed' | 'cancelled',
    error?: { message: string; code: string },
  ): Promise<DeploymentRow | undefined> {
    const [row] = await this.db
      .update(deployments)
      .set({
        status,
        error: error?.message ?? null,
        errorCode: error?.code ?? null,
        finishedAt: sql`now()`,
        leaseOwner: null,
        leaseExpiresAt: null,
      })
      .where(
        and(eq(deployments.id, id), eq(deployments.leaseOwner, owner), eq(deployments.status, 'running')),
      )
      .returning();
    return row;
  }

  /** Queued → cancelled at once; running → cancel_requested (its worker stops between steps). */
  async requestCancel(where: SQL, reason: string): Promise<DeploymentRow[]> {
    return this.db.transaction(async (tx) => {
      const queued = await tx
        .update(deployments)
        .set({
          status: 'cancelled',
          cancelRequested: true,
          error: reason,
          errorCode: 'cancelled',
          finishedAt: sql`now()`,
        })
        .where(and(where, eq(deployments.status, 'queued')))
        .returning();
      const running = await tx
        .update(deployments)
        .set({ cancelRequested: true })
        .where(and(where, eq(deployments.status, 'running')))
        .returning();
      return [...queued, ...running];
    });
  }

  cancelDeployment(id: string, reason: string): Promise<DeploymentRow[]> {
    return this.requestCancel(eq(deployments.id, id), reason);
  }

  async cancelRollout(rolloutId: string, reason: string, status: 'cancelled' | 'stopped'): Promise<void> {
    await this.requestCancel(eq(deployments.rolloutId, rolloutId), reason);
    await this.db
      .update(rollouts)
      .set({ status })
      .where(and(eq(rollouts.id, rolloutId), eq(rollouts.status, 'running')));
  }

  async isCancelRequested(id: string): Promise<boolean> {
    const [row] = await this.db
      .select({ c: deployments.cancelRequested })
      .from(deployments)
      .where(eq(deployments.id, id));
    return row?.c ?? false;
  }

  async get(id: string): Promise<DeploymentRow | undefined> {
    const [row] = await this.db.select().from(deployments).where(eq(deployments.id, id));
    return row;
  }

  async logs(id: string, afterSeq = 0, limit = 10_000): Promise<DeploymentLogRow[]> {
    return this.db
      .select()
      .from(deploymentLogs)
      .where(and(eq(deploymentLogs.deploymentId, id), gt(deploymentLogs.id, afterSeq)))
      .orderBy(asc(deploymentLogs.id))
      .limit(limit);
  }

  async list(q: {
    page: number;
    pageSize: number;
    status?: string | undefined;
    type?: string | undefined;
    deviceId?: string | undefined;
    rolloutId?: string | undefined;
  }): Promise<{ items: DeploymentRow[]; total: number }> {
    const conds: SQL[] = [];
    if (q.status) conds.push(eq(deployments.status, q.status));
    if (q.type) conds.push(eq(deployments.type, q.type));
    if (q.deviceId) conds.push(eq(deployments.deviceId, q.deviceId));
    if (q.rolloutId) conds.push(eq(deployments.rolloutId, q.rolloutId));
    const where = conds.length ? and(...conds) : undefined;
    const [n] = await this.db.select({ n: count() }).from(deployments).where(where);
    const items = await this.db
      .select()
      .from(deployments)
      .where(where)
      .orderBy(desc(deployments.createdAt), desc(deployments.id))
      .limit(q.pageSize)
      .offset((q.page - 1) * q.pageSize);
    return { items, total: n?.n ?? 0 };
  }

  async rollout(id: string): Promise<{ rollout: RolloutRow; deployments: DeploymentRow[] } | undefined> {
    const [rollout] = await this.db.select().from(rollouts).where(eq(rollouts.id, id));
    if (!rollout) return undefined;
    const rows = await this.db
      .select()
      .from(deployments)
      .where(eq(deployments.rolloutId, id))
      .orderBy(asc(deployments.createdAt), asc(deployments.position));
    return { rollout, deployments: rows };
  }

  async rolloutOf(deploymentRolloutId: string): Promise<RolloutRow | undefined> {
    const [r] = await this.db.select().from(rollouts).where(eq(rollouts.id, deploymentRolloutId));
    return r;
  }

  /** Counts of all deployments by status (for metrics). */
  async countByStatus(): Promise<Record<string, number>> {
    const rows = await this.db
      .select({ status: deployments.status, n: count() })
      .from(deployments)
      .groupBy(deployments.status);
    return Object.fromEntries(rows.map((r) => [r.status, r.n]));
  }

  /** Counts of a rollout's deployments by status. */
  async rolloutCounts(rolloutId: string): Promise<Record<string, number>> {
    const rows = await this.db
      .select({ status: deployments.status, n: count() })
      .from(deployments)
      .where(eq(deployments.rolloutId, rolloutId))
      .groupBy(deployments.status);
    return Object.fromEntries(rows.map((r) => [r.status, r.n]));
  }

  /** Closes a rollout whose deployments all finished: succeeded, or failed if any failed. */
  async settleRollout(rolloutId: string): Promise<RolloutRow | undefined> {
    const counts = await this.rolloutCounts(rolloutId);
    if ((counts.queued ?? 0) + (counts.running ?? 0) > 0) return undefined;
    const outcome =
      (counts.failed ?? 0) > 0 ? 'failed' : (counts.cancelled ?? 0) > 0 ? 'cancelled' : 'succeeded';
    const [row] = await this.db
      .update(rollouts)
      .set({
        finishedAt: sql`now()`,
        status: sql`CASE WHEN ${rollouts.status} = 'running' THEN ${outcome} ELSE ${rollouts.status} END`,
      })
      .where(and(eq(rollouts.id, rolloutId), sql`${rollouts.finishedAt} IS NULL`))
      .returning();
    return row;
  }
}
