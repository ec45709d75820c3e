/**
 * @opsplane/api — the platform server's HTTP contract, defined once: every endpoint (method,
 * path, role, audit action, documentation) with the zod schemas of its request and responses,
 * the bounds and the error codes. The server validates, serializes and documents (OpenAPI) with
 * it; the CLI imports it; the web UI imports its types only.
 */
export * from './common.js';
export * from './roles.js';
export * from './selectors.js';
export * from './devices.js';
export * from './users.js';
export * from './audit.js';
export * from './platform.js';
export * from './deployments.js';
export * from './alerts.js';
export * from './pki.js';
export * from './system.js';
export * from './distribution.js';
export * from './endpoint.js';
export * from './contract.js';
