/** Authentication helpers shared by the platform and controllers. */
export * from './agent-token.js';
