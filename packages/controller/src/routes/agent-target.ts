/**
 * Where a single-agent request is answered: here if the agent is connected here, else by the
 * peer controller that holds it (the peer's answer is relayed as is), else 503 if we know it as
 * offline, else 404. A request that a peer forwarded to us is answered only for agents
 * connected here, so forwarding is one hop and never loops.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { AgentCodeSchema, AgentNotFoundError } from '@opsplane/models';
import type { AgentConnection } from '../agent-connection.js';
import type { AgentRecord } from '../agent-registry.js';
import type { ControllerContext } from '../context.js';
import { AgentOfflineError } from '../errors.js';
import { FORWARDED_HEADER } from '../peer-forwarder.js';

export const AgentParamsSchema = z.object({ agent_id: AgentCodeSchema });

export function isForwarded(req: FastifyRequest): boolean {
  return req.headers[FORWARDED_HEADER] === '1';
}

export type Resolved<T> = { kind: 'value'; value: T } | { kind: 'relayed' };

/**
 * Runs `local` with the agent's connection, or relays a peer's answer. `offline` (optional)
 * answers for an agent known here but not connected anywhere; by default that is a 503.
 */
export async function onAgent<T>(
  ctx: ControllerContext,
  req: FastifyRequest,
  reply: FastifyReply,
  agentId: string,
  local: (conn: AgentConnection) => Promise<T>,
  offline?: (rec: AgentRecord) => T,
): Promise<Resolved<T>> {
  const conn = ctx.registry.connectionOf(agentId);
  if (conn) return { kind: 'value', value: await local(conn) };
  const forwarded = isForwarded(req);
  if (forwarded) {
    throw new AgentNotFoundError(
      agentId,
      `agent '${agentId}' is not connected to controller '${ctx.config.id}'`,
    );
  }
  if (ctx.forwarder) {
    const answer = await ctx.forwarder.get(
      req.url,
      ctx.config.agents.requestTimeoutMs + ctx.config.peers.timeoutMarginMs,
    );
    if (answer) {
      await reply
        .code(answer.status)
        .type(answer.contentType)
        .header('x-opsplane-served-by', answer.peer)
        .send(answer.body);
      return { kind: 'relayed' };
    }
  }
  const rec = ctx.registry.get(agentId);
  if (rec) {
    if (offline) return { kind: 'value', value: offline(rec) };
    throw new AgentOfflineError(
      agentId,
      `agent '${agentId}' is offline (disconnected at ${new Date(rec.offlineSinceMs).toISOString()}) and not connected to any other controller of area '${ctx.config.area}'`,
    );
  }
  throw new AgentNotFoundError(
    agentId,
    `agent '${agentId}' is not connected to any controller of area '${ctx.config.area}'`,
  );
}
