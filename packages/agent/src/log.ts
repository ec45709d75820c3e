/**
 * The agent's single import point for logging: @opsplane/kit's createLogger (pino; level from
 * OPSPLANE_LOG_LEVEL). Kit, not the platform library: the agent runs on hosts and carries no
 * etcd or HTTP client.
 */
export { createLogger, type Logger } from '@opsplane/kit';
