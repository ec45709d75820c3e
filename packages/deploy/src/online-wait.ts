/**
 * Waiting for a (re)started agent to be connected again, with the expected version, as its area's
 * controllers see it — and returning as soon as it is.
 *
 * "Connected again" must mean a connection made after the (re)start, not the old one the
 * controller has not dropped yet. The only clock used is each controller's own: the agent's
 * `last_heartbeat` there (a hello counts as a heartbeat) is compared with what the same
 * controller said before, never with another controller's or ours, so clock skew cannot fool it.
 *
 * The baseline is taken BEFORE the (re)start (onlineBaseline). Taking it from the first answer
 * after the restart — as this code once did — made every agent that was quicker than that first
 * question wait for its next heartbeat (a whole heartbeat interval): its new connection was the
 * baseline. From a baseline taken before, the new connection's hello is newer, and is accepted at
 * once. An old connection cannot pass for a new one afterwards: restart/start return only once
 * the old process is gone (systemctl and opsplane-agentctl wait for it), so its socket is closed
 * before the question leaves the server, and the controller lists the agent offline until it
 * says hello again.
 *
 * When the baseline is unknown (the controllers could not be asked) or the answer comes from a
 * controller the baseline is not from, that controller's first answer becomes its baseline —
 * safe, at the price of waiting for one heartbeat.
 */
import { setTimeout as delay } from 'node:timers/promises';
import { AgentNotFoundError } from '@opsplane/models';
import { AgentNotOnlineError, DeploymentCancelledError } from './deploy-errors.js';

/** What one controller of the area says of the agent. */
export interface AgentSighting {
  /** Id of the controller that answered. */
  controller: string;
  /** `online`, `offline`, … as the controller lists it. */
  status: string;
  version: string;
  /** The controller's own timestamp (ISO) of the agent's last hello or heartbeat. */
  lastHeartbeat: string;
}

/** How to ask after the agent, and for how long to wait. */
export interface OnlineWatch {
  /** For messages: the agent's code and area. */
  agent: string;
  area: string;
  /**
   * What a controller of the area says of the agent now. Rejects with AgentNotFoundError
   * (code agent_not_found) when no controller lists it, with another error when none could be
   * asked; the message is kept for the timeout error.
   */
  look(): Promise<AgentSighting>;
  timeoutMs: number;
  /**
   * Longest pause between two questions; default 500 ms. The first pauses are shorter (100 ms,
   * doubling): an agent usually connects within a second of its start.
   */
  pollMs?: number;
}

/** What the controllers knew of the agent before its (re)start. */
export type OnlineBaseline =
  { kind: 'unlisted' } | { kind: 'unknown' } | { kind: 'seen'; controller: string; heartbeatMs: number };

/** Asks once, before a (re)start; never throws (an unanswered question is an unknown baseline). */
export async function onlineBaseline(w: OnlineWatch): Promise<OnlineBaseline> {
  try {
    const s = await w.look();
    const heartbeatMs = Date.parse(s.lastHeartbeat);
    return Number.isFinite(heartbeatMs)
      ? { kind: 'seen', controller: s.controller, heartbeatMs }
      : { kind: 'unknown' };
  } catch (e) {
    return e instanceof AgentNotFoundError ? { kind: 'unlisted' } : { kind: 'unknown' };
  }
}

/** Turns an aborted signal into the cancellation the steps report (the reason when it is one). */
export function cancelledBy(signal: AbortSignal): DeploymentCancelledError {
  return signal.reason instanceof DeploymentCancelledError
    ? signal.reason
    : new DeploymentCancelledError(`stopped: ${String(signal.reason)}`);
}

/**
 * Resolves with the answering controller once the agent is online (with `version` when given)
 * from a connection newer than `baseline`; AgentNotOnlineError at the deadline,
 * DeploymentCancelledError when `signal` aborts.
 */
export async function waitOnline(
  w: OnlineWatch,
  baseline: OnlineBaseline,
  opts: { version?: string; signal: AbortSignal },
): Promise<{ controller: string }> {
  const { signal } = opts;
  const deadline = Date.now() + w.timeoutMs;
  // Per controller: the heartbeat a new connection must be later than.
  const seen = new Map<string, number>();
  if (baseline.kind === 'seen') seen.set(baseline.controller, baseline.heartbeatMs);
  let last = 'not listed by any controller';
  for (let asked = 0; ; asked++) {
    if (signal.aborted) throw cancelledBy(signal);
    try {
      const s = await w.look();
      const hb = Date.parse(s.lastHeartbeat);
      const before = seen.get(s.controller);
      const fresh = baseline.kind === 'unlisted' || (before !== undefined && hb > before);
      if (before === undefined && baseline.kind !== 'unlisted') seen.set(s.controller, hb);
      if (s.status !== 'online') last = `listed as ${s.status}`;
      else if (opts.version && s.version !== opts.version)
        last = `online as version ${s.version}, not ${opts.version}`;
      else if (!fresh) last = 'online, but not yet from a new connection';
      else return { controller: s.controller };
    } catch (e) {
      last = (e as Error).message;
    }
    if (Date.now() >= deadline) break;
    const pause = Math.min(w.pollMs ?? 500, 100 * 2 ** Math.min(asked, 10));
    await delay(pause, undefined, { signal }).catch(() => undefined);
  }
  throw new AgentNotOnlineError(
    `agent ${w.agent} did not show up online through the controllers of area ${w.area} within ${Math.round(w.timeoutMs / 1000)} s (last: ${last})`,
  );
}
