/**
 * The guard of a test fleet: nothing it started outlives the process that started it by more
 * than about a second — even when that process is killed by a signal and runs no exit hook (a
 * test runner killed on timeout). `opsplane demo` does not use it: its processes are found and
 * stopped over the data dir by the next run instead.
 *
 * - Controllers and agents get a preloaded watchdog (guard/watchdog.mjs) that SIGKILLs the
 *   process once FLEET_OWNER_PID is gone.
 * - Packages run in their own process groups and outlive a killed agent by design, so they get
 *   FLEET_OWNER_PID, FLEET_TAG and FLEET_PID_DIR in their environment: the sample programs exit
 *   when the owner is gone and leave a pid file; the fleet finds them by the tag in /proc.
 * - A detached reaper (guard/reaper.mjs) kills what else the caller names (e.g. the tests' own
 *   etcd) and the tagged packages, and removes the fleet's dirs.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { killHard, spawnProcess, type ManagedProcess } from './processes.js';

const guardFile = (name: string) => fileURLToPath(new URL(`../../guard/${name}`, import.meta.url));

/** Node flags that preload the watchdog (the child needs FLEET_OWNER_PID in its environment). */
export function watchdogNodeArgs(): string[] {
  return ['--import', pathToFileURL(guardFile('watchdog.mjs')).href];
}

/** The environment that ties a package to a guarded fleet. */
export function packageGuardEnv(tag: string, pidDir: string): Record<string, string> {
  return { FLEET_TAG: tag, FLEET_OWNER_PID: String(process.pid), FLEET_PID_DIR: pidDir };
}

/** Pids of processes whose environment holds FLEET_TAG=<tag> (Linux /proc). */
export function pidsTagged(tag: string): number[] {
  const needle = Buffer.from(`\0FLEET_TAG=${tag}\0`);
  const out: number[] = [];
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return out;
  }
  for (const e of entries) {
    if (!/^\d+$/.test(e)) continue;
    const pid = Number(e);
    if (pid === process.pid) continue;
    try {
      const env = Buffer.concat([Buffer.from([0]), readFileSync(`/proc/${e}/environ`)]);
      if (env.includes(needle)) out.push(pid);
    } catch {
      /* gone or not ours */
    }
  }
  return out;
}

/** Kills every process tagged `tag`, and (without /proc) those that left a pid file in `pidDir`. */
export function killTagged(tag: string, pidDir: string): void {
  for (const pid of pidsTagged(tag)) killHard(pid);
  try {
    for (const f of readdirSync(pidDir)) if (/^\d+$/.test(f)) killHard(Number(f));
  } catch {
    /* no pid dir */
  }
}

export interface ReaperTargets {
  /** Killed with their process groups. */
  pids?: readonly number[];
  /** Removed. */
  dirs?: readonly string[];
}

/** Starts the reaper for the fleet tagged `tag` (see the header). */
export function startReaper(tag: string, targets: ReaperTargets): ManagedProcess {
  return spawnProcess('fleet-reaper', process.execPath, [
    guardFile('reaper.mjs'),
    String(process.pid),
    tag,
    ...(targets.pids ?? []).map((p) => `pid:${p}`),
    ...(targets.dirs ?? []).map((d) => `dir:${d}`),
  ]);
}
