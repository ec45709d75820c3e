/**
 * Policies, their revisions (one per change, the spec as JSON) and agent assignments (the
 * revision each agent was last handed). Changes run in the caller's transaction with their audit
 * record.
 */
import { and, asc, desc, eq, inArray, sql } from 'drizzle-orm';
import type { Database } from './database.js';
import {
  agentAssignments,
  policies,
  policyRevisions,
  type AgentAssignmentRow,
  type PolicyRevisionRow,
  type PolicyRow,
} from './distribution-schema.js';

export class PoliciesRepo {
  constructor(private readonly db: Database) {}

  list(): Promise<PolicyRow[]> {
    return this.db.select().from(policies).orderBy(asc(policies.createdAt), asc(policies.id));
  }

  async get(id: string): Promise<PolicyRow | undefined> {
    const [row] = await this.db.select().from(policies).where(eq(policies.id, id));
    return row;
  }

  async byName(name: string): Promise<PolicyRow | undefined> {
    const [row] = await this.db.select().from(policies).where(eq(policies.name, name));
    return row;
  }

  /** A policy at revision 1 (its spec written too). */
  async create(p: { name: string; spec: unknown; createdBy: string; applied: boolean }): Promise<PolicyRow> {
    const [row] = await this.db
      .insert(policies)
      .values({ name: p.name, revision: 1, appliedRevision: p.applied ? 1 : null, createdBy: p.createdBy })
      .returning();
    const policy = row as PolicyRow;
    await this.db
      .insert(policyRevisions)
      .values({ policyId: policy.id, revision: 1, spec: p.spec, createdBy: p.createdBy });
    return policy;
  }

  /** The next revision of a policy (applied at once when `applied`). */
  async addRevision(
    id: string,
    p: { name: string; spec: unknown; createdBy: string; applied: boolean },
  ): Promise<PolicyRow> {
    const [row] = await this.db
      .update(policies)
      .set({
        name: p.name,
        revision: sql`${policies.revision} + 1`,
        ...(p.applied ? { appliedRevision: sql`${policies.revision} + 1` } : {}),
        updatedAt: sql`now()`,
      })
      .where(eq(policies.id, id))
      .returning();
    const policy = row as PolicyRow;
    await this.db
      .insert(policyRevisions)
      .values({ policyId: id, revision: policy.revision, spec: p.spec, createdBy: p.createdBy });
    return policy;
  }

  async setApplied(id: string, revision: number): Promise<void> {
    await this.db
      .update(policies)
      .set({ appliedRevision: revision, updatedAt: sql`now()` })
      .where(eq(policies.id, id));
  }

  async delete(id: string): Promise<boolean> {
    const rows = await this.db.delete(policies).where(eq(policies.id, id)).returning({ id: policies.id });
    return rows.length > 0;
  }

  revisions(id: string): Promise<PolicyRevisionRow[]> {
    return this.db
      .select()
      .from(policyRevisions)
      .where(eq(policyRevisions.policyId, id))
      .orderBy(desc(policyRevisions.revision));
  }

  async revision(id: string, revision: number): Promise<PolicyRevisionRow | undefined> {
    const [row] = await this.db
      .select()
      .from(policyRevisions)
      .where(and(eq(policyRevisions.policyId, id), eq(policyRevisions.revision, revision)));
    return row;
  }

  /** Every revision of every policy (to know which artifacts are in use). */
  allRevisions(): Promise<PolicyRevisionRow[]> {
    return this.db.select().from(policyRevisions);
  }

  // ---------------------------------------------------------------- assignments

  assignments(codes?: readonly string[]): Promise<AgentAssignmentRow[]> {
    const q = this.db.select().from(agentAssignments);
    return codes ? q.where(inArray(agentAssignments.agentCode, [...codes])) : q;
  }

  assignmentsOf(policyId: string): Promise<AgentAssignmentRow[]> {
    return this.db.select().from(agentAssignments).where(eq(agentAssignments.policyId, policyId));
  }

  async assign(agentCode: string, policyId: string, revision: number): Promise<void> {
    await this.db
      .insert(agentAssignments)
      .values({ agentCode, policyId, revision })
      .onConflictDoUpdate({
        target: agentAssignments.agentCode,
        set: { policyId, revision, assignedAt: sql`now()` },
      });
  }

  async unassign(agentCode: string): Promise<void> {
    await this.db.delete(agentAssignments).where(eq(agentAssignments.agentCode, agentCode));
  }
}
