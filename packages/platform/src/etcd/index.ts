export * from './etcd-client.js';
