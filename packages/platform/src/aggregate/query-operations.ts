/**
 * queryOperationAcrossAreas: what the agents' journals say about an operation id, across areas,
 * without acting — how a platform that crashed mid-batch learns the true outcome of every
 * (agent, package) once it is back. Every online controller of an area is asked for the agents
 * it holds; agents no controller holds yet (still reconnecting, or their controller is down) are
 * asked again until the deadline, then reported `unreachable`; an operation still in flight on
 * its agent is asked about again until it finishes or the deadline passes.
 */
import { sleep, type Logger } from '@opsplane/kit';
import type { OperationQueryEntry } from '@opsplane/models';
import { createLogger } from '@opsplane/kit';
import type { ControllerClientPool } from '../pool/controller-client-pool.js';
import { abortReason } from './errors.js';

export interface QueryOperationOptions {
  /** How long to keep looking for agents nobody holds yet. Default 30 s. */
  timeoutMs?: number;
  /** One controller call. Default 10 s. */
  callTimeoutMs?: number;
  pollMs?: number;
  signal?: AbortSignal;
  logger?: Logger;
}

export async function queryOperationAcrossAreas(
  pool: Pick<ControllerClientPool, 'onlineControllers'>,
  groups: ReadonlyMap<string, readonly string[]>,
  operationId: string,
  options: QueryOperationOptions = {},
): Promise<Map<string, OperationQueryEntry[]>> {
  const log = options.logger ?? createLogger('query-operations');
  const deadline = Date.now() + (options.timeoutMs ?? 30_000);
  const out = new Map<string, OperationQueryEntry[]>();
  await Promise.all(
    [...groups].map(async ([area, agents]) => {
      const pending = new Set(agents);
      for (let round = 0; pending.size > 0; round++) {
        if (options.signal?.aborted) throw abortReason(options.signal);
        if (round > 0) {
          if (Date.now() >= deadline) break;
          await sleep(Math.min(options.pollMs ?? 500, deadline - Date.now()), options.signal);
        }
        const ask = [...pending];
        await Promise.all(
          pool.onlineControllers(area).map(async (pc) => {
            try {
              const res = await pc.client.queryOperations(
                { agents: ask, operation_id: operationId },
                options.signal,
                {
                  heldOnly: true,
                  timeoutMs: Math.max(100, Math.min(options.callTimeoutMs ?? 10_000, deadline - Date.now())),
                },
              );
              const byAgent = new Map<string, OperationQueryEntry[]>();
              for (const e of res.entries) {
                if (e.state === 'unreachable' || !pending.has(e.agent_code)) continue;
                byAgent.set(e.agent_code, [...(byAgent.get(e.agent_code) ?? []), e]);
              }
              for (const [agent, entries] of byAgent) {
                if (!pending.has(agent)) continue;
                out.set(agent, entries);
                // Still running on the agent: ask again for its result.
                if (!entries.some((e) => e.state === 'in_flight')) pending.delete(agent);
              }
            } catch (err) {
              log.warn({ area, controller: pc.key, err: (err as Error).message }, 'operations query failed');
            }
          }),
        );
      }
      for (const agent of pending)
        if (!out.has(agent)) out.set(agent, [{ agent_code: agent, package: '', state: 'unreachable' }]);
    }),
  );
  return out;
}
