/**
 * ControllerTracker: turns discovery's update/delete callbacks into controllers_history rows —
 * a row opens when a controller appears (came_at) and closes when it leaves discovery
 * (went_at). Writes are queued in callback order (a came is never overtaken by its went) and a
 * failed write is logged, never thrown into discovery. Heartbeat rewrites only refresh
 * last_seen_at, at most once a minute per controller.
 *
 * After discovery's first sync, rows left open by a previous run for controllers that are gone
 * now are closed.
 */
import type { Controller } from '@opsplane/models';
import type { Logger } from '@opsplane/kit';
import type { Store } from '../storage/store.js';

const LAST_SEEN_EVERY_MS = 60_000;

interface Known {
  address: string;
  version: string;
  status: Controller['status'];
  agentCount: number;
  seenWrittenAt: number;
}

export type ControllerChange = 'came' | 'went' | 'changed' | 'heartbeat';

/** How a leader writes (fenced); undefined on a replica that does not lead (it writes nothing). */
export type HistoryWriter = <T>(fn: (tx: Store) => Promise<T>) => Promise<T>;

export class ControllerTracker {
  private readonly known = new Map<string, Known>();
  private readonly controllers = new Map<string, Controller>();
  private queue: Promise<void> = Promise.resolve();
  private stopped = false;
  private writer: HistoryWriter | undefined;

  constructor(
    private readonly logger: Logger,
    /** Told about every change (after the in-memory state is updated). */
    private readonly onChange: (change: ControllerChange, key: string) => void = () => undefined,
  ) {}

  /** For discovery.onControllerUpdate. */
  update(c: Controller): void {
    const key = `${c.area}/${c.id}`;
    const prev = this.known.get(key);
    const now = Date.now();
    const next: Known = {
      address: c.address,
      version: c.version,
      status: c.status,
      agentCount: c.agent_count,
      seenWrittenAt: prev?.seenWrittenAt ?? 0,
    };
    let change: ControllerChange;
    if (!prev) change = 'came';
    else if (prev.address !== c.address || prev.version !== c.version || prev.status !== c.status)
      change = 'changed';
    else if (prev.agentCount !== c.agent_count) change = 'changed';
    else change = 'heartbeat';
    const write = change === 'came' || change === 'changed' || now - next.seenWrittenAt >= LAST_SEEN_EVERY_MS;
    if (write) next.seenWrittenAt = now;
    this.known.set(key, next);
    this.controllers.set(key, c);
    if (change === 'came') this.logger.info({ controller: key, address: c.address }, 'controller came');
    if (write) this.enqueue((tx) => tx.controllersHistory.seen(c));
    this.onChange(change, key);
  }

  /** For discovery.onControllerDelete. */
  delete(key: string): void {
    this.known.delete(key);
    this.controllers.delete(key);
    const i = key.indexOf('/');
    const area = key.slice(0, i);
    const id = key.slice(i + 1);
    this.logger.info({ controller: key }, 'controller went');
    this.enqueue(async (tx) => void (await tx.controllersHistory.gone(area, id)));
    this.onChange('went', key);
  }

  /** After discovery's first sync: close rows of controllers that went while nobody watched. */
  reconcile(present: readonly Controller[]): void {
    const keys = new Set(present.map((c) => `${c.area}/${c.id}`));
    this.enqueue(async (tx) => {
      const closed = await tx.controllersHistory.closeAllExcept(keys);
      if (closed.length)
        this.logger.info({ controllers: closed }, 'closed history of controllers that went away');
    });
  }

  /** Resolves when every queued write is done. */
  flush(): Promise<void> {
    return this.queue;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.queue;
  }

  /**
   * This replica leads: history is written from now on (fenced by `writer`), starting with what
   * discovery knows now — rows of controllers that went while no leader watched are closed.
   */
  lead(writer: HistoryWriter, synced: boolean): void {
    this.writer = writer;
    const present = [...this.controllers.values()];
    for (const c of present) this.enqueue((tx) => tx.controllersHistory.seen(c));
    if (synced) this.reconcile(present);
  }

  /** Another replica leads: write nothing. */
  follow(): void {
    this.writer = undefined;
  }

  private enqueue(write: (tx: Store) => Promise<unknown>): void {
    const writer = this.writer;
    if (this.stopped || !writer) return;
    this.queue = this.queue
      .then(() => writer((tx) => write(tx)))
      .then(() => undefined)
      .catch((err: unknown) => this.logger.warn({ err }, 'could not record controller history'));
  }
}
