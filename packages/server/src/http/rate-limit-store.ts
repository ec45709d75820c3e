/**
 * The login rate limit counted in the database (storage's rate_limits), so that every server
 * replica behind a load balancer counts the same attempts — an @fastify/rate-limit store.
 * While the database is away the limit is not enforced (`skipOnError`): the login fails with
 * 503 anyway, since it needs the database too.
 */
import type { FastifyRateLimitStore } from '@fastify/rate-limit';

export interface RateCounter {
  hit(key: string, windowMs: number): Promise<{ count: number; resetAt: Date }>;
}

/** A store class bound to `counter` (the plugin constructs it). */
export function databaseRateLimitStore(
  counter: RateCounter,
): new (options?: unknown) => FastifyRateLimitStore {
  class DatabaseRateLimitStore implements FastifyRateLimitStore {
    // The plugin passes its options; the key prefix is ours, set per route by child().
    prefix = 'rl';

    incr(
      key: string,
      callback: (error: Error | null, result?: { current: number; ttl: number }) => void,
      timeWindow: number,
    ): void {
      counter.hit(`${this.prefix}:${key}`, timeWindow).then(
        ({ count, resetAt }) =>
          callback(null, { current: count, ttl: Math.max(0, resetAt.getTime() - Date.now()) }),
        (err: Error) => callback(err),
      );
    }

    child(routeOptions: { path: string }): FastifyRateLimitStore {
      const store = new DatabaseRateLimitStore();
      store.prefix = `rl:${routeOptions.path}`;
      return store;
    }
  }
  return DatabaseRateLimitStore;
}
