/**
 * Alerts: one row per firing episode of a subject (`controller:<area>/<id>`, `agent:<code>`,
 * `package:<code>/<name>`, `deployment:<id>`). Firing is an insert that the partial unique
 * index turns into a no-op while the subject fires already; resolving is a compare-and-set
 * update. Whoever's statement changed the row — one server, even when several share the
 * database — is the one that notifies. A subject that fires again after resolving gets a new row.
 *
 * Also the few reads the alert rules need from other tables (failed deployments not alerted
 * yet, deployments superseded by a success, device statuses by agent code).
 */
import { and, asc, count, desc, eq, gte, inArray, isNull, sql, type SQL } from 'drizzle-orm';
import type { Database } from './database.js';
import {
  agentsSeen,
  alerts,
  controllersHistory,
  deployments,
  type AlertRow,
  type DeploymentRow,
} from './schema.js';

export interface NewAlert {
  kind: string;
  severity: string;
  subject: string;
  area: string;
  title: string;
  message: string;
  labels: Record<string, string>;
  /** When the condition was first observed (default now). */
  firstSeen?: Date;
}

/**
 * The outer deployments row inside correlated subqueries, spelled out: drizzle renders a column
 * of a single-table select unqualified, which inside `FROM deployments l` would mean l's own.
 */
const outer = {
  id: sql.raw('"deployments"."id"'),
  deviceId: sql.raw('"deployments"."device_id"'),
  createdAt: sql.raw('"deployments"."created_at"'),
};

/** A later deployment of the same device that succeeded (correlated on the outer row). */
const laterSuccess = sql`SELECT l.id::text FROM deployments l WHERE l.device_id = ${outer.deviceId}
  AND l.status = 'succeeded' AND l.created_at > ${outer.createdAt}`;

function chunks<T>(items: readonly T[], size = 500): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

export class AlertsRepo {
  constructor(private readonly db: Database) {}

  /** Opens a firing alert; undefined when the subject fires already (nothing changed). */
  async fire(a: NewAlert): Promise<AlertRow | undefined> {
    const [row] = await this.db
      .insert(alerts)
      .values({
        kind: a.kind,
        severity: a.severity,
        subject: a.subject,
        area: a.area,
        title: a.title.slice(0, 500),
        message: a.message.slice(0, 4000),
        labels: a.labels,
        ...(a.firstSeen ? { firstSeen: a.firstSeen } : {}),
      })
      .onConflictDoNothing({ target: alerts.subject, where: sql`status = 'firing'` })
      .returning();
    return row;
  }

  /** Still firing: moves last_seen, and takes the newest wording (e.g. "stale" → "left discovery"). */
  async touch(id: string, update: Pick<NewAlert, 'message' | 'labels'> | undefined): Promise<void> {
    await this.db
      .update(alerts)
      .set({
        lastSeen: sql`now()`,
        ...(update ? { message: update.message.slice(0, 4000), labels: update.labels } : {}),
      })
      .where(and(eq(alerts.id, id), eq(alerts.status, 'firing')));
  }

  /** Bulk form of touch() without new wording. */
  async touchAll(ids: readonly string[]): Promise<void> {
    for (const part of chunks(ids)) {
      await this.db
        .update(alerts)
        .set({ lastSeen: sql`now()` })
        .where(and(inArray(alerts.id, part), eq(alerts.status, 'firing')));
    }
  }

  /** Resolves a firing alert; undefined when it was not firing (someone else resolved it). */
  async resolve(id: string): Promise<AlertRow | undefined> {
    const [row] = await this.db
      .update(alerts)
      .set({ status: 'resolved', resolvedAt: sql`now()` })
      .where(and(eq(alerts.id, id), eq(alerts.status, 'firing')))
      .returning();
    return row;
  }

  async firing(): Promise<AlertRow[]> {
    return this.db.select().from(alerts).where(eq(alerts.status, 'firing'));
  }

  async get(id: string): Promise<AlertRow | undefined> {
    const [row] = await this.db.select().from(alerts).where(eq(alerts.id, id));
    return row;
  }

  /** Newest first. */
  async list(q: {
    page: number;
    pageSize: number;
    status?: string | undefined;
    kind?: string | undefined;
    area?: string | undefined;
  }): Promise<{ items: AlertRow[]; total: number }> {
    const conds: SQL[] = [];
    if (q.status) conds.push(eq(alerts.status, q.status));
    if (q.kind) conds.push(eq(alerts.kind, q.kind));
    if (q.area !== undefined) conds.push(eq(alerts.area, q.area));
    const where = conds.length ? and(...conds) : undefined;
    const [n] = await this.db.select({ n: count() }).from(alerts).where(where);
    const items = await this.db
      .select()
      .from(alerts)
      .where(where)
      .orderBy(desc(alerts.firstSeen), desc(alerts.id))
      .limit(q.pageSize)
      .offset((q.page - 1) * q.pageSize);
    return { items, total: n?.n ?? 0 };
  }

  /** Records the first acknowledgement; a later one leaves it as it was. */
  async acknowledge(id: string, by: string): Promise<AlertRow | undefined> {
    const [row] = await this.db
      .update(alerts)
      .set({ acknowledgedBy: by, acknowledgedAt: sql`now()` })
      .where(and(eq(alerts.id, id), isNull(alerts.acknowledgedAt)))
      .returning();
    return row ?? this.get(id);
  }

  /** Firing alerts by kind and severity (the opsplane_alerts_firing gauge). */
  async countFiring(): Promise<{ kind: string; severity: string; n: number }[]> {
    return this.db
      .select({ kind: alerts.kind, severity: alerts.severity, n: count() })
      .from(alerts)
      .where(eq(alerts.status, 'firing'))
      .groupBy(alerts.kind, alerts.severity);
  }

  // ------------------------------------------------------------------------------ rule inputs

  /**
   * Failed deployments finished since `since` that never alerted and that no later deployment of
   * the same device has made good already — each alerts once.
   */
  async unalertedDeploymentFailures(since: Date, limit = 500): Promise<DeploymentRow[]> {
    return this.db
      .select()
      .from(deployments)
      .where(
        and(
          eq(deployments.status, 'failed'),
          gte(deployments.finishedAt, since),
          sql`NOT EXISTS (SELECT 1 FROM alerts a WHERE a.subject = 'deployment:' || ${outer.id}::text)`,
          sql`NOT EXISTS (${laterSuccess})`,
        ),
      )
      .orderBy(asc(deployments.finishedAt))
      .limit(limit);
  }

  /**
   * Of these failed deployments, the ones that no longer need attention, with why: a later
   * deployment of the device succeeded, the device was deleted, or the record is gone.
   */
  async settledDeployments(ids: readonly string[]): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    for (const part of chunks(ids)) {
      const rows = await this.db
        .select({
          id: deployments.id,
          deviceId: deployments.deviceId,
          later: sql<string | null>`(${laterSuccess} LIMIT 1)`,
        })
        .from(deployments)
        .where(inArray(deployments.id, part));
      const found = new Set(rows.map((r) => r.id));
      for (const id of part) if (!found.has(id)) out.set(id, 'the deployment record was deleted');
      for (const r of rows) {
        if (r.deviceId === null) out.set(r.id, 'the device was deleted');
        else if (r.later) out.set(r.id, `a later deployment (${r.later}) of the device succeeded`);
      }
    }
    return out;
  }

  // ---- what a leader has seen (read back by the next leader) ----

  /** Agent codes some leader saw online. */
  async seenAgents(): Promise<string[]> {
    const rows = await this.db.select({ code: agentsSeen.code }).from(agentsSeen);
    return rows.map((r) => r.code);
  }

  /** Records agents seen online (first sight only). */
  async recordSeenAgents(codes: readonly string[]): Promise<void> {
    for (let i = 0; i < codes.length; i += 1000) {
      await this.db
        .insert(agentsSeen)
        .values(codes.slice(i, i + 1000).map((code) => ({ code })))
        .onConflictDoNothing();
    }
  }

  /** Controllers present when the history was last written (their row still open). */
  async presentControllers(): Promise<{ area: string; id: string; address: string }[]> {
    const rows = await this.db
      .select({
        area: controllersHistory.area,
        id: controllersHistory.controllerId,
        address: controllersHistory.address,
      })
      .from(controllersHistory)
      .where(isNull(controllersHistory.wentAt));
    return rows;
  }
}
