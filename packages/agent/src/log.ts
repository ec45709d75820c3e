/**
 * The agent's single import point for logging. Everything logs through @opsplane/platform's
 * createLogger (pino; level from OPSPLANE_LOG_LEVEL). Kept in one module because importing the
 * platform package also loads its etcd/grpc client (~1 s and ~30 MB on start-up); when the
 * platform exposes a `logger` subpath export, only this line changes.
 */
export { createLogger, type Logger } from '@opsplane/platform';
