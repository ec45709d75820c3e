/**
 * @opsplane/kit — the small runtime pieces every Opsplane process shares, written once: the
 * logger, durations, backoff, an abortable sleep, a non-overlapping task, and the agent bundle
 * format (a deterministic tar.gz codec). Depends on @opsplane/models, pino and zod only, so the
 * host-side agent can use it without carrying the platform's etcd and HTTP clients.
 */
export * from './logger.js';
export * from './durations.js';
export * from './backoff.js';
export * from './wait.js';
export * from './serial-task.js';
export * from './bundle/index.js';
