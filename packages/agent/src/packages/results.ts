/** PackageOpResult builders; errors read `<code>: <detail>` so callers can branch on the code. */
import type { PackageOpResult } from '@opsplane/models';

export const opOk = (pkg: string, message: string): PackageOpResult => ({
  package: pkg,
  success: true,
  message,
});

export const opFail = (pkg: string, code: string, detail: string, message?: string): PackageOpResult => ({
  package: pkg,
  success: false,
  error: `${code}: ${detail}`,
  ...(message !== undefined ? { message } : {}),
});
