/**
 * @opsplane/test-support — starts the real dependencies tests need (etcd, PostgreSQL, sshd
 * hosts, the server, fleets of controllers and agents on @opsplane/fleet, an agent-bundle install
 * under the self-upgrade launcher), hands out free ports
 * and temp dirs, cleans up every process it starts, and says what a test needs of the machine
 * (skipUnlessAvailable: skipped locally, failed under CI). Test code only: no product package
 * depends on it.
 */
export * from './dependencies.js';
export * from './ports.js';
export * from './processes.js';
export * from './wait.js';
export * from './etcd.js';
export * from './postgres.js';
export * from './fleet.js';
export * from './ssh-hosts.js';
export * from './server-process.js';
export * from './go-controller.js';
export * from './fuzz.js';
export * from './artifacts.js';
export * from './ssh-capture.js';
export * from './agent-install.js';
