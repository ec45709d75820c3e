/** Controller client pool kept in step with discovery. */
export * from './controller-source.js';
export * from './controller-client-pool.js';
