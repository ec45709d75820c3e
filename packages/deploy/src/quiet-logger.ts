/**
 * The engine logs through the pino logger its caller hands in (the server passes its own, with
 * the deployment's bindings). Without one it stays silent: a library does not decide where a
 * process writes its logs.
 */
import { pino, type Logger } from 'pino';

let quiet: Logger | undefined;

export function quietLogger(): Logger {
  quiet ??= pino({ enabled: false });
  return quiet;
}
