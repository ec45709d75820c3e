/** What the HTTP routes need from the running controller, passed to each route plugin. */
import type { ControllerConfig } from './config.js';
import type { AgentRegistry } from './agent-registry.js';
import type { BatchDispatcher } from './batch-dispatcher.js';
import type { ControllerMetrics } from './metrics.js';
import type { PeerAgentLists } from './peer-agents.js';
import type { PeerForwarder } from './peer-forwarder.js';

export interface ControllerContext {
  readonly config: ControllerConfig;
  readonly version: string;
  readonly startTimeMs: number;
  readonly registry: AgentRegistry;
  readonly dispatcher: BatchDispatcher;
  /** Null when peer forwarding is disabled. */
  readonly forwarder: PeerForwarder | null;
  /** The peers' agents for GET /agents; null when peer forwarding is disabled. */
  readonly peerAgents: PeerAgentLists | null;
  readonly metrics: ControllerMetrics;
  /** The address written to etcd (known once listening). */
  advertisedAddress(): string;
  /** Whether the etcd registration is currently in place. */
  isRegistered(): boolean;
}

/** Route plugin options. */
export interface RouteOptions {
  ctx: ControllerContext;
}
