/**
 * Exponential backoff with "equal jitter" (half fixed, half random), shared by every retry loop
 * in the library so that many processes retrying against one etcd or controller spread out.
 */

/** Delay before retry number `attempt` (1 = first retry): min(max, initial·2^(attempt−1)), jittered to [½, 1]. */
export function backoffDelay(attempt: number, initialMs: number, maxMs: number): number {
  const exp = Math.min(maxMs, initialMs * 2 ** Math.min(Math.max(attempt - 1, 0), 30));
  return exp / 2 + Math.random() * (exp / 2);
}
