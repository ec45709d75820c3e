/** Cross-area views and operations. */
export type { WireError } from './errors.js';
export * from './aggregate-agents.js';
export * from './batch-across-areas.js';
export * from './query-operations.js';
