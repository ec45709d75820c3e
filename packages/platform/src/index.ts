/**
 * @opsplane/platform — the integration library: controller discovery on etcd, controller
 * registration, the controller HTTP client, and the helpers to aggregate and batch across areas.
 */
export * from './logger.js';
export * from './config/index.js';
