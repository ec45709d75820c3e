/**
 * The agents of this controller's peers, for GET /agents: a controller answers for its whole
 * area (as a Go controller does — its list comes from the area's shared database), so its list
 * merges what its online peers hold.
 *
 * Peers come from discovery, as for forwarding (peer-forwarder.ts), Go controllers of the area
 * included. Each peer's full list is fetched with `x-opsplane-forwarded: 1` (an Opsplane peer
 * then lists only its own agents — one hop, no loops; a Go peer lists its area anyway) through
 * a ControllerClient, which reads both shapes. The lists sit in an AgentCache keyed by peer:
 * concurrent list requests share one call per peer (single-flight) and reuse it for
 * `peers.list_ttl`. A peer that cannot be listed is reported, never fatal: the answer is what
 * the others gave.
 */
import { MAX_PAGE_SIZE, timestampMs, type Agent, type Controller } from '@opsplane/models';
import { AgentCache, ControllerClient } from '@opsplane/platform';
import type { Logger } from '@opsplane/kit';
import { FORWARDED_HEADER, type PeerForwarder } from './peer-forwarder.js';

export interface PeerAgentListsOptions {
  /** Online peers (the forwarder's view of discovery). */
  forwarder: Pick<PeerForwarder, 'peers'>;
  apiToken: string | undefined;
  ttlMs: number;
  timeoutMs: number;
  logger: Logger;
  /** Peers serve HTTPS: the CA bundle (read when a client is made) their certificates chain to. */
  tls?: { ca: () => string };
}

export interface PeerAgents {
  agents: Agent[];
  /** Peers (`id`) whose list could not be had, with why. */
  failed: { peer: string; error: string }[];
}

/** Guards against a peer whose pages never end. */
const MAX_PAGES = 1000;

export class PeerAgentLists {
  private readonly cache: AgentCache<Agent[]>;
  private readonly clients = new Map<string, { address: string; client: ControllerClient }>();

  constructor(private readonly opts: PeerAgentListsOptions) {
    this.cache = new AgentCache<Agent[]>({ ttlMs: opts.ttlMs, maxEntries: 1000 });
  }

  /** Whether there is any online peer right now. */
  hasPeers(): boolean {
    return this.opts.forwarder.peers().length > 0;
  }

  /** Every agent every online peer lists (cached per peer), and the peers that failed. */
  async collect(): Promise<PeerAgents> {
    const peers = this.opts.forwarder.peers();
    this.forgetGone(peers);
    const failed: PeerAgents['failed'] = [];
    const lists = await Promise.all(
      peers.map((p) =>
        this.cache
          .getOrLoad(`${p.id} ${p.address}`, () => this.listPeer(p))
          .catch((err: unknown) => {
            const error = err instanceof Error ? err.message : String(err);
            failed.push({ peer: p.id, error });
            this.opts.logger.warn({ peer: p.id, err: error }, 'cannot list a peer controller’s agents');
            return [] as Agent[];
          }),
      ),
    );
    return { agents: lists.flat(), failed };
  }

  async close(): Promise<void> {
    const all = [...this.clients.values()];
    this.clients.clear();
    await Promise.all(all.map((c) => c.client.close()));
  }

  private clientFor(peer: Controller): ControllerClient {
    const known = this.clients.get(peer.id);
    if (known && known.address === peer.address) return known.client;
    if (known) void known.client.close();
    const client = new ControllerClient(peer.address, peer.area, {
      timeoutMs: this.opts.timeoutMs,
      retryTimes: 0,
      connections: 4,
      headers: { [FORWARDED_HEADER]: '1' },
      ...(this.opts.apiToken ? { apiToken: this.opts.apiToken } : {}),
      ...(this.opts.tls ? { tls: { ca: this.opts.tls.ca() } } : {}),
      logger: this.opts.logger.child({ peer: peer.id }),
    });
    this.clients.set(peer.id, { address: peer.address, client });
    return client;
  }

  private forgetGone(peers: readonly Controller[]): void {
    const ids = new Set(peers.map((p) => p.id));
    for (const [id, c] of this.clients) {
      if (!ids.has(id)) {
        this.clients.delete(id);
        void c.client.close();
      }
    }
  }

  private async listPeer(peer: Controller): Promise<Agent[]> {
    const client = this.clientFor(peer);
    const signal = AbortSignal.timeout(this.opts.timeoutMs);
    const agents: Agent[] = [];
    for (let page = 1; page <= MAX_PAGES; page++) {
      const res = await client.listAgents({}, page, MAX_PAGE_SIZE, signal);
      // A Go controller's records carry no controller_id: the peer that listed them holds them.
      for (const a of res.agents) agents.push(a.controller_id ? a : { ...a, controller_id: peer.id });
      const lastPage = Math.max(1, Math.ceil(res.total / Math.max(1, res.pageSize)));
      if (res.agents.length === 0 || agents.length >= res.total || page >= lastPage) break;
    }
    return agents;
  }
}

/**
 * Merges agent records by id: the newest heartbeat wins; on a tie an online record beats an
 * offline one, and the earlier list (this controller's own) beats a later one.
 */
export function mergeAgents(...lists: readonly (readonly Agent[])[]): Agent[] {
  const byId = new Map<string, Agent>();
  for (const list of lists) {
    for (const a of list) {
      const cur = byId.get(a.id);
      if (!cur) {
        byId.set(a.id, a);
        continue;
      }
      const d = timestampMs(a.last_heartbeat) - timestampMs(cur.last_heartbeat);
      if (d > 0 || (d === 0 && a.status === 'online' && cur.status !== 'online')) byId.set(a.id, a);
    }
  }
  return [...byId.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}
