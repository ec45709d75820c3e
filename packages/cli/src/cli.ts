/**
 * `opsplane <command> [options]`: dispatches to a subcommand, prints help, and maps errors to
 * exit codes (2 for usage errors with a hint, 1 for failures).
 */
import { readFileSync } from 'node:fs';
import { CliError, EXIT, UsageError, parseCommandArgs, processIO, type CliIO } from './command.js';
import { COMMANDS } from './commands/index.js';
import { CLI_COMMAND } from './invocation.js';

function version(): string {
  try {
    return (
      JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }
    ).version;
  } catch {
    return 'unknown';
  }
}

export function mainHelp(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length)) + 2;
  return [
    'Usage: opsplane <command> [options]',
    '',
    'Opsplane — ops control plane for fleets of host agents.',
    `In a clone of the repository, run it as: ${CLI_COMMAND} <command> [options] (after npm run build).`,
    '',
    'Commands:',
    ...COMMANDS.map((c) => `  ${c.name.padEnd(width)}${c.summary}`),
    '',
    'Options:',
    '  -h, --help     show help (also: opsplane <command> --help)',
    '  -v, --version  print the version',
  ].join('\n');
}

/** Runs the CLI; resolves with the process exit code. */
export async function run(argv: string[], io: CliIO = processIO): Promise<number> {
  const [first, ...rest] = argv;
  if (first === undefined || first === '-h' || first === '--help' || first === 'help') {
    io.out(mainHelp());
    return first === undefined ? EXIT.usage : EXIT.ok;
  }
  if (first === '-v' || first === '--version') {
    io.out(version());
    return EXIT.ok;
  }
  const entry = COMMANDS.find((c) => c.name === first);
  try {
    if (!entry) {
      throw new UsageError(
        first.startsWith('-')
          ? `unknown option '${first}' (options go after the command)`
          : `unknown command '${first}'`,
      );
    }
    const command = (await entry.load()).default;
    const values = parseCommandArgs(command, rest, io);
    if (values === undefined) return EXIT.ok;
    return await command.run(values, io);
  } catch (e) {
    if (e instanceof UsageError) {
      io.err(`opsplane${e.command ? ` ${e.command}` : ''}: ${e.message}`);
      io.err(`Run 'opsplane ${e.command ? `${e.command} ` : ''}--help' for usage.`);
      return EXIT.usage;
    }
    if (e instanceof CliError) {
      io.err(`opsplane${entry ? ` ${entry.name}` : ''}: ${e.message}`);
      return e.exitCode;
    }
    io.err(`opsplane${entry ? ` ${entry.name}` : ''}: ${(e as Error).stack ?? String(e)}`);
    return EXIT.failure;
  }
}
