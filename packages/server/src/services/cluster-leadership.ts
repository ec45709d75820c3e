/**
 * ClusterLeadership: which server replica does the work that must happen once cluster-wide —
 * alert evaluation and webhook delivery, device status sync, controller history. Replicas run an
 * etcd election (etcd3's Election, a lease of `ttlMs`): the one elected leads until its lease is
 * lost (it crashed, hung, or lost etcd), then another is elected within about the lease TTL.
 *
 * Fencing: a leader's term is the create revision of its campaign key in etcd (it only grows).
 * On election the term is recorded in the database (never lowered), and every write a leader
 * makes runs in a transaction that checks the recorded term is still its own (`fenced()`): a
 * leader that lost its lease and does not know yet cannot write over its successor.
 *
 * With an embedded database there is exactly one replica (the directory is locked), so it leads
 * without asking etcd — alerts and the rest keep working while etcd is away.
 *
 * Lifecycle: start() begins campaigning (never throws; retries while etcd is away); `elected`
 * and `demoted` events fire outside any lock; stop() resigns.
 */
import { EventEmitter } from 'node:events';
import type { Etcd3 } from 'etcd3';
import { backoffDelay, sleep, type Logger } from '@opsplane/kit';
import { FencedError } from '../storage/leadership-repo.js';
import type { Store } from '../storage/store.js';

export const CLUSTER_DUTY = 'cluster';
const ELECTION = 'opsplane/server-leader';

export interface ClusterLeadershipEvents {
  elected: [term: number];
  demoted: [];
}

export interface ClusterLeadershipOptions {
  store: Store;
  /** undefined: the database is embedded — lead alone. */
  etcd: Etcd3 | undefined;
  replicaId: string;
  ttlMs: number;
  logger: Logger;
}

export class ClusterLeadership extends EventEmitter<ClusterLeadershipEvents> {
  private term: number | undefined;
  private stopped = false;
  private loop: Promise<void> | undefined;
  private resign: (() => Promise<void>) | undefined;
  private wake: (() => void) | undefined;

  constructor(private readonly o: ClusterLeadershipOptions) {
    super();
  }

  get isLeader(): boolean {
    return this.term !== undefined;
  }

  get currentTerm(): number | undefined {
    return this.term;
  }

  start(): void {
    this.loop ??= this.run();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.wake?.();
    await this.resign?.().catch(() => undefined);
    await this.loop;
    this.demote('stopping');
  }

  /**
   * Runs `write` in a transaction that first checks this replica still holds the duty's term.
   * A fenced write demotes this replica (it lost the election and did not know).
   */
  async fenced<T>(write: (tx: Store) => Promise<T>): Promise<T> {
    const term = this.term;
    if (term === undefined) throw new FencedError(CLUSTER_DUTY, -1, undefined);
    try {
      return await this.o.store.transaction(async (tx) => {
        await tx.leadership.assert(CLUSTER_DUTY, term);
        return write(tx);
      });
    } catch (e) {
      if (e instanceof FencedError) this.demote('a newer leader holds the term');
      throw e;
    }
  }

  private demote(why: string): void {
    if (this.term === undefined) return;
    this.o.logger.warn({ term: this.term, why }, 'no longer the cluster leader');
    this.term = undefined;
    this.emit('demoted');
  }

  private async become(term: number): Promise<boolean> {
    // Recorded before acting: a stale leader's writes are refused from here on.
    const ok = await this.o.store.leadership.claim(CLUSTER_DUTY, term, this.o.replicaId);
    const current = await this.o.store.leadership.current(CLUSTER_DUTY);
    if (!ok && current?.term !== term) {
      this.o.logger.warn(
        { term, recorded: current?.term },
        'elected with an outdated term; campaigning again',
      );
      return false;
    }
    this.term = term;
    this.o.logger.info({ term, replica: this.o.replicaId }, 'elected cluster leader');
    this.emit('elected', term);
    return true;
  }

  private async run(): Promise<void> {
    const { etcd, logger } = this.o;
    for (let attempt = 1; !this.stopped; attempt++) {
      try {
        if (!etcd) {
          // Embedded database: the only replica. The term still grows across restarts.
          const prev = (await this.o.store.leadership.current(CLUSTER_DUTY))?.term ?? 0;
          if (await this.become(prev + 1)) await new Promise<void>((r) => (this.wake = r));
          return;
        }
        const campaign = etcd
          .election(ELECTION, Math.max(1, Math.round(this.o.ttlMs / 1000)))
          .campaign(this.o.replicaId);
        const lost = new Promise<Error>((resolve) => campaign.once('error', (e: Error) => resolve(e)));
        this.resign = () => campaign.resign();
        const elected = await Promise.race([campaign.wait().then(() => undefined), lost]);
        if (elected instanceof Error) throw elected;
        if (this.stopped) return;
        const key = await campaign.getCampaignKey();
        const res = await etcd.get(key).exec();
        const term = Number(res.kvs[0]?.create_revision ?? 0);
        if (!(await this.become(term))) {
          await campaign.resign().catch(() => undefined);
          continue;
        }
        attempt = 0;
        const err = await Promise.race([
          lost,
          new Promise<undefined>((r) => (this.wake = () => r(undefined))),
        ]);
        this.demote(err ? `lease lost: ${err.message}` : 'stopping');
      } catch (e) {
        if (this.stopped) return;
        this.demote('election failed');
        logger.warn({ err: (e as Error).message, attempt }, 'cluster leader election failed; trying again');
        await sleep(backoffDelay(attempt, 500, 5000));
      }
    }
  }
}
