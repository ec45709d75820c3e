/**
 * Structured logging (pino). Every daemon and library component takes an optional logger and
 * falls back to this one; level from OPSPLANE_LOG_LEVEL (default info; tests run 'silent').
 * Errors and requests go through the serializers of log-serializers.ts (no SQL parameters, no
 * query strings, no secret-looking values).
 */
import { pino, type Logger } from 'pino';
import { logSerializers } from './log-serializers.js';

export type { Logger } from 'pino';
export { logSerializers, pathOnly, safeErrSerializer, safeReqSerializer } from './log-serializers.js';

let root: Logger | undefined;

export function rootLogger(): Logger {
  root ??= pino({
    level: process.env.OPSPLANE_LOG_LEVEL ?? 'info',
    base: { pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
    serializers: logSerializers,
  });
  return root;
}

/** A child logger for one component, e.g. `createLogger('discovery')`. */
export function createLogger(component: string, bindings: Record<string, unknown> = {}): Logger {
  return rootLogger().child({ component, ...bindings });
}

/** `logger` with the safe `err` and `req` serializers, whoever created it (e.g. a test's pino). */
export function withSafeSerializers(logger: Logger): Logger {
  return logger.child({}, { serializers: logSerializers });
}
