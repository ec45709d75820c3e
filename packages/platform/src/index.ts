/**
 * @opsplane/platform — the integration library: controller discovery on etcd, controller
 * registration, the controller HTTP client, and the helpers to aggregate and batch across areas.
 */
export * from './logger.js';
export * from './config/index.js';
export * from './client/index.js';
export * from './auth/index.js';
export * from './concurrency/index.js';
export * from './pool/index.js';
export * from './cache/index.js';
export * from './aggregate/index.js';
export * from './discovery/index.js';
export * from './registration/index.js';
export * from './etcd/index.js';
export * from './bundle/index.js';
// The typed errors callers branch on, so library users need only this package.
export {
  OpsplaneError,
  AgentNotFoundError,
  PackageNotFoundError,
  ControllerUnavailableError,
  ControllerNotFoundError,
  RequestTimeoutError,
  ValidationError,
} from '@opsplane/models';
