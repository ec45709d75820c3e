/**
 * The agent's single import point for logging: @opsplane/platform's createLogger (pino; level
 * from OPSPLANE_LOG_LEVEL), through the `logger` subpath so the agent does not load the
 * platform's etcd/grpc client (~1 s and ~30 MB at start-up on every host).
 */
export { createLogger, type Logger } from '@opsplane/platform/logger';
