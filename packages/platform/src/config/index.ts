export * from './duration.js';
export * from './platform-config.js';
