/**
 * Exponential backoff with jitter, shared by every retry loop (etcd watches and leases,
 * controller requests, agent reconnects, package restarts) so that many processes cut off
 * together do not retry in lockstep.
 */

/**
 * Delay before retry number `attempt` (1 = first retry): min(max, initial·2^(attempt−1)), then
 * shortened by up to `jitter` of itself at random. The default 0.5 is "equal jitter" (half
 * fixed, half random); a smaller jitter keeps delays closer to the schedule.
 */
export function backoffDelay(attempt: number, initialMs: number, maxMs: number, jitter = 0.5): number {
  const exp = Math.min(maxMs, initialMs * 2 ** Math.min(Math.max(attempt - 1, 0), 30));
  return Math.round(exp * (1 - jitter * Math.random()));
}
