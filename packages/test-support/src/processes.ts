/**
 * Child processes started by tests: @opsplane/fleet's spawner (own process group, killed with
 * the test process, output kept for failure messages) with the test conventions — node's spawn
 * options, and OPSPLANE_TEST_VERBOSE=1 mirroring every line on stderr as `[name] …`.
 */
import type { SpawnOptions } from 'node:child_process';
import { liveProcesses, spawnProcess, type ManagedProcess } from '@opsplane/fleet';

export type TrackedProcess = ManagedProcess;

/** With OPSPLANE_TEST_VERBOSE set: a line sink that mirrors a child's output on stderr. */
export function verboseOutput(name: string): ((line: string) => void) | undefined {
  return process.env.OPSPLANE_TEST_VERBOSE
    ? (line) => void process.stderr.write(`[${name}] ${line}\n`)
    : undefined;
}

/** Spawns a process in its own process group (so its children die with it) and tracks it. */
export function spawnTracked(
  name: string,
  command: string,
  args: readonly string[],
  options: Pick<SpawnOptions, 'env' | 'cwd' | 'uid' | 'gid'> = {},
): TrackedProcess {
  const onLine = verboseOutput(name);
  return spawnProcess(name, command, args, {
    ...(options.env ? { env: options.env } : {}),
    ...(options.cwd !== undefined ? { cwd: String(options.cwd) } : {}),
    ...(options.uid !== undefined ? { uid: options.uid } : {}),
    ...(options.gid !== undefined ? { gid: options.gid } : {}),
    ...(onLine ? { onLine } : {}),
  });
}

/** Stops every process still tracked (for after() hooks). */
export async function stopAll(): Promise<void> {
  await Promise.all(liveProcesses().map((p) => p.stop(2000)));
}
