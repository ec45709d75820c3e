/** Asking the user for a line on the terminal (without echo for secrets), or reading it from stdin. */
import { createInterface } from 'node:readline';
import { Writable } from 'node:stream';
import { CliError } from '../command.js';

/** Reads one line from stdin; on a terminal without echo (passwords). */
export async function prompt(question: string, hidden: boolean): Promise<string> {
  const tty = process.stdin.isTTY === true;
  let muted = false;
  const output = new Writable({
    write(chunk: Buffer, _enc, cb) {
      if (!muted) process.stderr.write(chunk);
      cb();
    },
  });
  const rl = createInterface({ input: process.stdin, output: tty ? output : undefined, terminal: tty });
  try {
    if (tty) process.stderr.write(question);
    muted = hidden;
    const line = await new Promise<string>((resolve, reject) => {
      rl.once('line', resolve);
      rl.once('close', () => reject(new CliError('no input')));
    });
    if (tty && hidden) process.stderr.write('\n');
    return line;
  } finally {
    rl.close();
  }
}

/**
 * A secret for a command: the flag's value, else the environment variable, else asked without
 * echo on a terminal (or one line of stdin). Never logged.
 */
export async function secretFrom(
  flag: string | undefined,
  envName: string,
  question: string,
  env: NodeJS.ProcessEnv = process.env,
): Promise<string> {
  const v = flag ?? env[envName];
  if (v !== undefined && v !== '') return v;
  return prompt(question, true);
}
