/**
 * Policy rollouts and their agents. A running rollout is worked on by one replica at a time: the
 * one holding its lease (owner, lease_until), renewed while it works; a replica that dies leaves
 * a lease that lapses, and another claims the rollout and continues from what is stored here.
 * Every write of the engine is conditional on still holding the lease.
 */
import { and, asc, count, desc, eq, inArray, isNull, lt, or, sql, type SQL } from 'drizzle-orm';
import type { Database } from './database.js';
import {
  policyRolloutAgents,
  policyRollouts,
  type PolicyRolloutAgentRow,
  type PolicyRolloutRow,
} from './distribution-schema.js';

export type NewPolicyRollout = Pick<
  PolicyRolloutRow,
  | 'policyId'
  | 'policyName'
  | 'revision'
  | 'previousRevision'
  | 'batchSize'
  | 'pauseMs'
  | 'maxFailures'
  | 'waveTimeoutMs'
  | 'waveCount'
  | 'createdBy'
>;

export type RolloutPatch = Partial<
  Pick<PolicyRolloutRow, 'status' | 'currentWave' | 'waveStartedAt' | 'nextWaveAt' | 'message' | 'finishedAt'>
>;

export type RolloutAgentPatch = Partial<
  Pick<PolicyRolloutAgentRow, 'status' | 'errorCode' | 'errorMessage' | 'startedAt' | 'finishedAt'>
>;

const ACTIVE = ['running', 'paused'];

export class PolicyRolloutsRepo {
  constructor(private readonly db: Database) {}

  async create(
    r: NewPolicyRollout,
    agents: readonly { agentCode: string; area: string; wave: number; previousRevision: number | null }[],
  ): Promise<PolicyRolloutRow> {
    const [row] = await this.db
      .insert(policyRollouts)
      .values({ ...r, status: 'running' })
      .returning();
    const rollout = row as PolicyRolloutRow;
    for (let i = 0; i < agents.length; i += 500) {
      await this.db
        .insert(policyRolloutAgents)
        .values(agents.slice(i, i + 500).map((a) => ({ ...a, rolloutId: rollout.id, status: 'pending' })));
    }
    return rollout;
  }

  async get(id: string): Promise<PolicyRolloutRow | undefined> {
    const [row] = await this.db.select().from(policyRollouts).where(eq(policyRollouts.id, id));
    return row;
  }

  async list(
    f: { policyId?: string | undefined; status?: string | undefined },
    page: number,
    pageSize: number,
  ): Promise<{ rows: PolicyRolloutRow[]; total: number }> {
    const conds: SQL[] = [];
    if (f.policyId) conds.push(eq(policyRollouts.policyId, f.policyId));
    if (f.status) conds.push(eq(policyRollouts.status, f.status));
    const where = conds.length ? and(...conds) : undefined;
    const rows = await this.db
      .select()
      .from(policyRollouts)
      .where(where)
      .orderBy(desc(policyRollouts.createdAt), desc(policyRollouts.id))
      .limit(pageSize)
      .offset((page - 1) * pageSize);
    const [n] = await this.db.select({ n: count() }).from(policyRollouts).where(where);
    return { rows, total: Number(n?.n ?? 0) };
  }

  /** Running or paused rollouts (of one policy, or all). */
  active(policyId?: string): Promise<PolicyRolloutRow[]> {
    const cond = inArray(policyRollouts.status, ACTIVE);
    return this.db
      .select()
      .from(policyRollouts)
      .where(policyId ? and(cond, eq(policyRollouts.policyId, policyId)) : cond);
  }

  agents(rolloutId: string): Promise<PolicyRolloutAgentRow[]> {
    return this.db
      .select()
      .from(policyRolloutAgents)
      .where(eq(policyRolloutAgents.rolloutId, rolloutId))
      .orderBy(asc(policyRolloutAgents.wave), asc(policyRolloutAgents.agentCode));
  }

  /** Agents of the given rollouts (the convergence loop's view of who a rollout holds). */
  agentsOf(rolloutIds: readonly string[]): Promise<PolicyRolloutAgentRow[]> {
    if (rolloutIds.length === 0) return Promise.resolve([]);
    return this.db
      .select()
      .from(policyRolloutAgents)
      .where(inArray(policyRolloutAgents.rolloutId, [...rolloutIds]));
  }

  /** Running rollouts nobody holds (no owner, or a lapsed lease), claimed for `owner`. */
  async claim(owner: string, leaseMs: number): Promise<PolicyRolloutRow[]> {
    return this.db
      .update(policyRollouts)
      .set({ owner, leaseUntil: sql`now() + make_interval(secs => ${leaseMs / 1000})` })
      .where(
        and(
          eq(policyRollouts.status, 'running'),
          or(isNull(policyRollouts.owner), lt(policyRollouts.leaseUntil, sql`now()`)),
        ),
      )
      .returning();
  }

  /** Renews the lease; false when it was lost (another replica took the rollout over). */
  async renew(id: string, owner: string, leaseMs: number): Promise<boolean> {
    const rows = await this.db
      .update(policyRollouts)
      .set({ leaseUntil: sql`now() + make_interval(secs => ${leaseMs / 1000})` })
      .where(and(eq(policyRollouts.id, id), eq(policyRollouts.owner, owner)))
      .returning({ id: policyRollouts.id });
    return rows.length > 0;
  }

  /** Lets go of a rollout (paused, finished, or this replica stopping). */
  async release(id: string, owner: string): Promise<void> {
    await this.db
      .update(policyRollouts)
      .set({ owner: null, leaseUntil: null })
      .where(and(eq(policyRollouts.id, id), eq(policyRollouts.owner, owner)));
  }

  /**
   * Changes a rollout: by its lease owner (`owner`), or by an operator (`fromStatus`: only when
   * it is in one of these). Undefined when the condition did not hold.
   */
  async update(
    id: string,
    patch: RolloutPatch,
    cond: { owner?: string; fromStatus?: readonly string[] },
  ): Promise<PolicyRolloutRow | undefined> {
    const conds: SQL[] = [eq(policyRollouts.id, id)];
    if (cond.owner !== undefined) conds.push(eq(policyRollouts.owner, cond.owner));
    if (cond.fromStatus) conds.push(inArray(policyRollouts.status, [...cond.fromStatus]));
    const [row] = await this.db
      .update(policyRollouts)
      .set({ ...patch, updatedAt: sql`now()` })
      .where(and(...conds))
      .returning();
    return row;
  }

  async updateAgents(
    rolloutId: string,
    codes: readonly string[],
    patch: RolloutAgentPatch,
    fromStatus?: readonly string[],
  ): Promise<void> {
    if (codes.length === 0) return;
    const conds: SQL[] = [
      eq(policyRolloutAgents.rolloutId, rolloutId),
      inArray(policyRolloutAgents.agentCode, [...codes]),
    ];
    if (fromStatus) conds.push(inArray(policyRolloutAgents.status, [...fromStatus]));
    await this.db
      .update(policyRolloutAgents)
      .set(patch)
      .where(and(...conds));
    await this.db
      .update(policyRollouts)
      .set({ updatedAt: sql`now()` })
      .where(eq(policyRollouts.id, rolloutId));
  }
}
