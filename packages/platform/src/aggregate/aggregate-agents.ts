/**
 * aggregateAgents: the cross-area agent view (guide §3.2, done properly). Every page from every
 * online controller of every area is listed (controllers concurrently, bounded by a limiter;
 * pages of one controller in sequence), controllers of an area are merged (dedupe by agent id,
 * newest heartbeat wins, remembering which controller holds the winner), and every failure is
 * reported in `errors` — the guide's version logged and `continue`d, silently shrinking the
 * fleet. An area whose controllers are all offline is reported too, one error per controller.
 */
import {
  MAX_PAGE_SIZE,
  timestampMs,
  type Agent,
  type AgentFilters,
  type AgentStatus,
  type Controller,
} from '@opsplane/models';
import { ConcurrencyLimiter } from '../concurrency/limiter.js';
import type { ControllerClientPool, PooledController } from '../pool/controller-client-pool.js';
import { abortReason, toWireError, type WireError } from './errors.js';

/** One agent in the aggregated view (guide §4.2 in snake_case) plus its full record. */
export interface AggregatedAgent {
  id: string;
  /** Globally unique; equals `id` (falls back to it when the controller left it empty). */
  agent_code: string;
  /** The area of the controller that reported the winning record. */
  area: string;
  /**
   * The controller that holds the agent: the record's `controller_id` (controllers list their
   * peers' agents too), else the controller that listed it (a Go controller's record has none).
   */
  controller_id: string;
  /** Filled by callers that join with the device inventory. */
  device_id?: string;
  address: string;
  hostname: string;
  status: AgentStatus;
  health_status: string;
  service_count: number;
  last_heartbeat: string;
  version: string;
  /** The agent record as the controller returned it. */
  agent: Agent;
}

export interface AggregationError {
  area: string;
  /** '' when the area has no controller at all. */
  controller_id: string;
  error: WireError;
}

export interface AggregateAgentsResult {
  /** Sorted by area, then id. */
  agents: AggregatedAgent[];
  errors: AggregationError[];
}

export interface AggregateAgentsOptions {
  /** Page size for listing. Default 500. */
  pageSize?: number;
  signal?: AbortSignal;
  /** Bounds how many controllers are listed at once. Default: a limiter of 10 (max_workers). */
  limiter?: ConcurrencyLimiter;
  /** Passed to every controller. */
  filters?: AgentFilters;
  /**
   * Areas expected to exist (e.g. every function_area in the device inventory). Those with no
   * controller at all are reported as errors; without this only discovered areas are listed.
   */
  areas?: readonly string[];
}

/** What aggregation needs from the pool. */
export type AggregationPool = Pick<ControllerClientPool, 'areas' | 'onlineControllers' | 'listControllers'>;

const DEFAULT_PAGE_SIZE = 500;
/** Guards against a controller whose `total` keeps growing or whose pages never end. */
const MAX_PAGES = 10_000;

export function toAggregatedAgent(
  agent: Agent,
  controller: Pick<Controller, 'area' | 'id'>,
): AggregatedAgent {
  return {
    id: agent.id,
    agent_code: agent.agent_code || agent.id,
    area: controller.area,
    // A controller lists its whole area (its peers' agents too), and says which one holds each.
    controller_id: agent.controller_id || controller.id,
    address: agent.address,
    hostname: agent.hostname,
    status: agent.status,
    health_status: agent.health_status,
    service_count: agent.services.length,
    last_heartbeat: agent.last_heartbeat,
    version: agent.version,
    agent,
  };
}

/** True when `a` should replace `b` as the record of an agent. */
export function isNewerRecord(a: AggregatedAgent, b: AggregatedAgent): boolean {
  const d = timestampMs(a.last_heartbeat) - timestampMs(b.last_heartbeat);
  if (d !== 0) return d > 0;
  // Same heartbeat: a controller that sees the agent online knows better than one that lost it.
  return a.status === 'online' && b.status !== 'online';
}

interface Listing {
  controller: PooledController;
  agents: Agent[];
  error?: unknown;
}

async function listEveryPage(
  pc: PooledController,
  filters: AgentFilters,
  pageSize: number,
  signal: AbortSignal | undefined,
): Promise<Listing> {
  const agents: Agent[] = [];
  try {
    for (let page = 1; page <= MAX_PAGES; page++) {
      // Every online controller of the area is asked: each for the agents it holds itself.
      const res = await pc.client.listAgents(filters, page, pageSize, signal, { heldOnly: true });
      agents.push(...res.agents);
      // The controller may cap the page size; its answer says what it used.
      const effective = Math.max(1, res.pageSize);
      const lastPage = Math.max(1, Math.ceil(res.total / effective));
      if (res.agents.length === 0 || agents.length >= res.total || page >= lastPage) break;
    }
    return { controller: pc, agents };
  } catch (error) {
    if (signal?.aborted) throw abortReason(signal);
    // Keep what was listed before the failure; the error says the view is partial.
    return { controller: pc, agents, error };
  }
}

export async function aggregateAgents(
  pool: AggregationPool,
  options: AggregateAgentsOptions = {},
): Promise<AggregateAgentsResult> {
  const { signal } = options;
  if (signal?.aborted) throw abortReason(signal);
  const pageSize = Math.min(MAX_PAGE_SIZE, Math.max(1, Math.floor(options.pageSize ?? DEFAULT_PAGE_SIZE)));
  const limiter = options.limiter ?? new ConcurrencyLimiter(10);
  const filters = options.filters ?? {};
  const errors: AggregationError[] = [];

  const known = pool.listControllers();
  const areas = [...new Set([...pool.areas(), ...(options.areas ?? [])])].sort();
  const targets: PooledController[] = [];
  for (const area of areas) {
    const online = pool.onlineControllers(area);
    if (online.length > 0) {
      targets.push(...online);
      continue;
    }
    const inArea = known.filter((c) => c.area === area);
    if (inArea.length === 0) {
      errors.push({
        area,
        controller_id: '',
        error: { code: 'controller_unavailable', message: `no controller registered for area '${area}'` },
      });
    }
    for (const c of inArea) {
      errors.push({
        area,
        controller_id: c.id,
        error: {
          code: 'controller_unavailable',
          message: `controller '${area}/${c.id}' is ${c.status} and area '${area}' has no online controller`,
        },
      });
    }
  }

  const listings = await limiter.map(targets, (pc) => listEveryPage(pc, filters, pageSize, signal), signal);

  const byId = new Map<string, AggregatedAgent>();
  for (const listing of listings) {
    const { controller } = listing.controller;
    if (listing.error !== undefined) {
      errors.push({ area: controller.area, controller_id: controller.id, error: toWireError(listing.error) });
    }
    for (const agent of listing.agents) {
      const candidate = toAggregatedAgent(agent, controller);
      const current = byId.get(candidate.id);
      // Agent codes are globally unique, so an id seen in two places is one agent that moved
      // or failed over: the newest heartbeat says where it is now.
      if (!current || isNewerRecord(candidate, current)) byId.set(candidate.id, candidate);
    }
  }

  const agents = [...byId.values()].sort((a, b) =>
    a.area !== b.area ? (a.area < b.area ? -1 : 1) : a.id < b.id ? -1 : a.id > b.id ? 1 : 0,
  );
  errors.sort((a, b) =>
    a.area !== b.area ? (a.area < b.area ? -1 : 1) : a.controller_id < b.controller_id ? -1 : 1,
  );
  return { agents, errors };
}
