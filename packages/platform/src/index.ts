/**
 * @opsplane/platform — the integration library: controller discovery on etcd, controller
 * registration, the controller HTTP client, and the helpers to aggregate and batch across areas.
 */
export * from './config/index.js';
export * from './client/index.js';
export * from './concurrency/index.js';
export * from './pool/index.js';
export * from './cache/index.js';
export * from './aggregate/index.js';
export * from './discovery/index.js';
export * from './registration/index.js';
export * from './etcd/index.js';
// What library users configure and log with, so they need only this package.
export { createLogger, rootLogger, parseDuration, DurationSchema, type Logger } from '@opsplane/kit';
export { agentToken, verifyAgentToken } from '@opsplane/models';
// The typed errors callers branch on.
export {
  OpsplaneError,
  AgentNotFoundError,
  PackageNotFoundError,
  ControllerUnavailableError,
  ControllerNotFoundError,
  RequestTimeoutError,
  ValidationError,
} from '@opsplane/models';
