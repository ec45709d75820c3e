/**
 * Runs a long-lived service until SIGTERM or SIGINT, then stops it gracefully. The handlers are
 * installed before the service starts, so a signal during startup (e.g. while registering in
 * etcd) still leads to a clean stop instead of the default "die at once". A second signal while
 * stopping exits immediately (exit code 1), so an operator is never stuck with a hung stop.
 */
import type { CliIO } from './command.js';

export interface Stoppable {
  stop(): Promise<void>;
}

export async function runDaemon(start: () => Promise<Stoppable>, io: CliIO, what: string): Promise<number> {
  let service: Stoppable | undefined;
  let signalled = false;
  let finish: (code: number) => void = () => undefined;
  const finished = new Promise<number>((resolve) => {
    finish = resolve;
  });
  const stopNow = (s: Stoppable) => {
    s.stop().then(
      () => finish(0),
      (err: Error) => {
        io.err(`${what}: shutdown failed: ${err.message}`);
        finish(1);
      },
    );
  };
  const onSignal = (signal: NodeJS.Signals) => {
    if (signalled) {
      io.err(`${what}: ${signal} again; exiting without waiting`);
      process.exit(1);
    }
    signalled = true;
    io.err(`${what}: ${signal} received; shutting down`);
    if (service) stopNow(service);
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  try {
    service = await start();
  } catch (err) {
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
    throw err;
  }
  // A signal that arrived while starting is honoured now that there is something to stop.
  if (signalled) stopNow(service);
  const code = await finished;
  process.off('SIGTERM', onSignal);
  process.off('SIGINT', onSignal);
  return code;
}
