/** @opsplane/cli — the `opsplane` command line (bin/opsplane.mjs, which loads dist/src/main.js). */
export { CLI_COMMAND } from './invocation.js';
export { run, mainHelp } from './cli.js';
export { COMMANDS, type CommandEntry } from './commands/index.js';
export { CliError, EXIT, UsageError, defineCommand, helpText, type Command, type CliIO } from './command.js';
