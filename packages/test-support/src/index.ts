/**
 * @opsplane/test-support — starts the real dependencies tests need (etcd, later sshd and
 * browsers), hands out free ports and temp dirs, and cleans up every process it starts.
 */
export * from './ports.js';
export * from './processes.js';
export * from './wait.js';
export * from './etcd.js';
export * from './postgres.js';
export * from './fleet.js';
export * from './ssh-hosts.js';
export * from './server-process.js';
