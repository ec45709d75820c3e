/** What the HTTP routes need from the running controller, passed to each route plugin. */
import type { AgentAuthOptions } from './agent-auth.js';
import type { ArtifactCache } from './artifact-cache.js';
import type { ArtifactRelay } from './artifact-relay.js';
import type { ControllerConfig } from './config.js';
import type { DesiredStatePusher } from './desired-state.js';
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
  /** The artifact cache the platform fills and agents download from. */
  readonly artifacts: ArtifactCache;
  /** Serves artifacts to agents within the bandwidth limit. */
  readonly relay: ArtifactRelay;
  /** How agents authenticate (the socket's rules), for their artifact downloads. */
  readonly agentAuth: AgentAuthOptions;
  readonly desiredStates: DesiredStatePusher;
  /** The address written to etcd (known once listening). */
  advertisedAddress(): string;
  /** Whether the etcd registration is currently in place. */
  isRegistered(): boolean;
}

/** Route plugin options. */
export interface RouteOptions {
  ctx: ControllerContext;
}
