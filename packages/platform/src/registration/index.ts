/** Controller registration in etcd: lease-bound key, keepalive, heartbeat refresh (SYSTEM.md §1). */
export * from './controller-registration.js';
