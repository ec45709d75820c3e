/**
 * What every route plugin gets: config, the store, the database handle, a logger and the
 * metrics. The next round adds the platform services (discovery, controller pool) here.
 */
import type { Logger } from 'pino';
import type { ServerConfig } from '../config.js';
import type { DatabaseHandle } from '../db/database.js';
import type { Store } from '../db/store.js';
import type { ServerMetrics } from '../metrics.js';

export interface ServerContext {
  config: ServerConfig;
  store: Store;
  database: DatabaseHandle;
  logger: Logger;
  metrics: ServerMetrics;
}

export interface RouteOptions {
  ctx: ServerContext;
}
