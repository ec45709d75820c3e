/**
 * Policies: create, change (each change a new revision), delete, list, revisions, and the agents
 * following one. A revision not staged becomes applied_revision at once (the convergence loop
 * then hands it to every matching agent); a staged one waits for a rollout. Every package
 * version (and agent version) a revision names must have an artifact.
 */
import { ConflictError, NotFoundError, OpsplaneError, type DistributionStatus } from '@opsplane/models';
import {
  AGENT_ARTIFACT_NAME,
  iso,
  isRolloutActive,
  type Policy,
  type PolicyAgent,
  type PolicyAgentList,
  type PolicyCreate,
  type PolicyListResponse,
  type PolicyRevisionList,
  type PolicyRolloutStatus,
  type PolicySpec,
  type PolicyUpdate,
} from '@opsplane/api';
import type { PolicyRow } from '../storage/distribution-schema.js';
import type { Store } from '../storage/store.js';
import { requireInAreas, type AreaActor } from './access.js';
import { changesBetween, type AuditTrail } from './audit-trail.js';
import { policyFor, type MatchablePolicy } from './desired-state.js';
import type { FleetView } from './fleet-view.js';

export function toPolicy(row: PolicyRow, spec: PolicySpec): Policy {
  return {
    ...spec,
    id: row.id,
    revision: row.revision,
    applied_revision: row.appliedRevision,
    created_by: row.createdBy,
    created_at: iso(row.createdAt),
    updated_at: iso(row.updatedAt),
  };
}

/** The areas a change of this spec concerns: its areas, or '' (every area: judged by the global role). */
export const areasOf = (spec: Pick<PolicySpec, 'areas'>): string[] => (spec.areas.length ? spec.areas : ['']);

function specOf(b: Omit<PolicyCreate, 'staged'>): PolicySpec {
  return {
    name: b.name,
    description: b.description,
    areas: [...new Set(b.areas)].sort(),
    selector: b.selector.trim(),
    priority: b.priority,
    packages: b.packages,
    agent_version: b.agent_version,
    correct_drift: b.correct_drift,
    health_timeout_ms: b.health_timeout_ms,
  };
}

export class PolicyService {
  constructor(
    private readonly store: Store,
    private readonly audit: AuditTrail,
    private readonly view: FleetView,
    /** Called after a change that agents should see soon (the convergence loop). */
    private readonly changed: () => void = () => undefined,
  ) {}

  private async requireArtifacts(store: Store, spec: PolicySpec): Promise<void> {
    const missing: string[] = [];
    for (const p of spec.packages)
      if ((await store.artifacts.candidates('package', p.name, p.version)).length === 0)
        missing.push(`package ${p.name} ${p.version}`);
    if (
      spec.agent_version &&
      (await store.artifacts.candidates('agent', AGENT_ARTIFACT_NAME, spec.agent_version)).length === 0
    )
      missing.push(`agent ${spec.agent_version}`);
    if (missing.length)
      throw new OpsplaneError('artifact_not_found', `no artifact uploaded for ${missing.join(', ')}`, {
        status: 422,
      });
  }

  private async load(store: Store, id: string): Promise<{ row: PolicyRow; spec: PolicySpec }> {
    const row = await store.policies.get(id);
    if (!row) throw new NotFoundError(`policy ${id} not found`);
    const rev = await store.policies.revision(id, row.revision);
    return { row, spec: rev?.spec as PolicySpec };
  }

  async list(): Promise<PolicyListResponse> {
    const items: Policy[] = [];
    for (const row of await this.store.policies.list()) {
      const rev = await this.store.policies.revision(row.id, row.revision);
      if (rev) items.push(toPolicy(row, rev.spec as PolicySpec));
    }
    items.sort((a, b) => b.priority - a.priority || a.created_at.localeCompare(b.created_at));
    return { items, total: items.length };
  }

  async get(id: string): Promise<Policy> {
    const { row, spec } = await this.load(this.store, id);
    return toPolicy(row, spec);
  }

  async revisions(id: string): Promise<PolicyRevisionList> {
    await this.load(this.store, id);
    const revs = await this.store.policies.revisions(id);
    return {
      revisions: revs.map((r) => ({
        revision: r.revision,
        spec: r.spec as PolicySpec,
        created_by: r.createdBy,
        created_at: iso(r.createdAt),
      })),
    };
  }

  async create(caller: AreaActor, body: PolicyCreate): Promise<Policy> {
    const spec = specOf(body);
    requireInAreas(caller, areasOf(spec), 'operator', 'this policy');
    const out = await this.audit.run(
      caller,
      { action: 'policy.create', targetType: 'policy', details: { name: spec.name } },
      async (tx, a) => {
        if (await tx.policies.byName(spec.name))
          throw new ConflictError(`a policy named '${spec.name}' exists already`);
        await this.requireArtifacts(tx, spec);
        const row = await tx.policies.create({
          name: spec.name,
          spec,
          createdBy: caller.username,
          applied: !body.staged,
        });
        const p = toPolicy(row, spec);
        a.targetId = row.id;
        a.changes = changesBetween(null, p, ['id', 'created_at', 'updated_at']);
        return p;
      },
    );
    this.changed();
    return out;
  }

  async update(caller: AreaActor, id: string, body: PolicyUpdate): Promise<Policy> {
    const { staged, ...fields } = body;
    const out = await this.audit.run(
      caller,
      { action: 'policy.update', targetType: 'policy', targetId: id },
      async (tx, a) => {
        const { row, spec: before } = await this.load(tx, id);
        const after = specOf({
          ...before,
          ...Object.fromEntries(Object.entries(fields).filter(([, v]) => v !== undefined)),
        } as PolicySpec);
        requireInAreas(
          caller,
          [...new Set([...areasOf(before), ...areasOf(after)])],
          'operator',
          'changing this policy',
        );
        if (JSON.stringify(specOf(before)) === JSON.stringify(after)) return toPolicy(row, before);
        if (after.name !== before.name) {
          const clash = await tx.policies.byName(after.name);
          if (clash && clash.id !== id)
            throw new ConflictError(`a policy named '${after.name}' exists already`);
        }
        if (!staged && (await tx.policyRollouts.active(id)).length > 0)
          throw new OpsplaneError(
            'rollout_active',
            'a rollout of this policy is running: stage the change (staged: true) or pause/cancel the rollout first',
            { status: 409 },
          );
        await this.requireArtifacts(tx, after);
        const next = await tx.policies.addRevision(id, {
          name: after.name,
          spec: after,
          createdBy: caller.username,
          applied: !staged,
        });
        const p = toPolicy(next, after);
        a.details = { revision: next.revision, staged };
        a.changes = changesBetween(toPolicy(row, before), p, ['updated_at']);
        return p;
      },
    );
    this.changed();
    return out;
  }

  async delete(caller: AreaActor, id: string): Promise<void> {
    await this.audit.run(
      caller,
      { action: 'policy.delete', targetType: 'policy', targetId: id },
      async (tx, a) => {
        const { row, spec } = await this.load(tx, id);
        requireInAreas(caller, areasOf(spec), 'operator', 'deleting this policy');
        if ((await tx.policyRollouts.active(id)).length > 0)
          throw new OpsplaneError('rollout_active', 'a rollout of this policy is running: cancel it first', {
            status: 409,
          });
        await tx.policies.delete(id);
        a.changes = changesBetween(toPolicy(row, spec), null, []);
      },
    );
    this.changed();
  }

  /** Policies with the spec of their applied revision (what matching uses outside rollouts). */
  async applied(
    store: Store = this.store,
  ): Promise<(MatchablePolicy & { row: PolicyRow; revision: number })[]> {
    const out = [];
    for (const row of await store.policies.list()) {
      if (row.appliedRevision === null) continue;
      const rev = await store.policies.revision(row.id, row.appliedRevision);
      if (rev)
        out.push({
          id: row.id,
          createdAt: row.createdAt,
          spec: rev.spec as PolicySpec,
          row,
          revision: row.appliedRevision,
        });
    }
    return out;
  }

  async agents(id: string): Promise<PolicyAgentList> {
    const { row } = await this.load(this.store, id);
    const applied = await this.applied();
    const active = await this.store.policyRollouts.active(id);
    const held = new Map<string, { rollout: string; revision: number; status: PolicyRolloutStatus }>();
    for (const r of active)
      for (const ag of await this.store.policyRollouts.agents(r.id))
        if (ag.status === 'applying' || ag.status === 'applied' || ag.status === 'failed')
          held.set(ag.agentCode, {
            rollout: r.id,
            revision: r.revision,
            status: r.status as PolicyRolloutStatus,
          });
    const assigned = new Map(
      (await this.store.policies.assignmentsOf(id)).map((a) => [a.agentCode, a.revision]),
    );
    const items: PolicyAgent[] = [];
    for (const ag of this.view.current.all()) {
      const h = held.get(ag.agent_code);
      const follows = h !== undefined || policyFor(ag, applied)?.id === id || assigned.has(ag.agent_code);
      if (!follows) continue;
      const target =
        h && isRolloutActive(h.status)
          ? h.revision
          : policyFor(ag, applied)?.id === id
            ? row.appliedRevision
            : null;
      const d: DistributionStatus | undefined = ag.distribution;
      const reportedTarget = d && d.policy === id && target !== null && d.revision === target;
      items.push({
        agent_code: ag.agent_code,
        area: ag.area,
        controller_id: ag.controller_id,
        online: ag.status === 'online',
        assigned_revision: assigned.get(ag.agent_code) ?? null,
        target_revision: target,
        rollout_id: h?.rollout ?? null,
        distribution: d ?? null,
        state: reportedTarget && d.state !== 'none' ? (d.state as PolicyAgent['state']) : 'pending',
      });
    }
    items.sort((a, b) => a.area.localeCompare(b.area) || a.agent_code.localeCompare(b.agent_code));
    return { items, total: items.length };
  }
}
