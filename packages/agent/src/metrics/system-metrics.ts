/**
 * Host metrics for `metrics_system`, from /proc where it exists (CPU from /proc/stat deltas,
 * load, memory, uptime, per-interface network counters) and fs.statfs on the real file systems
 * of /proc/mounts; node:os where /proc is missing. CPU % is the average since the previous
 * collection (or over a short sample when there is none recent).
 */
import { readFile, statfs } from 'node:fs/promises';
import { cpus, freemem, loadavg, totalmem, uptime } from 'node:os';
import type { SystemMetrics } from '@opsplane/models';
import { procAvailable } from '../proc/procfs.js';
import { sleep } from '@opsplane/kit';

interface CpuSample {
  at: number;
  idle: number;
  total: number;
}

/** File systems that hold data (not proc, sysfs, cgroup, tmpfs, …). */
const REAL_FS = new Set([
  'ext2',
  'ext3',
  'ext4',
  'xfs',
  'btrfs',
  'zfs',
  'f2fs',
  'vfat',
  'exfat',
  'ntfs',
  'ntfs3',
  'jfs',
  'reiserfs',
  'bcachefs',
  'nfs',
  'nfs4',
  'cifs',
  'fuseblk',
]);
const SAMPLE_MS = 250;
const MAX_SAMPLE_AGE_MS = 60_000;

async function readCpuSample(): Promise<CpuSample> {
  if (procAvailable()) {
    const text = await readFile('/proc/stat', 'utf8');
    const line = text.split('\n').find((l) => l.startsWith('cpu '));
    if (line) {
      const v = line.trim().split(/\s+/).slice(1).map(Number);
      // user nice system idle iowait irq softirq steal (guest is already inside user)
      const idle = (v[3] ?? 0) + (v[4] ?? 0);
      const total = v.slice(0, 8).reduce((a, b) => a + b, 0);
      return { at: Date.now(), idle, total };
    }
  }
  let idle = 0;
  let total = 0;
  for (const c of cpus()) {
    idle += c.times.idle;
    total += c.times.user + c.times.nice + c.times.sys + c.times.idle + c.times.irq;
  }
  return { at: Date.now(), idle, total };
}

function cpuPercent(a: CpuSample, b: CpuSample): number {
  const dt = b.total - a.total;
  if (dt <= 0) return 0;
  return Math.min(100, Math.max(0, Math.round(((dt - (b.idle - a.idle)) / dt) * 10000) / 100));
}

async function memory(): Promise<SystemMetrics['memory']> {
  let total = totalmem();
  let available = freemem();
  try {
    const text = await readFile('/proc/meminfo', 'utf8');
    const kb = (key: string) => {
      const m = new RegExp(`^${key}:\\s+(\\d+)`, 'm').exec(text);
      return m ? Number(m[1]) * 1024 : undefined;
    };
    total = kb('MemTotal') ?? total;
    available = kb('MemAvailable') ?? (kb('MemFree') ?? 0) + (kb('Buffers') ?? 0) + (kb('Cached') ?? 0);
  } catch {
    // no /proc: node:os values
  }
  const used = Math.max(0, total - available);
  return {
    total_bytes: total,
    used_bytes: used,
    available_bytes: available,
    used_percent: total > 0 ? Math.round((used / total) * 10000) / 100 : 0,
  };
}

/** /proc/mounts escapes spaces etc. as octal (\040). */
const unescapeMount = (s: string) =>
  s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));

async function disks(): Promise<SystemMetrics['disks']> {
  let mounts: { source: string; mount: string; fstype: string }[] = [];
  try {
    const text = await readFile('/proc/mounts', 'utf8');
    mounts = text
      .split('\n')
      .map((l) => l.split(' '))
      .filter((f) => f.length >= 3)
      .map((f) => ({
        source: unescapeMount(f[0] ?? ''),
        mount: unescapeMount(f[1] ?? ''),
        fstype: f[2] ?? '',
      }))
      .filter((m) => REAL_FS.has(m.fstype) || (m.fstype === 'overlay' && m.mount === '/'));
  } catch {
    mounts = [{ source: '', mount: '/', fstype: '' }];
  }
  const seen = new Set<string>();
  const out: SystemMetrics['disks'] = [];
  for (const m of mounts) {
    // Bind mounts and btrfs subvolumes repeat a device; report it once.
    const key = m.source.startsWith('/dev/') ? m.source : m.mount;
    if (seen.has(key)) continue;
    try {
      const s = await statfs(m.mount);
      const total = s.blocks * s.bsize;
      if (total === 0) continue;
      const used = (s.blocks - s.bfree) * s.bsize;
      const avail = s.bavail * s.bsize;
      seen.add(key);
      out.push({
        mount: m.mount,
        ...(m.fstype ? { filesystem: m.fstype } : {}),
        total_bytes: total,
        used_bytes: used,
        // df's definition: what non-root users can still use counts as free.
        used_percent: used + avail > 0 ? Math.round((used / (used + avail)) * 10000) / 100 : 0,
      });
    } catch {
      // unmounted meanwhile or not permitted
    }
  }
  return out;
}

async function network(): Promise<SystemMetrics['network']> {
  const interfaces: { name: string; rx_bytes: number; tx_bytes: number }[] = [];
  try {
    const text = await readFile('/proc/net/dev', 'utf8');
    for (const line of text.split('\n').slice(2)) {
      const i = line.indexOf(':');
      if (i < 0) continue;
      const name = line.slice(0, i).trim();
      if (name === 'lo') continue;
      const f = line
        .slice(i + 1)
        .trim()
        .split(/\s+/)
        .map(Number);
      interfaces.push({ name, rx_bytes: f[0] ?? 0, tx_bytes: f[8] ?? 0 });
    }
  } catch {
    // no /proc: counters unavailable
  }
  return {
    rx_bytes: interfaces.reduce((a, x) => a + x.rx_bytes, 0),
    tx_bytes: interfaces.reduce((a, x) => a + x.tx_bytes, 0),
    interfaces,
  };
}

async function uptimeSeconds(): Promise<number> {
  try {
    const text = await readFile('/proc/uptime', 'utf8');
    const v = Number(text.split(/\s+/)[0]);
    if (Number.isFinite(v)) return v;
  } catch {
    // fall through
  }
  return uptime();
}

async function loadAverage(): Promise<SystemMetrics['load_average']> {
  try {
    const [a, b, c] = (await readFile('/proc/loadavg', 'utf8')).split(/\s+/).map(Number);
    if (a !== undefined && b !== undefined && c !== undefined) return { load1: a, load5: b, load15: c };
  } catch {
    // fall through
  }
  const [a = 0, b = 0, c = 0] = loadavg();
  return { load1: a, load5: b, load15: c };
}

export class SystemMetricsCollector {
  private last: CpuSample | undefined;

  constructor(private readonly agentId: string) {}

  private async cpu(): Promise<number> {
    let prev = this.last;
    if (!prev || Date.now() - prev.at > MAX_SAMPLE_AGE_MS || Date.now() - prev.at < 100) {
      prev = await readCpuSample();
      await sleep(SAMPLE_MS);
    }
    const now = await readCpuSample();
    this.last = now;
    return cpuPercent(prev, now);
  }

  async collect(): Promise<SystemMetrics> {
    const [cpuPct, load, mem, dsk, net, up] = await Promise.all([
      this.cpu(),
      loadAverage(),
      memory(),
      disks(),
      network(),
      uptimeSeconds(),
    ]);
    return {
      agent_id: this.agentId,
      cpu_percent: cpuPct,
      cpu_count: cpus().length,
      load_average: load,
      memory: mem,
      disks: dsk,
      network: net,
      uptime_seconds: up,
      collected_at: new Date().toISOString(),
    };
  }
}
