/**
 * @opsplane/test-support — starts the real dependencies tests need (etcd, PostgreSQL, sshd
 * hosts, the server, fleets of controllers and agents on @opsplane/fleet), hands out free ports
 * and temp dirs, and cleans up every process it starts. Test code only: no product package
 * depends on it.
 */
export * from './ports.js';
export * from './processes.js';
export * from './wait.js';
export * from './etcd.js';
export * from './postgres.js';
export * from './fleet.js';
export * from './ssh-hosts.js';
export * from './server-process.js';
