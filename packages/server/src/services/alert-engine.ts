/**
 * AlertEngine: evaluates the alert rules and keeps the alerts table in step — fires (after
 * `pending_for`), keeps firing (last_seen), resolves — and hands every fire and resolve to the
 * notifier. The state rules are in alert-rules.ts; deployment_failed is here, since it reads
 * the database rather than live state: a deployment that finished failed fires once (warning)
 * and resolves when a later deployment of the same device succeeds (or the device is deleted).
 *
 * Evaluation runs after every agent-view build, when discovery reports a controller came, went
 * or changed status, when a deployment changes, and on a timer (`server.alerts.interval`) —
 * coalesced and single-flight. A condition must hold for `pending_for` before it fires; the
 * engine wakes itself when a pending condition is due. Deployment failures fire at once (they
 * are events, not states).
 *
 * Several servers may share one PostgreSQL database: each evaluates, and the partial unique
 * index plus compare-and-set resolves make sure each fire and resolve is stored — and
 * notified — once.
 */
import type { Logger } from 'pino';
import type { Controller } from '@opsplane/models';
import type { AgentView, Alert, AlertKind, AlertStatus } from '@opsplane/api';
import type { NewAlert } from '../storage/alerts-repo.js';
import { silenceOf, toAlert } from './alerts.js';
import type { AlertRow, SilenceRow } from '../storage/schema.js';
import type { Store } from '../storage/store.js';
import {
  agentRules,
  controllerRule,
  scanAgents,
  STATE_KINDS,
  type AgentScan,
  type Condition,
  type RuleResult,
  type SeenController,
} from './alert-rules.js';
import type { DeploymentService } from './deployments.js';
import type { PlatformServices } from './platform.js';
import { SerialTask } from '@opsplane/kit';

/** One usable build of the agent view. */
export interface AgentsSnapshot {
  /** Changes with every build (scans are redone only then). */
  version: number;
  agents: readonly AgentView[];
  get(code: string): AgentView | undefined;
  /** Areas the build could not fully list: their agents' state is unknown. */
  errorAreas: ReadonlySet<string>;
}

/** Where the engine reads live state from (the platform services; fakes in unit tests). */
export interface AlertSources {
  controllers(): { synced: boolean; controllers: readonly Controller[] };
  /** undefined while the view cannot be trusted (never built, discovery unsynced, refresh failed). */
  agents(): AgentsSnapshot | undefined;
  /** Calls `onChange` when something evaluation depends on changed; returns the unsubscribe. */
  subscribe(onChange: (reason: string) => void): () => void;
}

export interface AlertEngineOptions {
  store: Store;
  sources: AlertSources;
  /**
   * Runs an alert change in a transaction — fenced by the cluster leadership in the server, so a
   * replica that lost the election cannot fire or resolve (default: a plain transaction).
   */
  write?: <T>(fn: (tx: Store) => Promise<T>) => Promise<T>;
  /** Queues the notification of a change, in the change's transaction (the webhook outbox). */
  notify?: (tx: Store, event: AlertStatus, alert: Alert) => Promise<void>;
  intervalMs: number;
  pendingForMs: number;
  logger: Logger;
  /** Failed deployments older than this when first evaluated do not alert (default 24 h). */
  deploymentLookbackMs?: number;
}

// Coalesces bursts: a rollout emits a change per step of every deployment.
const DEBOUNCE_MS = 250;

export function platformAlertSources(
  platform: PlatformServices,
  deployments?: DeploymentService,
): AlertSources {
  return {
    controllers: () => ({
      synced: platform.discoveryState().synced,
      controllers: platform.listControllers(),
    }),
    agents: () => {
      const snap = platform.view.snapshot();
      if (!snap.refreshedAt || snap.errors.some((e) => e.area === '')) return undefined;
      const index = platform.view.current;
      return {
        version: platform.view.refreshCount,
        agents: index.all(),
        get: (code) => index.get(code),
        errorAreas: new Set(snap.errors.map((e) => e.area)),
      };
    },
    subscribe(onChange) {
      // Heartbeat rewrites are updates too; only a new controller or a status flip matters here.
      const statuses = new Map<string, string>();
      const offUpdate = platform.discovery.onControllerUpdate((c) => {
        const key = `${c.area}/${c.id}`;
        if (statuses.get(key) === c.status) return;
        statuses.set(key, c.status);
        onChange('controller changed');
      });
      const offDelete = platform.discovery.onControllerDelete((key) => {
        statuses.delete(key);
        onChange('controller went');
      });
      const offView = platform.view.onRefresh(() => onChange('agent view refreshed'));
      const onDeployment = () => onChange('deployment changed');
      deployments?.on('change', onDeployment);
      return () => {
        offUpdate();
        offDelete();
        offView();
        deployments?.off('change', onDeployment);
      };
    },
  };
}

export class AlertEngine {
  readonly #o: AlertEngineOptions;
  readonly #log: Logger;
  /** Subject → when its condition was first observed (ms), for conditions not firing yet. */
  readonly #pending = new Map<string, number>();
  readonly #seenControllers = new Map<string, SeenController>();
  readonly #seenOnline = new Set<string>();
  #scan: { version: number; scan: AgentScan } | undefined;
  #timer: NodeJS.Timeout | undefined;
  #debounce: NodeJS.Timeout | undefined;
  #wake: { at: number; timer: NodeJS.Timeout } | undefined;
  #unsubscribe: (() => void) | undefined;
  readonly #pass = new SerialTask<void>(() => this.#run());
  #stopped = false;
  #evaluations = 0;
  /** Active silences, read at the start of each evaluation. */
  #silences: SilenceRow[] = [];

  constructor(opts: AlertEngineOptions) {
    this.#o = opts;
    this.#log = opts.logger.child({ component: 'alerts' });
  }

  /** Completed evaluations (tests wait on it). */
  get evaluations(): number {
    return this.#evaluations;
  }

  /**
   * Starts evaluating (again, after a stop: a new leader starts from what the database says —
   * the firing alerts, the agents and controllers earlier leaders saw). Resolves once that
   * state is loaded (or could not be: the first evaluation loads it then).
   */
  start(): Promise<void> {
    this.#stopped = false;
    this.#pending.clear();
    this.#scan = undefined;
    this.#primed = false;
    this.#unsubscribe = this.#o.sources.subscribe((reason) => this.trigger(reason));
    this.#timer = setInterval(() => this.trigger('timer'), this.#o.intervalMs);
    this.#timer.unref();
    this.trigger('start');
    return this.#prime().catch((err: unknown) =>
      this.#log.warn({ err }, 'loading what earlier leaders saw failed; trying again on the next evaluation'),
    );
  }

  #primed = false;

  async #prime(): Promise<void> {
    if (this.#primed) return;
    const { alerts } = this.#o.store;
    const [agents, controllers] = await Promise.all([alerts.seenAgents(), alerts.presentControllers()]);
    for (const code of agents) this.#seenOnline.add(code);
    for (const c of controllers) this.#seenControllers.set(`${c.area}/${c.id}`, c);
    this.#primed = true;
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#unsubscribe?.();
    clearInterval(this.#timer);
    clearTimeout(this.#debounce);
    clearTimeout(this.#wake?.timer);
    await this.#pass.idle();
  }

  /** Evaluates soon, coalescing bursts (a deployment emits a change per step). */
  trigger(reason: string): void {
    if (this.#stopped || this.#debounce) return;
    this.#debounce = setTimeout(() => {
      this.#debounce = undefined;
      this.evaluate().catch((err: unknown) => {
        if (!this.#stopped) this.#log.warn({ err, reason }, 'alert evaluation failed');
      });
    }, DEBOUNCE_MS);
    this.#debounce.unref();
  }

  /** Resolves once an evaluation that started after this call has finished. */
  evaluate(): Promise<void> {
    if (this.#stopped) return Promise.resolve();
    return this.#pass.run();
  }

  async #run(): Promise<void> {
    const { store, sources } = this.#o;
    const now = Date.now();
    this.#silences = await store.silences.list(false);
    const firing = await store.alerts.firing();
    await this.#prime();
    const snapshot = sources.agents();
    if (snapshot && this.#scan?.version !== snapshot.version) {
      const scan = scanAgents(snapshot.agents, snapshot.errorAreas, this.#seenOnline);
      if (scan.newlySeen.length > 0) {
        await store.alerts.recordSeenAgents(scan.newlySeen).catch((err: unknown) => {
          // Not recorded: seen again on the next scan.
          for (const code of scan.newlySeen) this.#seenOnline.delete(code);
          throw err;
        });
      }
      this.#scan = { version: snapshot.version, scan };
    }
    const results: RuleResult[] = [
      controllerRule(sources.controllers(), this.#seenControllers, firing),
      await agentRules({
        scan: snapshot ? this.#scan?.scan : undefined,
        seenOnline: this.#seenOnline,
        firing,
        listed: (code) => snapshot?.get(code) !== undefined,
        deviceStatuses: (codes) => store.devices.statusesOf(codes),
      }),
    ];
    await this.#applyStates(results, firing, now);
    await this.#deploymentRule(firing, now);
    this.#evaluations++;
  }

  /** Conditions → fire (once due) or keep firing; firing alerts no rule holds any more → resolve. */
  async #applyStates(
    results: readonly RuleResult[],
    firing: readonly AlertRow[],
    now: number,
  ): Promise<void> {
    const pendingFor = this.#o.pendingForMs;
    const conditions = new Map<string, Condition>();
    for (const r of results) for (const c of r.conditions) conditions.set(c.subject, c);
    const held = (subject: string) => results.some((r) => r.held(subject));
    const bySubject = new Map(firing.map((a) => [a.subject, a]));
    const unchanged: string[] = [];
    let nextDue = Infinity;
    for (const c of conditions.values()) {
      const open = bySubject.get(c.subject);
      if (open) {
        this.#pending.delete(c.subject);
        if (open.message === c.message) unchanged.push(open.id);
        else await this.#o.store.alerts.touch(open.id, c);
        continue;
      }
      const since = this.#pending.get(c.subject) ?? now;
      if (now - since >= pendingFor) {
        this.#pending.delete(c.subject);
        await this.#fire({ ...c, firstSeen: new Date(since) });
      } else {
        this.#pending.set(c.subject, since);
        nextDue = Math.min(nextDue, since + pendingFor);
      }
    }
    await this.#o.store.alerts.touchAll(unchanged);
    // A condition that cleared before it was due never fires (the blip pages nobody).
    for (const subject of [...this.#pending.keys()])
      if (!conditions.has(subject) && !held(subject)) this.#pending.delete(subject);
    for (const a of firing) {
      if (!STATE_KINDS.includes(a.kind as AlertKind) || conditions.has(a.subject) || held(a.subject))
        continue;
      await this.#resolve(a, 'the condition cleared');
    }
    if (nextDue !== Infinity) this.#wakeAt(nextDue);
  }

  async #deploymentRule(firing: readonly AlertRow[], now: number): Promise<void> {
    const alerts = this.#o.store.alerts;
    const lookback = this.#o.deploymentLookbackMs ?? 24 * 3600_000;
    for (const d of await alerts.unalertedDeploymentFailures(new Date(now - lookback))) {
      await this.#fire({
        kind: 'deployment_failed',
        severity: 'warning',
        subject: `deployment:${d.id}`,
        area: d.area,
        title: `Deployment (${d.type}) on ${d.deviceName} failed`,
        message: `${d.type} on device ${d.deviceName} (area ${d.area}) failed${d.errorCode ? ` [${d.errorCode}]` : ''}: ${d.error ?? 'no error recorded'}`,
        labels: {
          area: d.area,
          deployment_id: d.id,
          rollout_id: d.rolloutId,
          type: d.type,
          device_name: d.deviceName,
          ...(d.deviceId ? { device_id: d.deviceId } : {}),
          ...(d.errorCode ? { error_code: d.errorCode } : {}),
        },
        ...(d.finishedAt ? { firstSeen: d.finishedAt } : {}),
      });
    }
    const open = firing.filter((a) => a.kind === 'deployment_failed');
    if (open.length === 0) return;
    const settled = await alerts.settledDeployments(open.map((a) => a.subject.slice('deployment:'.length)));
    for (const a of open) {
      const why = settled.get(a.subject.slice('deployment:'.length));
      if (why) await this.#resolve(a, why);
    }
  }

  #write<T>(fn: (tx: Store) => Promise<T>): Promise<T> {
    return this.#o.write ? this.#o.write(fn) : this.#o.store.transaction(fn);
  }

  async #fire(a: NewAlert): Promise<void> {
    const row = await this.#write(async (tx) => {
      const r = await tx.alerts.fire(a);
      if (r) await this.#notify(tx, 'firing', r);
      return r;
    });
    if (!row) return; // fires already (another server was first)
    this.#log.warn({ alert: row.id, kind: row.kind, subject: row.subject }, `alert firing: ${row.title}`);
  }

  async #resolve(a: AlertRow, why: string): Promise<void> {
    const row = await this.#write(async (tx) => {
      const r = await tx.alerts.resolve(a.id);
      if (r) await this.#notify(tx, 'resolved', r);
      return r;
    });
    if (!row) return;
    this.#log.info(
      { alert: row.id, kind: row.kind, subject: row.subject, why },
      `alert resolved: ${row.title}`,
    );
  }

  /** Queues the change's notification (in its transaction), unless an active silence matches. */
  async #notify(tx: Store, event: AlertStatus, row: AlertRow): Promise<void> {
    const silence = silenceOf(this.#silences, row);
    if (silence) {
      this.#log.info({ alert: row.id, silence: silence.id, event }, 'alert silenced: not notified');
      return;
    }
    await this.#o.notify?.(tx, event, toAlert(row));
  }

  /** Evaluates again when the earliest pending condition is due. */
  #wakeAt(at: number): void {
    if (this.#stopped || (this.#wake && this.#wake.at <= at)) return;
    clearTimeout(this.#wake?.timer);
    const timer = setTimeout(
      () => {
        this.#wake = undefined;
        this.trigger('pending condition due');
      },
      Math.max(0, at - Date.now()),
    );
    timer.unref();
    this.#wake = { at, timer };
  }
}
