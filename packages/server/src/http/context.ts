/**
 * What every route plugin gets: config, the store, the database handle, a logger, the metrics
 * and the platform services (discovery, controller pools, agent view, batches, area credentials).
 */
import type { Logger } from 'pino';
import type { ServerConfig } from '../config.js';
import type { DatabaseHandle } from '../storage/database.js';
import type { Store } from '../storage/store.js';
import type { ServerMetrics } from '../metrics.js';
import type { DeploymentService } from '../services/deployments.js';
import type { PlatformServices } from '../services/platform.js';

export interface ServerContext {
  config: ServerConfig;
  store: Store;
  database: DatabaseHandle;
  logger: Logger;
  metrics: ServerMetrics;
  platform: PlatformServices;
  deployments: DeploymentService;
}

export interface RouteOptions {
  ctx: ServerContext;
}
