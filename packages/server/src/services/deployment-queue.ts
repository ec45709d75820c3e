/**
 * The worker side of the durable deployment queue: claims deployments from the database (at most
 * max_workers at a time, each rollout within its batch_size), runs them, and renews their leases
 * while they run. A deployment whose lease this server loses (another server took it over after
 * a stall) is aborted here. stop() aborts what runs and releases the leases at once, so the next
 * start — of this server or another — resumes those deployments instead of waiting them out.
 */
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { DeploymentsRepo } from '../storage/deployments-repo.js';
import type { DeploymentRow } from '../storage/schema.js';
import { SerialTask } from '@opsplane/kit';

export interface DeploymentQueueOptions {
  repo: DeploymentsRepo;
  maxWorkers: number;
  leaseMs: number;
  /** How often to look for work besides kick(). */
  pollMs: number;
  /** Runs one claimed deployment; resolves when it is finished (or aborted). */
  execute(row: DeploymentRow, signal: AbortSignal, owner: string): Promise<void>;
  logger: Logger;
  /** This server replica's id (server.replica_id), the first part of the lease owner. */
  replicaId?: string;
}

/** Why a running deployment was aborted (AbortSignal.reason). */
export type AbortReason = 'shutdown' | 'lease_lost';

export class DeploymentQueue {
  /** `<replica>:<random>` (`<host>:<pid>:<random>` without a replica id): this queue in lease_owner. */
  readonly owner: string;
  readonly #active = new Map<string, AbortController>();
  readonly #running = new Set<Promise<void>>();
  #pollTimer: NodeJS.Timeout | undefined;
  #leaseTimer: NodeJS.Timeout | undefined;
  readonly #claims = new SerialTask<void>(() => this.#pass());
  #stopped = false;

  constructor(private readonly opts: DeploymentQueueOptions) {
    this.owner = `${opts.replicaId ?? `${hostname()}:${process.pid}`}:${randomBytes(4).toString('hex')}`;
  }

  get activeCount(): number {
    return this.#active.size;
  }

  start(): void {
    this.#pollTimer = setInterval(() => this.kick(), this.opts.pollMs);
    this.#leaseTimer = setInterval(
      () => void this.#renew(),
      Math.max(500, Math.floor(this.opts.leaseMs / 3)),
    );
    this.kick();
  }

  /** Looks for work now (after a new rollout, a finished deployment, a cancel). */
  kick(): void {
    if (this.#stopped) return;
    this.#claims
      .run()
      .catch((err: unknown) =>
        this.opts.logger.warn({ err }, 'deployment queue: claiming failed; will retry'),
      );
  }

  async #pass(): Promise<void> {
    const free = this.opts.maxWorkers - this.#active.size;
    if (free <= 0) return;
    const rows = await this.opts.repo.claim({ owner: this.owner, leaseMs: this.opts.leaseMs, limit: free });
    for (const row of rows) {
      if (this.#stopped) break;
      const ac = new AbortController();
      this.#active.set(row.id, ac);
      const p = this.opts
        .execute(row, ac.signal, this.owner)
        .catch((err: unknown) =>
          this.opts.logger.error({ err, deployment: row.id }, 'deployment worker failed unexpectedly'),
        )
        .finally(() => {
          this.#active.delete(row.id);
          this.#running.delete(p);
          this.kick();
        });
      this.#running.add(p);
    }
  }

  async #renew(): Promise<void> {
    const ids = [...this.#active.keys()];
    if (ids.length === 0) return;
    try {
      const held = await this.opts.repo.renewLeases(this.owner, ids, this.opts.leaseMs);
      for (const id of ids) {
        if (!held.has(id) && this.#active.has(id)) {
          this.opts.logger.warn(
            { deployment: id },
            'deployment lease lost (finished elsewhere or taken over); aborting here',
          );
          this.#active.get(id)?.abort('lease_lost' satisfies AbortReason);
        }
      }
    } catch (err) {
      this.opts.logger.warn({ err }, 'deployment queue: lease renewal failed');
    }
  }

  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    clearInterval(this.#pollTimer);
    clearInterval(this.#leaseTimer);
    await this.#claims.idle();
    const ids = [...this.#active.keys()];
    for (const ac of this.#active.values()) ac.abort('shutdown' satisfies AbortReason);
    await Promise.allSettled([...this.#running]);
    if (ids.length > 0) {
      await this.opts.repo
        .releaseLeases(this.owner, ids)
        .catch((err: unknown) =>
          this.opts.logger.warn({ err }, 'could not release deployment leases; they will lapse'),
        );
      this.opts.logger.info({ deployments: ids.length }, 'running deployments handed back to the queue');
    }
  }
}
