import type { ManagedProcess } from './processes.js';

/**
 * A start-up failure worth showing to a user as it is (no stack trace): a daemon that exited
 * while the fleet waited for it, or did not get ready in time. `opsplane demo` prints its
 * message; tests see it as any error.
 */
export class FleetError extends Error {
  override name = 'FleetError';
}

/** Indents every line of `text` by `n` spaces (process output inside an error message). */
export function indent(text: string, n = 2): string {
  const pad = ' '.repeat(n);
  return text
    .split('\n')
    .map((l) => pad + l)
    .join('\n');
}

/** Throws a FleetError when `p` is no longer running (for WaitOptions.check). */
export function exitedCheck(p: ManagedProcess, what: string): void {
  if (p.running) return;
  const code =
    p.child.signalCode ?? (p.child.exitCode === null ? 'did not start' : `code ${p.child.exitCode}`);
  throw new FleetError(
    `${p.name} exited (${code}) while waiting for ${what}; its last output:\n${indent(p.tail())}`,
  );
}
