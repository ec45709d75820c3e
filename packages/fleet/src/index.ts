/**
 * @opsplane/fleet — launches an Opsplane system as real processes (etcd for the demo,
 * controllers, agents with the sample packages) and cleans up every process it started. Used by
 * `opsplane demo` and, through @opsplane/test-support, by the tests. See README.md.
 */
export * from './fleet.js';
export * from './fleet-types.js';
export * from './configs.js';
export * from './sample-packages.js';
export * from './etcd.js';
export * from './security.js';
export * from './errors.js';
export * from './guard.js';
export * from './ports.js';
export * from './processes.js';
export { sleep, waitFor, WaitTimeoutError, type WaitOptions } from '@opsplane/kit';
export * from './yaml.js';
