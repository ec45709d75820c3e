/**
 * Revoked agents, as the platform publishes them in etcd (`revocations/agents/<code>`): a full
 * read at start, then a watch. Every put calls `onRevoked` at once (the controller closes the
 * agent's socket with CLOSE_CODES.revoked) and the code is refused at every later upgrade; a
 * delete (the platform reinstated it) lets it in again. A compacted or broken watch is replaced
 * by a fresh read-and-watch, so a revocation is never missed for long.
 */
import type { Etcd3, IKeyValue, Watcher } from 'etcd3';
import { REVOCATIONS_PREFIX } from '@opsplane/models';
import type { Logger } from '@opsplane/kit';

export interface RevocationWatcherOptions {
  etcd: Etcd3;
  /** Root of the keys (the controllers' prefix's sibling): default ''. */
  root?: string;
  onRevoked: (code: string) => void;
  logger: Logger;
  /** Retry delay after a failed read or a broken watch. */
  retryMs?: number;
}

export class RevocationWatcher {
  private readonly revoked = new Set<string>();
  private watcher: Watcher | undefined;
  private stopped = false;
  private loaded = false;
  private retryTimer: NodeJS.Timeout | undefined;
  private readonly prefix: string;

  constructor(private readonly opts: RevocationWatcherOptions) {
    this.prefix = `${opts.root ?? ''}${REVOCATIONS_PREFIX}`;
  }

  /** Whether the list has been read from etcd at least once. */
  get ready(): boolean {
    return this.loaded;
  }

  isRevoked(code: string): boolean {
    return this.revoked.has(code);
  }

  get size(): number {
    return this.revoked.size;
  }

  /** Starts in the background (never throws; retries while etcd is away). */
  start(): void {
    void this.sync();
  }

  private codeOf(key: string): string {
    return key.slice(this.prefix.length);
  }

  private async sync(): Promise<void> {
    if (this.stopped) return;
    try {
      const res = await this.opts.etcd.getAll().prefix(this.prefix).exec();
      const now = new Set(res.kvs.map((kv) => this.codeOf(kv.key.toString())));
      for (const code of [...this.revoked]) if (!now.has(code)) this.revoked.delete(code);
      for (const code of now) this.add(code);
      this.loaded = true;
      const watcher = await this.opts.etcd
        .watch()
        .prefix(this.prefix)
        .startRevision(String(Number(res.header.revision) + 1))
        .create();
      if (this.stopped) {
        await watcher.cancel();
        return;
      }
      this.watcher = watcher;
      watcher.on('put', (kv: IKeyValue) => this.add(this.codeOf(kv.key.toString())));
      watcher.on('delete', (kv: IKeyValue) => {
        const code = this.codeOf(kv.key.toString());
        if (this.revoked.delete(code))
          this.opts.logger.info({ agent: code }, 'agent reinstated by the platform');
      });
      watcher.on('error', (err: Error) => {
        this.opts.logger.warn({ err: err.message }, 'revocation watch failed; re-reading');
        void watcher.cancel().catch(() => undefined);
        if (this.watcher === watcher) this.watcher = undefined;
        this.retry();
      });
    } catch (err) {
      this.opts.logger.warn(
        { err: (err as Error).message },
        'cannot read revocations from etcd yet; retrying',
      );
      this.retry();
    }
  }

  private retry(): void {
    if (this.stopped) return;
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => void this.sync(), this.opts.retryMs ?? 1000);
    this.retryTimer.unref();
  }

  private add(code: string): void {
    if (code === '' || this.revoked.has(code)) return;
    this.revoked.add(code);
    this.opts.logger.warn({ agent: code }, 'agent revoked by the platform');
    this.opts.onRevoked(code);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    await this.watcher?.cancel().catch(() => undefined);
  }
}
