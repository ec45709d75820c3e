/**
 * Structured logging (pino). Every daemon and library component takes an optional logger and
 * falls back to this one; level from OPSPLANE_LOG_LEVEL (default info; tests run 'silent').
 */
import { pino, type Logger } from 'pino';

export type { Logger } from 'pino';

let root: Logger | undefined;

export function rootLogger(): Logger {
  root ??= pino({
    level: process.env.OPSPLANE_LOG_LEVEL ?? 'info',
    base: { pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
  });
  return root;
}

/** A child logger for one component, e.g. `createLogger('discovery')`. */
export function createLogger(component: string, bindings: Record<string, unknown> = {}): Logger {
  return rootLogger().child({ component, ...bindings });
}
