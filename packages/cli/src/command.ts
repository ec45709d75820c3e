/**
 * What a subcommand is (name, summary, options, run) and the shared argument handling: parsing
 * with node's util.parseArgs (strict), generated --help text, and UsageError (exit code 2) for
 * anything the user typed wrong.
 */
import { parseArgs } from 'node:util';

/** Exit codes of the opsplane binary. */
export const EXIT = { ok: 0, failure: 1, usage: 2 } as const;

/** The user called the command wrongly; printed with a hint and exit code 2. */
export class UsageError extends Error {
  readonly command: string | undefined;
  constructor(message: string, command?: string) {
    super(message);
    this.name = 'UsageError';
    this.command = command;
  }
}

/**
 * A failure the user can act on (server unreachable, not logged in, the server said no):
 * printed as one line without a stack trace, exit code 1 unless told otherwise.
 */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number = 1,
  ) {
    super(message);
    this.name = 'CliError';
  }
}

export interface OptionSpec {
  type: 'string' | 'boolean';
  short?: string;
  multiple?: boolean;
  /** Shown in --help. */
  description: string;
  /** Placeholder in --help, e.g. `<addr>`. */
  value?: string;
}

export type Options = Record<string, OptionSpec>;

/** Parsed values: strings (or string arrays) and booleans, keyed by option name; `_` holds the positionals. */
export type ParsedValues<O extends Options> = {
  [K in keyof O]?: O[K]['type'] extends 'boolean'
    ? boolean
    : O[K]['multiple'] extends true
      ? string[]
      : string;
} & { _: string[] };

/** Where a command writes; replaceable in tests. */
export interface CliIO {
  out(line: string): void;
  err(line: string): void;
}

export const processIO: CliIO = {
  out: (l) => process.stdout.write(`${l}\n`),
  err: (l) => process.stderr.write(`${l}\n`),
};

export interface Command<O extends Options = Options> {
  name: string;
  summary: string;
  /** Extra help text after the options (examples, environment). */
  details?: string;
  /**
   * Positional arguments, as shown in the usage line (e.g. `<list|import> [file]`). Commands
   * without it accept none.
   */
  positionals?: string;
  options: O;
  /** Resolves with the exit code once the command is done (for daemons: once stopped). */
  run(values: ParsedValues<O>, io: CliIO): Promise<number>;
}

/** Defines a command with its option types inferred. */
export function defineCommand<O extends Options>(c: Command<O>): Command<O> {
  return c;
}

export function helpText(c: Command): string {
  const rows = Object.entries(c.options).map(([name, o]) => {
    const flag = `${o.short ? `-${o.short}, ` : '    '}--${name}${o.type === 'string' ? ` ${o.value ?? '<value>'}` : ''}`;
    return [flag, o.description] as const;
  });
  rows.push(['-h, --help', 'show this help']);
  const width = Math.max(...rows.map(([f]) => f.length)) + 2;
  return [
    `Usage: opsplane ${c.name}${c.positionals ? ` ${c.positionals}` : ''} [options]`,
    '',
    c.summary,
    '',
    'Options:',
    ...rows.map(([f, d]) => `  ${f.padEnd(width)}${d}`),
    ...(c.details ? ['', c.details] : []),
  ].join('\n');
}

/** Parses `argv` for `c`; returns undefined when --help was asked (help already printed). */
export function parseCommandArgs<O extends Options>(
  c: Command<O>,
  argv: string[],
  io: CliIO,
): ParsedValues<O> | undefined {
  const options: Record<string, { type: 'string' | 'boolean'; short?: string; multiple?: boolean }> = {
    help: { type: 'boolean', short: 'h' },
  };
  for (const [name, o] of Object.entries(c.options)) {
    options[name] = {
      type: o.type,
      ...(o.short ? { short: o.short } : {}),
      ...(o.multiple ? { multiple: true } : {}),
    };
  }
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({ args: argv, options, strict: true, allowPositionals: c.positionals !== undefined });
  } catch (e) {
    // parseArgs' messages name the offending option; keep them, drop its boilerplate hints.
    throw new UsageError(
      (e as Error).message.replace(/\. To specify a positional argument.*$/s, '.'),
      c.name,
    );
  }
  if (parsed.values.help) {
    io.out(helpText(c as unknown as Command));
    return undefined;
  }
  const { help: _help, ...values } = parsed.values;
  return { ...values, _: parsed.positionals } as ParsedValues<O>;
}

/** `action` if it is one of `actions`, else the usage error naming them (exit 2). */
export function actionOf<A extends string>(
  actions: readonly A[],
  action: string | undefined,
  command: string,
): A {
  if (action !== undefined && (actions as readonly string[]).includes(action)) return action as A;
  throw new UsageError(
    action ? `unknown action '${action}' (${actions.join(', ')})` : `say ${actions.join(', ')}`,
    command,
  );
}
