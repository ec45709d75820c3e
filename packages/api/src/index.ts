/**
 * @opsplane/api — the platform server's HTTP contract, defined once: zod schemas of every
 * request and response, roles, bounds and error codes. The server validates, serializes and
 * documents (OpenAPI) with it; the CLI imports it; the web UI imports its types.
 */
export * from './common.js';
export * from './roles.js';
export * from './devices.js';
export * from './users.js';
export * from './audit.js';
export * from './platform.js';
export * from './deployments.js';
export * from './alerts.js';
