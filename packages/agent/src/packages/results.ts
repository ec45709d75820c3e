/** PackageOpResult builders; errors read `<code>: <detail>` so callers can branch on the code. */
import type { PackageOpResult } from '@opsplane/models';

/** The package's process before and after an operation. */
export interface PidChange {
  old_pid?: number | undefined;
  new_pid?: number | undefined;
}

export const opOk = (pkg: string, message: string, pids: PidChange = {}): PackageOpResult => ({
  package: pkg,
  success: true,
  message,
  ...(pids.old_pid !== undefined ? { old_pid: pids.old_pid } : {}),
  ...(pids.new_pid !== undefined ? { new_pid: pids.new_pid } : {}),
});

export const opFail = (pkg: string, code: string, detail: string, message?: string): PackageOpResult => ({
  package: pkg,
  success: false,
  error: `${code}: ${detail}`,
  ...(message !== undefined ? { message } : {}),
});
