/** Controller discovery on etcd (SYSTEM.md §3). */
export * from './controller-discovery.js';
