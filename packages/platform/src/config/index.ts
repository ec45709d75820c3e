export * from './platform-config.js';
