/**
 * Reading Linux /proc: process identity (pid + start time, so a recycled pid is never mistaken
 * for our package), process groups, CPU ticks and RSS. Every reader returns undefined when the
 * process is gone instead of throwing — processes vanish between any two reads.
 */
import { existsSync } from 'node:fs';
import { readFile, readdir } from 'node:fs/promises';

/** USER_HZ; 100 on every mainstream Linux build (node has no sysconf to ask). */
export const CLK_TCK = 100;

export const procAvailable = (): boolean => existsSync('/proc/self/stat');

export interface ProcStat {
  pid: number;
  comm: string;
  /** R, S, D, Z, T, X … */
  state: string;
  ppid: number;
  pgrp: number;
  /** User + system CPU time in clock ticks. */
  cpuTicks: number;
  /** Start time in clock ticks since boot, as text (field 22) — the identity half of a pid. */
  startTime: string;
}

/** Parses /proc/<pid>/stat text; the comm field may hold spaces and parentheses. */
export function parseProcStat(text: string): ProcStat | undefined {
  const open = text.indexOf('(');
  const close = text.lastIndexOf(')');
  if (open < 0 || close < open) return undefined;
  const pid = Number(text.slice(0, open).trim());
  const rest = text
    .slice(close + 2)
    .trim()
    .split(/\s+/);
  // rest[0] is field 3 (state); field N is rest[N - 3].
  const field = (n: number) => rest[n - 3] ?? '';
  const startTime = field(22);
  if (!Number.isFinite(pid) || startTime === '') return undefined;
  return {
    pid,
    comm: text.slice(open + 1, close),
    state: field(3),
    ppid: Number(field(4)),
    pgrp: Number(field(5)),
    cpuTicks: Number(field(14)) + Number(field(15)),
    startTime,
  };
}

export async function readProcStat(pid: number): Promise<ProcStat | undefined> {
  try {
    return parseProcStat(await readFile(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return undefined;
  }
}

/** Start time of a live (non-zombie) process, or undefined. */
export async function processStartTime(pid: number): Promise<string | undefined> {
  const st = await readProcStat(pid);
  return st && st.state !== 'Z' && st.state !== 'X' ? st.startTime : undefined;
}

/** True when `pid` is alive and is the very process that started at `startTime`. */
export async function isSameProcess(pid: number, startTime: string): Promise<boolean> {
  return (await processStartTime(pid)) === startTime;
}

/** Every live (non-zombie) process (one scan of /proc). */
export async function allProcesses(): Promise<ProcStat[]> {
  let entries: string[];
  try {
    entries = await readdir('/proc');
  } catch {
    return [];
  }
  const stats = await Promise.all(entries.filter((e) => /^\d+$/.test(e)).map((e) => readProcStat(Number(e))));
  return stats.filter((s): s is ProcStat => s !== undefined && s.state !== 'Z');
}

/** Every live process whose process group is `pgid`. */
export async function processGroupMembers(pgid: number): Promise<ProcStat[]> {
  return (await allProcesses()).filter((s) => s.pgrp === pgid);
}

/** Resident set size in bytes (VmRSS from /proc/<pid>/status). */
export async function readRssBytes(pid: number): Promise<number | undefined> {
  try {
    const text = await readFile(`/proc/${pid}/status`, 'utf8');
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(text);
    return m ? Number(m[1]) * 1024 : 0; // kernel threads and zombies have no VmRSS
  } catch {
    return undefined;
  }
}

/** Signals a process group; false when it no longer exists. */
export function signalGroup(pgid: number, signal: NodeJS.Signals | 0): boolean {
  try {
    process.kill(-pgid, signal);
    return true;
  } catch {
    return false;
  }
}

export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    // EPERM: it exists but belongs to someone else.
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * The process-group leader whose environment holds `name=value`: how a package spawned just
 * before an agent crash (its pid never recorded) is found again. Processes we may not read are
 * skipped.
 */
export async function findGroupLeaderByEnv(name: string, value: string): Promise<ProcStat | undefined> {
  const wanted = `${name}=${value}`;
  for (const st of await allProcesses()) {
    if (st.pgrp !== st.pid) continue;
    try {
      const env = await readFile(`/proc/${st.pid}/environ`, 'latin1');
      if (env.split('\0').includes(wanted)) return st;
    } catch {
      /* gone, or not ours */
    }
  }
  return undefined;
}
