/** Concurrency control. */
export * from './limiter.js';
