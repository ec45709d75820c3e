/**
 * Timestamps on the wire are RFC 3339 strings as Go's time.Time marshals them (nanosecond
 * precision, offset or Z). They stay strings so that a Go timestamp round-trips byte for byte.
 */
import { z } from 'zod';

const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/;

export const TimestampSchema = z
  .string()
  .regex(RFC3339, { message: 'must be an RFC 3339 timestamp such as 2024-01-15T10:30:00Z' });

/** Go's zero time, which the Go system emitted for "never". */
export const GO_ZERO_TIME = '0001-01-01T00:00:00Z';

/** Milliseconds since the epoch; NaN-safe (Go's zero time and garbage give 0). */
export function timestampMs(ts: string | undefined | null): number {
  if (!ts) return 0;
  const ms = Date.parse(ts);
  return Number.isFinite(ms) && ms > 0 ? ms : 0;
}

export function nowTimestamp(): string {
  return new Date().toISOString();
}
