// Preloaded into the controllers and agents of a guarded fleet (`node --import <this file> …`,
// see packages/fleet/src/guard.ts): the process SIGKILLs itself once the process that started
// the fleet (FLEET_OWNER_PID) is gone, so a test runner killed by a signal leaves no daemon.
const owner = Number(process.env.FLEET_OWNER_PID);
if (owner > 0) {
  setInterval(() => {
    try {
      process.kill(owner, 0);
    } catch (e) {
      if (e.code === 'ESRCH') process.kill(process.pid, 'SIGKILL');
    }
  }, 1000).unref();
}
