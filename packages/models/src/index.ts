/** @opsplane/models — the wire contract: zod schemas, inferred types, typed errors. No I/O. */
export * from './names.js';
export * from './time.js';
export * from './controller.js';
export * from './agent.js';
export * from './health.js';
export * from './metrics.js';
export * from './operations.js';
export * from './go-shapes.js';
export * from './controller-answers.js';
export * from './batch.js';
export * from './configs.js';
export * from './errors.js';
export * from './protocol.js';
export * from './pki-frames.js';
export * from './bundle.js';
export * from './agent-token.js';
export * from './text.js';
