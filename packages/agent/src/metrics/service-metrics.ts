/**
 * Per-package metrics for `metrics_services`: CPU % and RSS summed over the package's whole
 * process group (a service that forks workers is measured as a whole), restarts, uptime, pid.
 * CPU % is relative to one core (200 = two cores busy), as top reports it.
 */
import type { ServiceMetric, ServiceMetrics } from '@opsplane/models';
import type { Supervisor } from '../packages/supervisor.js';
import { allProcesses, CLK_TCK, procAvailable, readRssBytes } from '../proc/procfs.js';
import { sleep } from '@opsplane/kit';

interface GroupSample {
  at: number;
  ticks: number;
  rss: number;
}

const SAMPLE_MS = 250;
const MAX_SAMPLE_AGE_MS = 60_000;

/** One /proc scan for all groups; each sample sums the group's members. */
async function sampleGroups(pgids: readonly number[]): Promise<GroupSample[]> {
  const procs = await allProcesses();
  return Promise.all(
    pgids.map(async (pgid) => {
      const members = procs.filter((p) => p.pgrp === pgid);
      const rss = await Promise.all(members.map((m) => readRssBytes(m.pid)));
      return {
        at: Date.now(),
        ticks: members.reduce((a, m) => a + m.cpuTicks, 0),
        rss: rss.reduce<number>((a, b) => a + (b ?? 0), 0),
      };
    }),
  );
}

export class ServiceMetricsCollector {
  /** Last sample per "pid@startedAt", so a restarted package never diffs against its predecessor. */
  private last = new Map<string, GroupSample>();

  constructor(
    private readonly agentId: string,
    private readonly supervisor: Supervisor,
  ) {}

  async collect(filter: { package?: string; runningOnly?: boolean } = {}): Promise<ServiceMetrics> {
    const names = filter.package !== undefined ? [filter.package] : this.supervisor.names();
    const targets = names.flatMap((name) => {
      const r = this.supervisor.get(name);
      return r ? [{ name, runner: r, proc: r.processInfo() }] : [];
    });
    const withProc = targets.flatMap((t) =>
      t.proc ? [{ ...t, proc: t.proc, key: `${t.proc.pid}@${t.proc.startedAt}` }] : [],
    );
    const useProc = procAvailable();
    const prev = new Map<string, GroupSample>();
    if (useProc) {
      const fresh = withProc.filter((t) => {
        const p = this.last.get(t.key);
        return !p || Date.now() - p.at > MAX_SAMPLE_AGE_MS || Date.now() - p.at < 100;
      });
      for (const t of withProc) {
        const p = this.last.get(t.key);
        if (p && !fresh.includes(t)) prev.set(t.key, p);
      }
      if (fresh.length > 0) {
        const first = await sampleGroups(fresh.map((t) => t.proc.pid));
        fresh.forEach((t, i) => prev.set(t.key, first[i] as GroupSample));
        await sleep(SAMPLE_MS);
      }
    }
    const now = new Map<string, GroupSample>();
    if (useProc) {
      const samples = await sampleGroups(withProc.map((t) => t.proc.pid));
      withProc.forEach((t, i) => now.set(t.key, samples[i] as GroupSample));
    }
    this.last = now;

    const services: ServiceMetric[] = [];
    for (const t of targets) {
      if (filter.runningOnly && !t.proc) continue;
      const key = t.proc ? `${t.proc.pid}@${t.proc.startedAt}` : '';
      const a = prev.get(key);
      const b = now.get(key);
      const cpu =
        a && b && b.at > a.at
          ? Math.max(0, Math.round(((b.ticks - a.ticks) / CLK_TCK / ((b.at - a.at) / 1000)) * 10000) / 100)
          : 0;
      services.push({
        name: t.name,
        is_running: t.proc !== undefined,
        ...(t.proc ? { pid: t.proc.pid } : {}),
        cpu_percent: cpu,
        rss_bytes: b?.rss ?? 0,
        restarts: t.runner.restartCount,
        uptime_seconds: t.proc ? Math.round((Date.now() - t.proc.startedAt) / 10) / 100 : 0,
      });
    }
    return { agent_id: this.agentId, services, collected_at: new Date().toISOString() };
  }
}
