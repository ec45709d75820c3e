/**
 * What the HTTP edge gets: configuration, logger, metrics, a database liveness check and the
 * services it calls. Routes use services only — never storage — so that every resource maps its
 * rows to the API in one place (its service).
 */
import type { Logger } from '@opsplane/kit';
import type { ServerConfig } from '../config.js';
import type { Accounts } from '../services/accounts.js';
import type { AgentService } from '../services/agents.js';
import type { AlertService } from '../services/alerts.js';
import type { ApiTokens } from '../services/api-tokens.js';
import type { AreaService } from '../services/areas.js';
import type { ArtifactService } from '../services/artifacts.js';
import type { AuditTrail } from '../services/audit-trail.js';
import type { BatchService } from '../services/batches.js';
import type { ControllerService } from '../services/controllers.js';
import type { DeploymentRequests } from '../services/deployment-requests.js';
import type { DeviceService } from '../services/devices.js';
import type { ServerMetrics } from '../services/metrics.js';
import type { PkiService } from '../services/pki.js';
import type { PolicyService } from '../services/policies.js';
import type { PolicyRolloutService } from '../services/policy-rollouts.js';
import type { RateCounter } from './rate-limit-store.js';

export interface ServerContext {
  config: ServerConfig;
  logger: Logger;
  metrics: ServerMetrics;
  /** Resolves when the database answers; rejects otherwise. */
  checkDatabase(): Promise<void>;
  /** Fixed-window counters shared by every replica (the login rate limit). */
  rateCounter: RateCounter;
  audit: AuditTrail;
  accounts: Accounts;
  tokens: ApiTokens;
  devices: DeviceService;
  areas: AreaService;
  controllers: ControllerService;
  agents: AgentService;
  batches: BatchService;
  alerts: AlertService;
  deploymentRequests: DeploymentRequests;
  /** Revocations, issued certificates, the built-in CA. */
  pki: PkiService;
  /** Distribution: artifacts, policies, policy rollouts. */
  artifacts: ArtifactService;
  policies: PolicyService;
  policyRollouts: PolicyRolloutService;
}

export interface RouteOptions {
  ctx: ServerContext;
}
