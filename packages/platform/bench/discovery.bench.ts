/**
 * Discovery benchmark against a real etcd (started by test-support): put→callback latency over
 * ≥1000 writes (new keys and updates; sequential, then in bursts of concurrent writes), and how
 * soon a controller whose lease keepalive stops is reported deleted. Prints ONE JSON object on
 * stdout; everything else goes to stderr.
 *
 *   npm run bench:discovery            (BENCH_PUTS=2000 to change the count)
 */
import { performance } from 'node:perf_hooks';
import { Etcd3 } from 'etcd3';
import { pino } from 'pino';
import { startEtcd, type EtcdHandle } from '@opsplane/test-support';
import { ControllerDiscovery } from '../src/index.js';

const PREFIX = 'controllers/';
const PUTS = Math.max(1000, Number(process.env.BENCH_PUTS ?? 1200));
const NEW_KEYS = Math.floor(PUTS / 4);
const BURST = 50;
const LEASE_TTL_S = 2;
const LEASE_SAMPLES = 3;

function value(area: string, id: string, agentCount: number): string {
  return JSON.stringify({
    id,
    address: `10.0.0.1:${9000 + (agentCount % 1000)}`,
    area,
    start_time: '2024-01-15T10:30:00Z',
    version: '1.0.0',
    last_heartbeat: new Date().toISOString(),
    agent_count: agentCount,
    metadata: {},
  });
}

function stats(samples: number[]) {
  const s = [...samples].sort((a, b) => a - b);
  const q = (p: number) => s[Math.min(s.length - 1, Math.max(0, Math.ceil(p * s.length) - 1))] ?? NaN;
  const r = (x: number) => Math.round(x * 1000) / 1000;
  return {
    count: s.length,
    p50_ms: r(q(0.5)),
    p90_ms: r(q(0.9)),
    p99_ms: r(q(0.99)),
    max_ms: r(s[s.length - 1] ?? NaN),
    mean_ms: r(s.reduce((a, b) => a + b, 0) / Math.max(1, s.length)),
  };
}

async function main(): Promise<void> {
  const log = pino({ level: process.env.OPSPLANE_LOG_LEVEL ?? 'warn' }, pino.destination(2));
  let etcd: EtcdHandle | undefined;
  let writer: Etcd3 | undefined;
  let reader: Etcd3 | undefined;
  let discovery: ControllerDiscovery | undefined;
  try {
    etcd = await startEtcd();
    writer = new Etcd3({ hosts: etcd.endpoints });
    reader = new Etcd3({ hosts: etcd.endpoints });
    discovery = new ControllerDiscovery(reader, PREFIX, { logger: log });

    // Callback waiters by "area/id" + agent_count, so a write is matched to its own callback.
    const waiters = new Map<string, () => void>();
    const deletes = new Map<string, () => void>();
    discovery.onControllerUpdate((c) => waiters.get(`${c.area}/${c.id}#${c.agent_count}`)?.());
    discovery.onControllerDelete((k) => deletes.get(k)?.());
    await discovery.start();

    const rels: string[] = [];
    let counter = 0;
    const nextWrite = (i: number) => {
      let rel: string;
      if (i < NEW_KEYS || rels.length === 0) {
        rel = `area-${i % 8}/ctl-${i}`;
        rels.push(rel);
      } else {
        rel = rels[Math.floor(Math.random() * rels.length)]!;
      }
      return { rel, agentCount: ++counter };
    };
    const timedPut = async (rel: string, agentCount: number): Promise<number> => {
      const [area, id] = rel.split('/') as [string, string];
      const tag = `${rel}#${agentCount}`;
      const seen = new Promise<number>((resolve) => waiters.set(tag, () => resolve(performance.now())));
      const t0 = performance.now();
      await writer!
        .put(PREFIX + rel)
        .value(value(area, id, agentCount))
        .exec();
      const t1 = await seen;
      waiters.delete(tag);
      return t1 - t0;
    };

    // Warm-up (connections, JIT) — not measured.
    for (let i = 0; i < 20; i++) await timedPut(`warm/w${i}`, ++counter);

    const sequential: number[] = [];
    let newKeys = 0;
    for (let i = 0; i < PUTS; i++) {
      const isNew = i < NEW_KEYS;
      if (isNew) newKeys++;
      const w = nextWrite(i);
      sequential.push(await timedPut(w.rel, w.agentCount));
    }

    // Bursts: BURST concurrent writes at a time (latency includes queueing behind each other).
    const burst: number[] = [];
    for (let b = 0; b < Math.ceil(PUTS / BURST); b++) {
      const batch = Array.from({ length: BURST }, () => {
        const rel = rels[Math.floor(Math.random() * rels.length)]!;
        return { rel, agentCount: ++counter };
      });
      // One write per key per burst, so each callback is unambiguous.
      const uniq = [...new Map(batch.map((w) => [w.rel, w])).values()];
      burst.push(...(await Promise.all(uniq.map((w) => timedPut(w.rel, w.agentCount)))));
    }

    // Lease expiry: keepalive once, then stop keeping alive (no revoke) and time the delete.
    const lease: Array<{ detected_after_ms: number; after_expiry_deadline_ms: number }> = [];
    for (let i = 0; i < LEASE_SAMPLES; i++) {
      const rel = `lease-area/ctl-${i}`;
      const l = writer.lease(LEASE_TTL_S, { autoKeepAlive: false });
      const id = await l.grant();
      const tag = `${rel}#0`;
      const seen = new Promise<void>((resolve) => waiters.set(tag, resolve));
      await writer
        .put(PREFIX + rel)
        .value(value('lease-area', `ctl-${i}`, 0))
        .lease(id)
        .exec();
      await seen;
      const gone = new Promise<number>((resolve) => deletes.set(rel, () => resolve(performance.now())));
      await l.keepaliveOnce();
      const keptAliveAt = performance.now();
      l.release(); // stops keepalives; etcd expires the lease by itself
      const stoppedAt = performance.now();
      const deletedAt = await gone;
      lease.push({
        detected_after_ms: Math.round(deletedAt - stoppedAt),
        after_expiry_deadline_ms: Math.round(deletedAt - (keptAliveAt + LEASE_TTL_S * 1000)),
      });
    }
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;

    const result = {
      benchmark: 'controller-discovery',
      etcd: 'single member, loopback',
      puts: sequential.length,
      new_keys: newKeys,
      updates: sequential.length - newKeys,
      ...stats(sequential),
      burst: { concurrency: BURST, ...stats(burst) },
      lease_expiry: {
        ttl_ms: LEASE_TTL_S * 1000,
        detected_after_ms: median(lease.map((x) => x.detected_after_ms)),
        after_expiry_deadline_ms: median(lease.map((x) => x.after_expiry_deadline_ms)),
        samples: lease,
      },
      discovery: discovery.stats(),
      node: process.version,
    };
    process.stdout.write(`${JSON.stringify(result)}\n`);
  } finally {
    await discovery?.stop();
    writer?.close();
    reader?.close();
    await etcd?.stop();
  }
}

main().then(
  () => undefined,
  (e: unknown) => {
    process.stderr.write(
      `discovery bench failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`,
    );
    process.exitCode = 1;
  },
);
