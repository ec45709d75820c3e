/**
 * The replica part of bench:platform: N `opsplane server` processes on one PostgreSQL database
 * and the benchmark's etcd (the simulated controllers), behind a round-robin client. Measures the
 * warm filtered page through the replicas in turn, and how long after a kill -9 of the elected
 * leader another replica has taken over (opsplane_cluster_leader 1 on its /metrics) — against
 * the goal of the leader lease TTL + 1 s.
 */
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import {
  startPostgresDatabase,
  startServerProcess,
  tempDir,
  waitFor,
  type ServerProcess,
} from '@opsplane/test-support';

export interface ReplicaBenchOptions {
  etcdEndpoints: readonly string[];
  replicas: number;
  totalAgents: number;
  requests: number;
  /** The page to time (filtered, sorted). */
  path: string;
  leaderTtlS: number;
  stats(samples: number[]): Record<string, number>;
  log(line: string): void;
}

const ADMIN_PASSWORD = 'bench-replicas-password';

async function isLeader(s: ServerProcess, token: string): Promise<boolean> {
  const r = await fetch(`${s.url}/metrics`, {
    headers: { authorization: `Bearer ${token}` },
    signal: AbortSignal.timeout(2000),
  }).catch(() => undefined);
  if (!r || r.status !== 200) return false;
  return /^opsplane_cluster_leader\{[^}]*\} 1$/m.test(await r.text());
}

export async function benchReplicas(o: ReplicaBenchOptions): Promise<Record<string, unknown>> {
  const db = await startPostgresDatabase();
  const dir = await tempDir('opsplane-bench-replicas-');
  const replicas: ServerProcess[] = [];
  try {
    const masterKey = randomBytes(32).toString('base64');
    o.log(`starting ${o.replicas} server replicas on PostgreSQL (${db.server})…`);
    for (let i = 1; i <= o.replicas; i++) {
      replicas.push(
        await startServerProcess({
          dir: `${dir.path}/r${i}`,
          etcdEndpoints: o.etcdEndpoints,
          adminPassword: ADMIN_PASSWORD,
          env: { OPSPLANE_MASTER_KEY: masterKey, OPSPLANE_MAX_WORKERS: '10', OPSPLANE_LOG_LEVEL: 'warn' },
          server: {
            database_url: db.url,
            replica_id: `r${i}`,
            leader_ttl: `${o.leaderTtlS}s`,
            agents_refresh_interval: '1h',
          },
        }),
      );
    }
    const first = replicas[0]!;
    const cookie = await first.login('admin', ADMIN_PASSWORD);
    const made = await first.call<{ token: string }>(cookie, 'POST', '/tokens', {
      name: 'bench',
      role: 'viewer',
    });
    if (made.status !== 201) throw new Error(`token: ${made.status} ${JSON.stringify(made.json)}`);
    const token = made.json.token;
    const headers = { authorization: `Bearer ${token}` };
    // Each replica builds its own view of every agent.
    for (const s of replicas) {
      await waitFor(
        async () => {
          const r = await fetch(`${s.url}/api/v1/agents?pageSize=1`, { headers });
          return r.status === 200 && ((await r.json()) as { total: number }).total === o.totalAgents;
        },
        { timeoutMs: 600_000, intervalMs: 500, what: `${s.url}: every agent in the view` },
      );
    }
    o.log('replicas ready; timing the round-robin page…');
    let next = 0;
    const get = async () => {
      const s = replicas[next++ % replicas.length]!;
      const t = performance.now();
      const res = await fetch(`${s.url}${o.path}`, { headers });
      await res.arrayBuffer();
      if (res.status !== 200) throw new Error(`${o.path}: ${res.status}`);
      return performance.now() - t;
    };
    for (let i = 0; i < 30; i++) await get();
    const samples: number[] = [];
    for (let i = 0; i < o.requests; i++) samples.push(await get());

    // Leader takeover: kill -9 the leader, time until another one leads.
    let leader: ServerProcess | undefined;
    await waitFor(
      async () => {
        for (const s of replicas) if (await isLeader(s, token)) leader = s;
        return leader !== undefined;
      },
      { timeoutMs: 60_000, intervalMs: 200, what: 'a leader' },
    );
    const killedAt = performance.now();
    await leader!.kill();
    let takenOverBy: ServerProcess | undefined;
    await waitFor(
      async () => {
        for (const s of replicas) if (s !== leader && (await isLeader(s, token))) takenOverBy = s;
        return takenOverBy !== undefined;
      },
      { timeoutMs: (o.leaderTtlS + 30) * 1000, intervalMs: 50, what: 'a new leader' },
    );
    const takeoverMs = performance.now() - killedAt;
    return {
      replicas: o.replicas,
      database: `postgresql (${db.server})`,
      page_warm_round_robin: { path: o.path, ...o.stats(samples) },
      leader_ttl_s: o.leaderTtlS,
      leader_takeover_after_kill9_ms: Math.round(takeoverMs),
      leader_takeover_goal_ms: o.leaderTtlS * 1000 + 1000,
    };
  } finally {
    for (const s of replicas) await s.stop().catch(() => undefined);
    await db.drop().catch(() => undefined);
    await dir.cleanup();
  }
}
