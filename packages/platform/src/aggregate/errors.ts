/** How aggregation and cross-area batches turn thrown errors into wire-style `{code, message}`. */
import { OpsplaneError } from '@opsplane/models';

export interface WireError {
  code: string;
  message: string;
}

export function toWireError(err: unknown): WireError {
  if (err instanceof OpsplaneError) return { code: err.code, message: err.message };
  if (err instanceof Error) return { code: 'internal', message: err.message };
  return { code: 'internal', message: String(err) };
}

/** The `error` string of a failed OperationResult: `code: message`, greppable by code. */
export function resultError(code: string, message: string): string {
  return `${code}: ${message}`;
}

export function abortReason(signal: AbortSignal): unknown {
  return signal.reason ?? new DOMException('This operation was aborted', 'AbortError');
}
