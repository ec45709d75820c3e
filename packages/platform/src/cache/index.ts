/** Caches. */
export * from './agent-cache.js';
