/** Exponential backoff with jitter, shared by reconnects and package restarts. */

/**
 * Delay before attempt `attempt` (0-based): initial·2^attempt capped at max, then ±jitter so
 * that a fleet of agents cut off together does not reconnect in lockstep.
 */
export function backoffDelay(attempt: number, initialMs: number, maxMs: number, jitter = 0.2): number {
  const base = Math.min(maxMs, initialMs * 2 ** Math.min(attempt, 30));
  const spread = base * jitter;
  const jittered = base - spread + Math.random() * 2 * spread;
  return Math.max(0, Math.round(Math.min(maxMs, jittered)));
}
