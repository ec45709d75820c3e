/**
 * RolloutEngine: runs the waves of running policy rollouts, on every replica. Each rollout is
 * worked on by the replica holding its lease (claimed when unowned or lapsed, renewed each
 * poll; every write conditional on it), so a replica that dies mid-rollout is replaced by
 * another that continues from the database: the current wave, each agent's status and the
 * pause before the next wave are all stored.
 *
 * One step of a rollout: count failures (more than max_failures → halt and roll back); in the
 * current wave, an agent that reports the revision applied is applied, failed is failed, and
 * none by wave_timeout_ms is failed (wave_timeout); a finished wave waits pause_ms, then the
 * next starts: its agents are assigned the revision and handed it at once (offline ones are
 * skipped). After the last wave the revision becomes the policy's applied_revision.
 */
import { randomBytes } from 'node:crypto';
import type { Logger } from '@opsplane/kit';
import type { DistributionStatus } from '@opsplane/models';
import type { PolicySpec } from '@opsplane/api';
import type { PolicyRolloutAgentRow, PolicyRolloutRow } from '../storage/distribution-schema.js';
import type { Store } from '../storage/store.js';
import { DesiredStateBuilder, DesiredStateError } from './desired-state.js';
import type { Distributor, PushItem } from './distributor.js';
import type { FleetView } from './fleet-view.js';
import { rollBack } from './policy-rollouts.js';

export interface RolloutEngineOptions {
  store: Store;
  view: FleetView;
  distributor: Distributor;
  replicaId: string;
  leaseMs: number;
  pollMs: number;
  logger: Logger;
  /** After a rollout finished or rolled back (the convergence loop hands out the result). */
  changed?: () => void;
}

/** Push failures that say nothing about the revision: the wave timeout decides. */
const TRANSIENT = new Set([
  'controller_unavailable',
  'upstream_error',
  'timeout',
  'agent_not_connected',
  'agent_unavailable',
]);

function failureOf(d: DistributionStatus): { code: string; message: string } {
  for (const p of d.packages)
    if (p.state === 'failed')
      return p.error
        ? { code: p.error.code, message: `${p.name} ${p.desired_version}: ${p.error.message}` }
        : {
            code: 'package_failed',
            message: `${p.name} ${p.desired_version} failed${p.rolled_back ? ' (rolled back)' : ''}`,
          };
  if (d.agent?.state === 'failed')
    return (
      d.agent.error ?? { code: 'agent_upgrade_failed', message: `agent ${d.agent.desired_version} failed` }
    );
  return { code: 'failed', message: 'the agent reported the revision failed' };
}

export class RolloutEngine {
  readonly owner: string;
  private timer: NodeJS.Timeout | undefined;
  private busy: Promise<void> | undefined;
  private stopped = true;
  private readonly owned = new Set<string>();

  constructor(private readonly o: RolloutEngineOptions) {
    // Per process: a restarted replica with the same name must not think it holds old leases.
    this.owner = `${o.replicaId}:${randomBytes(4).toString('hex')}`;
  }

  start(): void {
    this.stopped = false;
    this.timer = setInterval(() => this.kick(), this.o.pollMs);
    this.timer.unref();
    this.kick();
  }

  /** Stops stepping and lets go of the leases (another replica continues at once). */
  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    await this.busy;
    for (const id of this.owned)
      await this.o.store.policyRollouts.release(id, this.owner).catch(() => undefined);
    this.owned.clear();
  }

  /** Abandons the leases without releasing them (tests: a replica that dies). */
  abandon(): void {
    this.stopped = true;
    clearInterval(this.timer);
  }

  kick(): void {
    if (this.stopped || this.busy) return;
    this.busy = this.tick()
      .catch((err: unknown) => this.o.logger.warn({ err }, 'rollout step failed'))
      .finally(() => {
        this.busy = undefined;
      });
  }

  private async tick(): Promise<void> {
    const { store, leaseMs } = this.o;
    for (const r of await store.policyRollouts.claim(this.owner, leaseMs)) {
      if (!this.owned.has(r.id))
        this.o.logger.info({ rollout: r.id, policy: r.policyName }, 'policy rollout claimed');
      this.owned.add(r.id);
    }
    for (const id of [...this.owned]) {
      if (this.stopped) return;
      if (!(await store.policyRollouts.renew(id, this.owner, leaseMs))) {
        this.owned.delete(id);
        continue;
      }
      const keep = await this.step(id);
      if (!keep) {
        this.owned.delete(id);
        await store.policyRollouts.release(id, this.owner);
      }
    }
  }

  /** One step; false when the rollout is no longer this replica's to run. */
  private async step(id: string): Promise<boolean> {
    const { store } = this.o;
    const r = await store.policyRollouts.get(id);
    if (!r || r.owner !== this.owner || r.status !== 'running') return false;
    let agents = await store.policyRollouts.agents(id);
    if (r.currentWave > 0) {
      await this.observe(r, agents);
      agents = await store.policyRollouts.agents(id);
    }
    const failures = agents.filter((a) => a.status === 'failed').length;
    if (failures > r.maxFailures) {
      await this.halt(r, agents, failures);
      return false;
    }
    if (
      agents.some((a) => a.wave === r.currentWave && (a.status === 'applying' || a.status === 'pending')) &&
      r.currentWave > 0
    )
      return true;
    if (r.currentWave >= r.waveCount) {
      await this.succeed(r);
      return false;
    }
    const now = Date.now();
    if (r.currentWave > 0 && r.pauseMs > 0) {
      if (!r.nextWaveAt) {
        const at = new Date(now + r.pauseMs);
        await store.policyRollouts.update(
          id,
          { nextWaveAt: at, message: `pausing until ${at.toISOString()}` },
          { owner: this.owner },
        );
        return true;
      }
      if (r.nextWaveAt.getTime() > now) return true;
    }
    await this.startWave(r, r.currentWave + 1, agents);
    return true;
  }

  /** Reads what the current wave's agents report. */
  private async observe(r: PolicyRolloutRow, agents: readonly PolicyRolloutAgentRow[]): Promise<void> {
    const { store, view } = this.o;
    const applying = agents.filter((a) => a.wave === r.currentWave && a.status === 'applying');
    const now = new Date();
    const timedOut = r.waveStartedAt !== null && now.getTime() - r.waveStartedAt.getTime() > r.waveTimeoutMs;
    for (const a of applying) {
      const d = view.get(a.agentCode)?.distribution;
      if (
        d &&
        d.policy === r.policyId &&
        d.revision === r.revision &&
        (d.state === 'applied' || d.state === 'failed')
      ) {
        const err = d.state === 'failed' ? failureOf(d) : undefined;
        await store.policyRollouts.updateAgents(
          r.id,
          [a.agentCode],
          {
            status: d.state,
            finishedAt: now,
            ...(err ? { errorCode: err.code, errorMessage: err.message } : {}),
          },
          ['applying'],
        );
      } else if (timedOut) {
        await store.policyRollouts.updateAgents(
          r.id,
          [a.agentCode],
          {
            status: 'failed',
            finishedAt: now,
            errorCode: 'wave_timeout',
            errorMessage:
              `no applied/failed report of revision ${r.revision} within ${r.waveTimeoutMs} ms` +
              (d ? ` (last report: revision ${d.revision}, ${d.state})` : ''),
          },
          ['applying'],
        );
      }
    }
  }

  private async startWave(
    r: PolicyRolloutRow,
    wave: number,
    agents: readonly PolicyRolloutAgentRow[],
  ): Promise<void> {
    const { store, view, distributor, logger } = this.o;
    const now = new Date();
    const of = agents.filter((a) => a.wave === wave && a.status === 'pending');
    const online = of.filter((a) => view.get(a.agentCode)?.status === 'online');
    const gone = of.filter((a) => !online.includes(a));
    const updated = await store.policyRollouts.update(
      r.id,
      { currentWave: wave, waveStartedAt: now, nextWaveAt: null, message: `wave ${wave} of ${r.waveCount}` },
      { owner: this.owner },
    );
    if (!updated) return;
    await store.policyRollouts.updateAgents(
      r.id,
      gone.map((a) => a.agentCode),
      {
        status: 'skipped',
        finishedAt: now,
        errorCode: 'agent_offline',
        errorMessage: 'the agent was not online when its wave began',
      },
      ['pending'],
    );
    await store.policyRollouts.updateAgents(
      r.id,
      online.map((a) => a.agentCode),
      { status: 'applying', startedAt: now },
      ['pending'],
    );
    logger.info({ rollout: r.id, policy: r.policyName, wave, agents: online.length }, 'rollout wave started');
    const rev = await store.policies.revision(r.policyId, r.revision);
    if (!rev) return;
    const builder = new DesiredStateBuilder(store);
    const items: PushItem[] = [];
    for (const a of online) {
      const ag = view.get(a.agentCode);
      if (!ag) continue;
      try {
        items.push({
          agent_code: ag.agent_code,
          area: ag.area,
          controller_id: ag.controller_id,
          desired: await builder.build(r.policyId, r.revision, rev.spec as PolicySpec, ag),
        });
      } catch (err) {
        if (!(err instanceof DesiredStateError)) throw err;
        await store.policyRollouts.updateAgents(
          r.id,
          [a.agentCode],
          { status: 'failed', finishedAt: new Date(), errorCode: err.code, errorMessage: err.message },
          ['applying'],
        );
      }
    }
    const results = await distributor.push(items);
    for (const it of items) {
      const res = results.get(it.agent_code);
      if (res?.success) await store.policies.assign(it.agent_code, r.policyId, r.revision);
      else if (res?.error && !TRANSIENT.has(res.error.code))
        await store.policyRollouts.updateAgents(
          r.id,
          [it.agent_code],
          {
            status: 'failed',
            finishedAt: new Date(),
            errorCode: res.error.code,
            errorMessage: res.error.message,
          },
          ['applying'],
        );
    }
  }

  private async succeed(r: PolicyRolloutRow): Promise<void> {
    const { store, logger } = this.o;
    await store.transaction(async (tx) => {
      const done = await tx.policyRollouts.update(
        r.id,
        { status: 'succeeded', finishedAt: new Date(), message: `revision ${r.revision} applied` },
        { owner: this.owner, fromStatus: ['running'] },
      );
      if (done) await tx.policies.setApplied(r.policyId, r.revision);
    });
    logger.info({ rollout: r.id, policy: r.policyName, revision: r.revision }, 'policy rollout succeeded');
    this.o.changed?.();
  }

  private async halt(
    r: PolicyRolloutRow,
    agents: readonly PolicyRolloutAgentRow[],
    failures: number,
  ): Promise<void> {
    const { store, logger } = this.o;
    const rolled = await store.transaction(async (tx) => {
      const cur = await tx.policyRollouts.get(r.id);
      if (!cur || cur.owner !== this.owner || cur.status !== 'running') return undefined;
      const rev = await rollBack(tx, cur, agents, `rollout ${r.id} (halted)`);
      await tx.policyRollouts.update(
        r.id,
        {
          status: 'halted',
          finishedAt: new Date(),
          message:
            `halted: ${failures} failure${failures === 1 ? '' : 's'} (max_failures ${r.maxFailures})` +
            (rev !== null
              ? `; touched agents rolled back to revision ${r.previousRevision} (as revision ${rev})`
              : '; no previous revision to roll back to'),
        },
        { owner: this.owner },
      );
      return rev;
    });
    if (rolled === undefined) return;
    logger.warn(
      { rollout: r.id, policy: r.policyName, failures, rollback_revision: rolled },
      'policy rollout halted',
    );
    this.o.changed?.();
  }
}
