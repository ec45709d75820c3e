/**
 * The convergence loop, a leader duty: every interval (and when kicked after a change) it
 * compares what each online agent reports (Agent.distribution: policy, revision) with what it
 * should run — its running rollout's revision while a rollout holds it, else the applied
 * revision of the policy it follows — and hands the desired state to those that differ through
 * their controller (Distributor). A new agent matching a policy gets it on first connect this
 * way. A push not reported yet is repeated after distribution.repush_after, not before.
 */
import type { Logger } from '@opsplane/kit';
import { SerialTask } from '@opsplane/kit';
import type { PolicySpec } from '@opsplane/api';
import type { AgentView } from '@opsplane/api';
import type { Store } from '../storage/store.js';
import { DesiredStateBuilder, policyFor } from './desired-state.js';
import type { Distributor, PushItem } from './distributor.js';
import type { FleetView } from './fleet-view.js';
import type { PolicyService } from './policies.js';

export interface ConvergenceOptions {
  store: Store;
  view: FleetView;
  policies: PolicyService;
  distributor: Distributor;
  intervalMs: number;
  repushAfterMs: number;
  logger: Logger;
}

export interface Target {
  policyId: string;
  revision: number;
  spec: PolicySpec;
}

/** What every agent (by code) should run now: rollout holds first, then the applied policies. */
export async function targetsFor(
  store: Store,
  policies: PolicyService,
  agents: readonly AgentView[],
): Promise<Map<string, Target>> {
  const applied = await policies.applied(store);
  const held = new Map<string, Target>();
  const specs = new Map<string, PolicySpec>();
  for (const r of await store.policyRollouts.active()) {
    const key = `${r.policyId}/${r.revision}`;
    if (!specs.has(key)) {
      const rev = await store.policies.revision(r.policyId, r.revision);
      if (!rev) continue;
      specs.set(key, rev.spec as PolicySpec);
    }
    for (const ag of await store.policyRollouts.agents(r.id))
      if (ag.status === 'applying' || ag.status === 'applied' || ag.status === 'failed')
        held.set(ag.agentCode, {
          policyId: r.policyId,
          revision: r.revision,
          spec: specs.get(key) as PolicySpec,
        });
  }
  const out = new Map<string, Target>();
  for (const ag of agents) {
    const h = held.get(ag.agent_code);
    if (h) {
      out.set(ag.agent_code, h);
      continue;
    }
    const p = policyFor(ag, applied);
    if (p) out.set(ag.agent_code, { policyId: p.id, revision: p.revision, spec: p.spec });
  }
  return out;
}

export class ConvergenceLoop {
  private timer: NodeJS.Timeout | undefined;
  private kickTimer: NodeJS.Timeout | undefined;
  private running = false;
  private readonly task = new SerialTask<void>(() => this.run());
  /** agent code → the target last pushed and when. */
  private readonly pushed = new Map<string, { key: string; at: number }>();
  private runs = 0;

  constructor(private readonly o: ConvergenceOptions) {}

  start(): void {
    if (this.running) return;
    this.running = true;
    this.pushed.clear();
    this.timer = setInterval(() => this.kick(0), this.o.intervalMs);
    this.kick(0);
  }

  async stop(): Promise<void> {
    this.running = false;
    clearInterval(this.timer);
    clearTimeout(this.kickTimer);
    await this.task.run().catch(() => undefined);
  }

  get isRunning(): boolean {
    return this.running;
  }

  /** Runs soon (coalescing bursts). */
  kick(delayMs = 100): void {
    if (!this.running || this.kickTimer) return;
    this.kickTimer = setTimeout(() => {
      this.kickTimer = undefined;
      if (this.running)
        this.task.run().catch((err: unknown) => this.o.logger.warn({ err }, 'convergence run failed'));
    }, delayMs);
    this.kickTimer.unref();
  }

  /** Completed runs (tests wait on it). */
  get runCount(): number {
    return this.runs;
  }

  private async run(): Promise<void> {
    if (!this.running) return;
    const { store, view, policies, distributor, logger } = this.o;
    const agents = view.current.all().filter((a) => a.status === 'online');
    const targets = await targetsFor(store, policies, agents);
    const builder = new DesiredStateBuilder(store);
    const now = Date.now();
    const items: PushItem[] = [];
    const assignments = new Map((await store.policies.assignments()).map((a) => [a.agentCode, a]));
    for (const ag of agents) {
      const t = targets.get(ag.agent_code);
      if (!t) continue;
      const d = ag.distribution;
      const key = `${t.policyId}/${t.revision}`;
      if (d && d.policy === t.policyId && d.revision === t.revision) {
        const a = assignments.get(ag.agent_code);
        if (!a || a.policyId !== t.policyId || a.revision !== t.revision)
          await store.policies.assign(ag.agent_code, t.policyId, t.revision);
        continue;
      }
      const last = this.pushed.get(ag.agent_code);
      if (last && last.key === key && now - last.at < this.o.repushAfterMs) continue;
      try {
        items.push({
          agent_code: ag.agent_code,
          area: ag.area,
          controller_id: ag.controller_id,
          desired: await builder.build(t.policyId, t.revision, t.spec, ag),
        });
      } catch (err) {
        logger.warn({ agent: ag.agent_code, err: (err as Error).message }, 'no desired state for agent');
        this.pushed.set(ag.agent_code, { key, at: now });
      }
    }
    if (items.length > 0) {
      const results = await distributor.push(items);
      let ok = 0;
      for (const it of items) {
        const r = results.get(it.agent_code);
        this.pushed.set(it.agent_code, {
          key: `${it.desired.policy}/${it.desired.revision}`,
          at: Date.now(),
        });
        if (r?.success) {
          ok++;
          await store.policies.assign(it.agent_code, it.desired.policy, it.desired.revision);
        } else
          logger.warn(
            { agent: it.agent_code, error: r?.error },
            'desired state not accepted; retried after distribution.repush_after',
          );
      }
      logger.info({ pushed: items.length, accepted: ok }, 'desired states handed to agents');
    }
    this.runs++;
  }
}
