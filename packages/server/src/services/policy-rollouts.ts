/**
 * Policy rollouts, the API side: start one (the agents the revision will apply to, split in
 * waves), list, get (waves, counts, every agent), pause, resume, cancel, and a live event stream.
 * The waves themselves are run by the RolloutEngine of whichever replica holds the lease.
 *
 * Rolling back: agents refuse an older revision of the policy they hold, so the agents a halted
 * or cancelled rollout touched are rolled back by a NEW revision with the previous revision's
 * spec, applied at once (the convergence loop hands it out). A policy never applied before the
 * rollout has nothing to roll back to: its agents keep what their own health gate left.
 */
import { NotFoundError, OpsplaneError } from '@opsplane/models';
import {
  iso,
  isoOrNull,
  isRolloutActive,
  type PolicyRollout,
  type PolicyRolloutCreate,
  type PolicyRolloutListQuery,
  type PolicyRolloutListResponse,
  type PolicyRolloutStatus,
  type PolicySpec,
  type RolloutAgent,
  type RolloutAgentStatus,
  type RolloutCounts,
  type RolloutWave,
} from '@opsplane/api';
import type { PolicyRolloutAgentRow, PolicyRolloutRow } from '../storage/distribution-schema.js';
import type { Store } from '../storage/store.js';
import { requireInAreas, type AreaActor } from './access.js';
import type { AuditTrail } from './audit-trail.js';
import { policyFor } from './desired-state.js';
import type { FleetView } from './fleet-view.js';
import { areasOf, type PolicyService } from './policies.js';

const TOUCHED = ['applying', 'applied', 'failed'];

/** An event of a rollout's live stream. */
export type RolloutEvent =
  | { event: 'rollout'; data: PolicyRollout }
  | { event: 'agent'; data: RolloutAgent }
  | { event: 'end'; data: PolicyRollout };

export function toRolloutAgent(a: PolicyRolloutAgentRow): RolloutAgent {
  return {
    agent_code: a.agentCode,
    area: a.area,
    wave: a.wave,
    status: a.status as RolloutAgentStatus,
    previous_revision: a.previousRevision,
    error: a.errorCode ? { code: a.errorCode, message: a.errorMessage ?? '' } : null,
    started_at: isoOrNull(a.startedAt),
    finished_at: isoOrNull(a.finishedAt),
  };
}

export function toRollout(
  r: PolicyRolloutRow,
  agents: readonly PolicyRolloutAgentRow[],
  withAgents: boolean,
): PolicyRollout {
  const counts: RolloutCounts = {
    total: agents.length,
    pending: 0,
    applying: 0,
    applied: 0,
    failed: 0,
    rolled_back: 0,
    skipped: 0,
  };
  for (const a of agents) counts[a.status as RolloutAgentStatus]++;
  const waves: RolloutWave[] = [];
  for (let i = 1; i <= r.waveCount; i++) {
    const of = agents.filter((a) => a.wave === i);
    const started = of.map((a) => a.startedAt).filter((d): d is Date => d !== null);
    const finished = of.map((a) => a.finishedAt).filter((d): d is Date => d !== null);
    const status: RolloutWave['status'] =
      i > r.currentWave
        ? 'pending'
        : of.some((a) => a.status === 'failed' || a.status === 'rolled_back')
          ? 'failed'
          : i === r.currentWave && of.some((a) => a.status === 'applying' || a.status === 'pending')
            ? 'running'
            : 'done';
    waves.push({
      index: i,
      status,
      agents: of.length,
      started_at:
        i === r.currentWave && r.waveStartedAt
          ? iso(r.waveStartedAt)
          : started.length
            ? iso(new Date(Math.min(...started.map(Number))))
            : null,
      finished_at:
        status === 'done' || status === 'failed'
          ? finished.length
            ? iso(new Date(Math.max(...finished.map(Number))))
            : null
          : null,
    });
  }
  return {
    id: r.id,
    policy_id: r.policyId,
    policy_name: r.policyName,
    revision: r.revision,
    previous_revision: r.previousRevision,
    status: r.status as PolicyRolloutStatus,
    batch_size: r.batchSize,
    pause_ms: r.pauseMs,
    max_failures: r.maxFailures,
    wave_timeout_ms: r.waveTimeoutMs,
    current_wave: r.currentWave,
    waves,
    counts,
    message: r.message,
    created_by: r.createdBy,
    created_at: iso(r.createdAt),
    updated_at: iso(r.updatedAt),
    finished_at: isoOrNull(r.finishedAt),
    ...(withAgents ? { agents: agents.map(toRolloutAgent) } : {}),
  };
}

/**
 * Rolls the touched agents of a rollout back (in the caller's transaction): a new revision with
 * the previous revision's spec, applied; touched agents → rolled_back, pending ones → skipped.
 * Returns the new revision, or null when there was nothing to roll back to.
 */
export async function rollBack(
  tx: Store,
  r: PolicyRolloutRow,
  agents: readonly PolicyRolloutAgentRow[],
  by: string,
): Promise<number | null> {
  const touched = agents.filter((a) => TOUCHED.includes(a.status)).map((a) => a.agentCode);
  const pending = agents.filter((a) => a.status === 'pending').map((a) => a.agentCode);
  const now = new Date();
  await tx.policyRollouts.updateAgents(r.id, pending, { status: 'skipped', finishedAt: now }, ['pending']);
  if (touched.length === 0 || r.previousRevision === null) return null;
  const prev = await tx.policies.revision(r.policyId, r.previousRevision);
  const policy = await tx.policies.get(r.policyId);
  if (!prev || !policy) return null;
  const spec = prev.spec as PolicySpec;
  const next = await tx.policies.addRevision(r.policyId, {
    name: policy.name,
    spec: { ...spec, name: policy.name },
    createdBy: by,
    applied: true,
  });
  await tx.policyRollouts.updateAgents(r.id, touched, { status: 'rolled_back', finishedAt: now }, TOUCHED);
  return next.revision;
}

export class PolicyRolloutService {
  constructor(
    private readonly store: Store,
    private readonly audit: AuditTrail,
    private readonly view: FleetView,
    private readonly policies: PolicyService,
    /** A rollout was created or resumed (the engine claims it) or changed (the loop hands out). */
    private readonly changed: () => void = () => undefined,
  ) {}

  private async load(store: Store, id: string): Promise<PolicyRolloutRow> {
    const r = await store.policyRollouts.get(id);
    if (!r) throw new NotFoundError(`policy rollout ${id} not found`);
    return r;
  }

  private async areasOfRollout(
    store: Store,
    r: Pick<PolicyRolloutRow, 'policyId' | 'revision'>,
  ): Promise<string[]> {
    const rev = await store.policies.revision(r.policyId, r.revision);
    return rev ? areasOf(rev.spec as PolicySpec) : [''];
  }

  async get(id: string): Promise<PolicyRollout> {
    const r = await this.load(this.store, id);
    return toRollout(r, await this.store.policyRollouts.agents(id), true);
  }

  async list(q: PolicyRolloutListQuery): Promise<PolicyRolloutListResponse> {
    const { rows, total } = await this.store.policyRollouts.list(
      { policyId: q.policy_id, status: q.status },
      q.page,
      q.pageSize,
    );
    const items = [];
    for (const r of rows) items.push(toRollout(r, await this.store.policyRollouts.agents(r.id), false));
    return { items, total, page: q.page, pageSize: q.pageSize };
  }

  async create(caller: AreaActor, body: PolicyRolloutCreate): Promise<PolicyRollout> {
    const policy = await this.store.policies.get(body.policy_id);
    if (!policy) throw new NotFoundError(`policy ${body.policy_id} not found`);
    const revision = body.revision ?? policy.revision;
    const rev = await this.store.policies.revision(policy.id, revision);
    if (!rev) throw new NotFoundError(`policy ${policy.name} has no revision ${revision}`);
    const spec = rev.spec as PolicySpec;
    const appliedSpec =
      policy.appliedRevision !== null
        ? ((await this.store.policies.revision(policy.id, policy.appliedRevision))?.spec as
            PolicySpec | undefined)
        : undefined;
    requireInAreas(
      caller,
      new Set([...areasOf(spec), ...(appliedSpec ? areasOf(appliedSpec) : [])]),
      'operator',
      'rolling this policy out',
    );
    // The agents the revision will apply to: those for which this policy, with the revision's
    // spec, wins over every other applied policy.
    const others = (await this.policies.applied()).filter((p) => p.id !== policy.id);
    const self = { id: policy.id, createdAt: policy.createdAt, spec };
    const agents = this.view.current
      .all()
      .filter((a) => a.status === 'online' && policyFor(a, [...others, self])?.id === policy.id)
      .sort((a, b) => a.agent_code.localeCompare(b.agent_code));
    const batchSize = Math.max(
      1,
      body.batch_size ?? Math.ceil((agents.length * (body.batch_percent ?? 100)) / 100),
    );
    const waveCount = Math.ceil(agents.length / batchSize);
    const created = await this.audit.run(
      caller,
      {
        action: 'policy_rollout.create',
        targetType: 'policy_rollout',
        details: { policy: policy.name, revision, agents: agents.length, batch_size: batchSize },
      },
      async (tx, a) => {
        if ((await tx.policyRollouts.active(policy.id)).length > 0)
          throw new OpsplaneError('rollout_active', `a rollout of policy ${policy.name} is running already`, {
            status: 409,
          });
        const r = await tx.policyRollouts.create(
          {
            policyId: policy.id,
            policyName: policy.name,
            revision,
            previousRevision: policy.appliedRevision,
            batchSize,
            pauseMs: body.pause_ms,
            maxFailures: body.max_failures,
            waveTimeoutMs: body.wave_timeout_ms,
            waveCount,
            createdBy: caller.username,
          },
          agents.map((ag, i) => ({
            agentCode: ag.agent_code,
            area: ag.area,
            wave: Math.floor(i / batchSize) + 1,
            previousRevision: ag.distribution?.policy === policy.id ? ag.distribution.revision : null,
          })),
        );
        a.targetId = r.id;
        return r;
      },
    );
    this.changed();
    return this.get(created.id);
  }

  private async transition(
    caller: AreaActor,
    id: string,
    action: 'pause' | 'resume' | 'cancel',
  ): Promise<PolicyRollout> {
    const found = await this.load(this.store, id);
    requireInAreas(
      caller,
      await this.areasOfRollout(this.store, found),
      'operator',
      `${action} of this rollout`,
    );
    await this.audit.run(
      caller,
      { action: `policy_rollout.${action}`, targetType: 'policy_rollout', targetId: id },
      async (tx, a) => {
        const r = await this.load(tx, id);
        const from =
          action === 'pause' ? ['running'] : action === 'resume' ? ['paused'] : ['running', 'paused'];
        if (!from.includes(r.status))
          throw new OpsplaneError('rollout_state', `the rollout is ${r.status}: it cannot ${action}`, {
            status: 409,
          });
        if (action === 'pause') {
          await tx.policyRollouts.update(
            id,
            { status: 'paused', message: `paused by ${caller.username}` },
            { fromStatus: from },
          );
        } else if (action === 'resume') {
          await tx.policyRollouts.update(
            id,
            { status: 'running', message: '', ...(r.currentWave > 0 ? { waveStartedAt: new Date() } : {}) },
            { fromStatus: from },
          );
        } else {
          const rolled = await rollBack(
            tx,
            r,
            await tx.policyRollouts.agents(id),
            `${caller.username} (cancel of rollout ${id})`,
          );
          await tx.policyRollouts.update(
            id,
            {
              status: 'cancelled',
              finishedAt: new Date(),
              message:
                `cancelled by ${caller.username}` +
                (rolled !== null
                  ? `; touched agents rolled back to revision ${r.previousRevision} (as revision ${rolled})`
                  : ''),
            },
            { fromStatus: from },
          );
          a.details = { rollback_revision: rolled };
        }
        a.changes = [
          {
            field: 'status',
            before: r.status,
            after: action === 'pause' ? 'paused' : action === 'resume' ? 'running' : 'cancelled',
          },
        ];
      },
    );
    this.changed();
    return this.get(id);
  }

  pause(caller: AreaActor, id: string): Promise<PolicyRollout> {
    return this.transition(caller, id, 'pause');
  }

  resume(caller: AreaActor, id: string): Promise<PolicyRollout> {
    return this.transition(caller, id, 'resume');
  }

  cancel(caller: AreaActor, id: string): Promise<PolicyRollout> {
    return this.transition(caller, id, 'cancel');
  }

  /**
   * The rollout's live events, read from the database (whichever replica runs it): `rollout` on
   * every change, `agent` per changed agent, `end` once finished.
   */
  async *follow(id: string, signal: AbortSignal, pollMs = 500): AsyncGenerator<RolloutEvent | 'idle'> {
    let r = await this.load(this.store, id);
    let agents = await this.store.policyRollouts.agents(id);
    yield { event: 'rollout', data: toRollout(r, agents, false) };
    const seen = new Map(agents.map((a) => [a.agentCode, a.status]));
    let last = r.updatedAt.getTime();
    let idle = 0;
    while (!signal.aborted && isRolloutActive(r.status as PolicyRolloutStatus)) {
      await new Promise((res) => setTimeout(res, pollMs).unref());
      const next = await this.store.policyRollouts.get(id);
      if (!next) return;
      r = next;
      if (r.updatedAt.getTime() === last) {
        if (++idle * pollMs >= 15_000) {
          idle = 0;
          yield 'idle';
        }
        continue;
      }
      last = r.updatedAt.getTime();
      agents = await this.store.policyRollouts.agents(id);
      for (const a of agents) {
        if (seen.get(a.agentCode) !== a.status) {
          seen.set(a.agentCode, a.status);
          yield { event: 'agent', data: toRolloutAgent(a) };
        }
      }
      yield { event: 'rollout', data: toRollout(r, agents, false) };
    }
    if (!signal.aborted)
      yield { event: 'end', data: toRollout(r, await this.store.policyRollouts.agents(id), true) };
  }
}
