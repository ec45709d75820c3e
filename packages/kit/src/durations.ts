/**
 * Durations as operators write them in YAML files and flags (`500ms`, `5s`, `1m30s`, `2h`, as
 * Go's time.ParseDuration accepts them). One parser for every Opsplane process: the library and
 * the server also take a bare number as milliseconds (the guide's platform.yaml allows it); the
 * agent's and controller's files require a unit, because nobody can tell whether `10` meant
 * seconds or milliseconds.
 */
import { z } from 'zod';

const UNIT_MS: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  µs: 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

/** Milliseconds in a Go-style duration string (or a bare number of ms); throws a RangeError naming the input. */
export function parseDuration(input: string | number): number {
  if (typeof input === 'number') {
    if (!Number.isFinite(input) || input < 0) throw new RangeError(`invalid duration ${input}`);
    return input;
  }
  const s = input.trim();
  if (/^\d+(\.\d+)?$/.test(s)) return Number(s);
  const re = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/gy;
  let total = 0;
  let matched = 0;
  for (let m = re.exec(s); m; m = re.exec(s)) {
    total += Number(m[1]) * (UNIT_MS[m[2] as string] ?? 0);
    matched = re.lastIndex;
  }
  if (matched === 0 || matched !== s.length) {
    throw new RangeError(`invalid duration '${input}' (expected e.g. 500ms, 5s, 1m30s)`);
  }
  return total;
}

/** Formats milliseconds the way config files write them (for messages). */
export function formatDuration(ms: number): string {
  if (ms % 3_600_000 === 0 && ms > 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0 && ms > 0) return `${ms / 60_000}m`;
  if (ms % 1000 === 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}

/** Zod schema: a duration string or a number of milliseconds → milliseconds. */
export const DurationSchema = z.union([z.string(), z.number()]).transform((v, ctx) => {
  try {
    return parseDuration(v);
  } catch (e) {
    ctx.addIssue({ code: 'custom', message: (e as Error).message });
    return z.NEVER;
  }
});

const HAS_UNIT = /^\s*(?:\d+(?:\.\d+)?(?:ns|us|µs|ms|s|m|h))+\s*$/;

/**
 * Zod schema for a duration that must carry a unit (output: whole milliseconds), within bounds.
 * For daemon config files, where a bare number is refused.
 */
export function durationSchema(opts: { min?: number; max?: number } = {}) {
  return z.unknown().transform((v, ctx): number => {
    const ms = typeof v === 'string' && HAS_UNIT.test(v) ? Math.round(parseDuration(v)) : undefined;
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
