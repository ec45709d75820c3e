/**
 * Controllers as the API serves them: the live list from discovery (with what the last refresh
 * of the agent view got from each), and the persisted history of when each came and went. Also
 * the one place controllers_history rows become the API's entries.
 */
import {
  iso,
  isoOrNull,
  type ControllerHistoryEntry,
  type ControllerHistoryQuery,
  type ControllerHistoryResponse,
  type ControllerListQuery,
  type ControllerListResponse,
  type LiveController,
} from '@opsplane/api';
import type { ControllerHistoryRow } from '../storage/schema.js';
import type { Store } from '../storage/store.js';
import type { PlatformServices } from './platform.js';

export const toHistoryEntry = (r: ControllerHistoryRow): ControllerHistoryEntry => ({
  id: r.id,
  area: r.area,
  controller_id: r.controllerId,
  address: r.address,
  version: r.version,
  came_at: iso(r.cameAt),
  went_at: isoOrNull(r.wentAt),
  last_seen_at: iso(r.lastSeenAt),
});

export class ControllerService {
  constructor(
    private readonly platform: PlatformServices,
    private readonly store: Store,
  ) {}

  list(q: ControllerListQuery): ControllerListResponse {
    const { platform } = this;
    const controllers: LiveController[] = platform
      .listControllers()
      .filter((c) => (!q.area || c.area === q.area) && (!q.status || c.status === q.status))
      .map((c) => {
        const listing = platform.view.listingOf(`${c.area}/${c.id}`);
        return {
          area: c.area,
          id: c.id,
          address: c.address,
          status: c.status,
          flavor: c.flavor ?? 'opsplane',
          version: c.version,
          agent_count: c.agent_count,
          last_heartbeat: c.last_heartbeat,
          start_time: c.start_time,
          metadata: c.metadata,
          listed_agents: listing?.listed ?? null,
          last_error: listing?.error ?? null,
        };
      });
    return { controllers, total: controllers.length, discovery: platform.discoveryState() };
  }

  async history(q: ControllerHistoryQuery): Promise<ControllerHistoryResponse> {
    // What discovery saw last must be written before it is read back.
    await this.platform.tracker.flush();
    const rows = await this.store.controllersHistory.list({
      ...(q.area ? { area: q.area } : {}),
      ...(q.controller_id ? { controllerId: q.controller_id } : {}),
      limit: q.limit,
    });
    return { history: rows.map(toHistoryEntry) };
  }
}
