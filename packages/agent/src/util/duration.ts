/**
 * Durations in config files: `500ms`, `10s`, `2m`, `1h`, `1m30s`. Always with a unit — a bare
 * number is refused because nobody can tell whether `10` meant seconds or milliseconds.
 */
import { z } from 'zod';
import { parseDuration as parsePlatformDuration } from '@opsplane/platform/duration';

const HAS_UNIT = /^\s*(?:\d+(?:\.\d+)?(?:ns|us|µs|ms|s|m|h))+\s*$/;

/** Milliseconds for a duration string; undefined when it is not one (or has no unit). */
export function parseDuration(text: string): number | undefined {
  if (!HAS_UNIT.test(text)) return undefined;
  try {
    return Math.round(parsePlatformDuration(text));
  } catch {
    return undefined;
  }
}

/** Formats milliseconds the way config files write them (for messages). */
export function formatDuration(ms: number): string {
  if (ms % 3_600_000 === 0 && ms > 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0 && ms > 0) return `${ms / 60_000}m`;
  if (ms % 1000 === 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}

/** A zod schema turning a duration string into milliseconds (output: number). */
export function durationSchema(opts: { min?: number; max?: number } = {}) {
  return z.unknown().transform((v, ctx): number => {
    const ms = typeof v === 'string' ? parseDuration(v) : undefined;
    if (ms === undefined) {
      ctx.addIssue({
        code: 'custom',
        message: `must be a duration with a unit such as 500ms, 10s or 2m (got ${JSON.stringify(v)})`,
      });
      return z.NEVER;
    }
    if (opts.min !== undefined && ms < opts.min) {
      ctx.addIssue({ code: 'custom', message: `must be at least ${formatDuration(opts.min)}` });
      return z.NEVER;
    }
    if (opts.max !== undefined && ms > opts.max) {
      ctx.addIssue({ code: 'custom', message: `must be at most ${formatDuration(opts.max)}` });
      return z.NEVER;
    }
    return ms;
  });
}
