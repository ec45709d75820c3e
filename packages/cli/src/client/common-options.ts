/** Options every server-facing subcommand shares, defined once so their help reads the same. */
import { UsageError } from '../command.js';

export const serverOption = {
  type: 'string',
  short: 's',
  value: '<url>',
  description: 'server URL (default: the one you logged in to)',
} as const;

export const jsonOption = { type: 'boolean', description: 'print the server’s JSON answer' } as const;

/** `--output table|json` (and the older `--json`): how a command prints its answer. */
export const outputOption = {
  type: 'string',
  short: 'o',
  value: '<table|json>',
  description: 'output format: table (default) or json',
} as const;

/** True when the command should print JSON (`--output json` or `--json`). */
export function wantsJson(
  v: { output?: string | undefined; json?: boolean | undefined },
  command: string,
): boolean {
  if (v.output !== undefined && v.output !== 'json' && v.output !== 'table')
    throw new UsageError(`--output must be table or json (got '${v.output}')`, command);
  return v.json === true || v.output === 'json';
}
