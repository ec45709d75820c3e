/**
 * How a user runs this CLI. In a clone of the repository it is `npx opsplane …` (the README's
 * way): npm links node_modules/.bin/opsplane to packages/cli/bin/opsplane.mjs — a file in git,
 * so the link exists right after `npm ci` — which loads the built dist/src/main.js. The README,
 * the demo banner and `opsplane --help` all show CLI_COMMAND (a test holds them to it).
 */
import { realpathSync } from 'node:fs';
import { dirname, isAbsolute, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The command that runs the CLI in a clone of the repository. */
export const CLI_COMMAND = 'npx opsplane';

/** The bin file package.json names (packages/cli/bin/opsplane.mjs; this file is dist/src/invocation.js). */
export function cliBinPath(): string {
  return fileURLToPath(new URL('../../bin/opsplane.mjs', import.meta.url));
}

/**
 * How the user runs the CLI from `cwd`: CLI_COMMAND when an ancestor's node_modules/.bin/opsplane
 * is this very CLI (inside the repository), else `opsplane` after an alias line to print first.
 */
export function cliInvocation(cwd = process.cwd()): { command: string; alias?: string } {
  const bin = cliBinPath();
  let real = bin;
  try {
    real = realpathSync(bin);
  } catch {
    /* keep as is */
  }
  for (let dir = cwd; ; dir = dirname(dir)) {
    try {
      if (realpathSync(join(dir, 'node_modules', '.bin', 'opsplane')) === real)
        return { command: CLI_COMMAND };
    } catch {
      /* not here */
    }
    if (dirname(dir) === dir) break;
  }
  const rel = relative(cwd, bin);
  const shown = rel && !rel.startsWith('..') && !isAbsolute(rel) ? rel : bin;
  return { command: 'opsplane', alias: `alias opsplane='node ${shown}'` };
}
