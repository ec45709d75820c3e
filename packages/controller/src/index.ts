/**
 * @opsplane/controller — the controller daemon of one area: holds agent WebSockets, serves the
 * controller HTTP API (SYSTEM.md §2), registers itself in etcd, reaches agents held by peers.
 */
export {
  ConfigError,
  ControllerFileConfigSchema,
  loadControllerConfig,
  parseControllerConfig,
  parseListen,
  parseSize,
  type ControllerConfig,
  type ControllerFileConfig,
  type LoadControllerConfigOptions,
} from './config.js';
export { startController, type RunningController, type StartControllerOptions } from './controller.js';
export { FORWARDED_HEADER } from './peer-forwarder.js';
