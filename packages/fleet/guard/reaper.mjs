// Cleans up after a guarded fleet whose creator died without stopping it (see
// packages/fleet/src/guard.ts). Args: owner pid, fleet tag, then targets `pid:<n>` (killed with
// their process group) and `dir:<path>` (removed). Once the owner is gone it kills the targets
// and every process whose environment holds FLEET_TAG=<tag> (the packages), removes the dirs
// and exits. Started detached; the fleet kills it on a normal stop.
import { readdirSync, readFileSync, rmSync } from 'node:fs';

const [owner, tag, ...targets] = process.argv.slice(2);
const alive = (pid) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return e.code === 'EPERM';
  }
};
const kill = (pid) => {
  for (const t of [-pid, pid]) {
    try {
      process.kill(t, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
};
// Nobody reads our output once the owner is gone.
process.on('SIGPIPE', () => {});
process.stdout.on('error', () => {});
process.stderr.on('error', () => {});

setInterval(() => {
  if (alive(Number(owner))) return;
  for (const t of targets) if (t.startsWith('pid:')) kill(Number(t.slice(4)));
  const needle = Buffer.from(`\0FLEET_TAG=${tag}\0`);
  let entries = [];
  try {
    entries = readdirSync('/proc');
  } catch {
    /* not Linux */
  }
  for (const e of entries) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const env = Buffer.concat([Buffer.from([0]), readFileSync(`/proc/${e}/environ`)]);
      if (env.includes(needle)) kill(Number(e));
    } catch {
      /* gone or not ours */
    }
  }
  for (const t of targets) {
    if (t.startsWith('dir:')) {
      try {
        rmSync(t.slice(4), { recursive: true, force: true });
      } catch {
        /* best effort */
      }
    }
  }
  process.exit(0);
}, 1000);
