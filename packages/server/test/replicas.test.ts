/**
 * Several server replicas, real parts only: three `opsplane server` processes on one PostgreSQL
 * database and a 3-member etcd, a fleet (two controllers, agents running the sample `web`
 * package, which logs every start and takes 1.5 s to stop), OpenSSH hosts in network namespaces
 * to deploy onto, and a webhook receiver run by the test.
 *
 * The elected leader is SIGKILLed while it evaluates an alert, while a deployment rollout runs
 * and while it runs a batch; the killed replica is started again each time. Afterwards every
 * alert fired and resolved once (exactly one delivery per idempotency key at the receiver),
 * every deployment finished, every batch holds the true result of each agent, and nothing is
 * left `running`. Sessions, the login rate limit and live event streams work across replicas.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { chmod, mkdir } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { packAgentBundle } from '@opsplane/agent';
import {
  pidAlive,
  skipUnlessAvailable,
  sleep,
  sshHostsDependency,
  startEtcdCluster,
  startFleet,
  startPostgresDatabase,
  startServerProcess,
  startSshHosts,
  tempDir,
  waitFor,
  type EtcdHandle,
  type Fleet,
  type FleetAgent,
  type PostgresDatabase,
  type ServerProcess,
  type SshHosts,
} from '@opsplane/test-support';
import type {
  AgentListResponse,
  Alert,
  AlertListResponse,
  AlertNotification,
  BatchJob,
  Rollout,
} from '@opsplane/api';

const AREA = 'area-1';
const TOKEN = 'replicas-controller-token-0123456789';
const SECRET = 'replicas-area-agent-secret-0123456789';
const ADMIN_PASSWORD = 'replicas-admin-password';
const LEADER_TTL_S = 3;
const LOGIN_LIMIT = 20;

interface Delivery {
  key: string;
  body: AlertNotification;
}

async function startReceiver(): Promise<{ url: string; got: Delivery[]; close(): Promise<void> }> {
  const got: Delivery[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      got.push({
        key: String(req.headers['idempotency-key'] ?? ''),
        body: JSON.parse(Buffer.concat(chunks).toString('utf8')) as AlertNotification,
      });
      res.writeHead(200).end('ok');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/hook`,
    got,
    close: () => new Promise((r) => server.close(() => r())),
  };
}

/** Every start of an agent's web package, as the package wrote them (pids). */
function starts(agent: FleetAgent): number[] {
  try {
    return readFileSync(`${agent.package('web').dir}/starts.log`, 'utf8')
      .trim()
      .split('\n')
      .filter(Boolean)
      .map((l) => Number(l.split(' ')[1]));
  } catch {
    return [];
  }
}

const skip = skipUnlessAvailable(sshHostsDependency());

describe('three server replicas on one PostgreSQL and a 3-member etcd', { timeout: 600_000, skip }, () => {
  let etcd: EtcdHandle;
  let db: PostgresDatabase;
  let hosts: SshHosts;
  let fleet: Fleet;
  let receiver: Awaited<ReturnType<typeof startReceiver>>;
  let work: Awaited<ReturnType<typeof tempDir>>;
  let sql: pg.Pool;
  const replicas: ServerProcess[] = [];
  const cookies = new Map<ServerProcess, string>();
  const masterKey = randomBytes(32).toString('base64');

  const call = async <T>(s: ServerProcess, method: string, path: string, body?: unknown) => {
    let cookie = cookies.get(s);
    if (!cookie) {
      cookie = await s.login('admin', ADMIN_PASSWORD);
      cookies.set(s, cookie);
    }
    return s.call<T>(cookie, method, path, body);
  };

  /** The replica that says it leads (opsplane_cluster_leader 1), if exactly one does. */
  async function leader(): Promise<ServerProcess | undefined> {
    const leading: ServerProcess[] = [];
    for (const s of replicas) {
      if (!s.process.running) continue;
      const r = await fetch(`${s.url}/metrics`, { headers: { cookie: cookies.get(s) ?? '' } }).catch(
        () => undefined,
      );
      if (!r || r.status !== 200) continue;
      if (/^opsplane_cluster_leader\{[^}]*\} 1$/m.test(await r.text())) leading.push(s);
    }
    return leading.length === 1 ? leading[0] : undefined;
  }

  async function waitLeader(not?: ServerProcess): Promise<ServerProcess> {
    let found: ServerProcess | undefined;
    await waitFor(
      async () => {
        found = await leader();
        return found !== undefined && found !== not;
      },
      { timeoutMs: 30_000, intervalMs: 200, what: 'exactly one replica leading' },
    );
    return found!;
  }

  /** kill -9 of a replica, then the same replica started again (same config). */
  async function crash(s: ServerProcess): Promise<void> {
    await s.kill(); // its sessions live in the database: the cookie works after the restart
  }

  async function revive(s: ServerProcess): Promise<void> {
    await s.restart();
    await call(s, 'GET', '/auth/me');
  }

  before(async () => {
    work = await tempDir('opsplane-replicas-');
    await chmod(work.path, 0o755);
    receiver = await startReceiver();
    etcd = await startEtcdCluster(3);
    db = await startPostgresDatabase();
    sql = new pg.Pool({ connectionString: db.url, max: 2 });
    hosts = await startSshHosts(2);
    fleet = await startFleet({
      etcd,
      apiToken: TOKEN,
      secrets: { [AREA]: SECRET },
      controllerAddress: hosts.machineAddress,
      areas: [{ name: AREA, controllers: 2, agents: 4 }],
      packages: [{ kind: 'web', config: { stop_delay: 1500 } }],
    });
    const bundlesDir = join(work.path, 'bundles');
    await mkdir(bundlesDir, { recursive: true });
    await packAgentBundle({ version: '1.0.0', outDir: bundlesDir });
    for (const name of ['r1', 'r2', 'r3']) {
      replicas.push(
        await startServerProcess({
          dir: join(work.path, name),
          etcdEndpoints: etcd.endpoints,
          areas: { [AREA]: { controller_token: TOKEN, agent_secret: SECRET } },
          adminPassword: ADMIN_PASSWORD,
          env: { OPSPLANE_MASTER_KEY: masterKey },
          server: {
            database_url: db.url,
            replica_id: name,
            leader_ttl: `${LEADER_TTL_S}s`,
            batch_lease_ttl: '4s',
            batch_wait: '0s',
            agents_refresh_interval: '1s',
            login_rate_limit: { max: LOGIN_LIMIT, window: '10m' },
            alerts: { interval: '500ms', pending_for: '2s', webhooks: [{ url: receiver.url }] },
            deploy: {
              bundles_dir: bundlesDir,
              lease_ttl: '4s',
              poll_interval: '300ms',
              online_timeout: '30s',
              connect_timeout: '5s',
            },
          },
        }),
      );
    }
    const first = replicas[0]!;
    await waitFor(
      async () =>
        (await call<AgentListResponse>(first, 'GET', '/agents?status=online&refresh=true')).json.total ===
        fleet.agents.length,
      { timeoutMs: 30_000, intervalMs: 300, what: 'every agent online' },
    );
  });

  after(async () => {
    for (const s of replicas) await s.stop().catch(() => undefined);
    await fleet?.stop();
    await hosts?.stop();
    await sql?.end();
    await db?.drop();
    await etcd?.stop();
    await receiver?.close();
    await work?.cleanup();
  });

  it('one leader; a session made on one replica works on every replica', async () => {
    await Promise.all(replicas.map((s) => call(s, 'GET', '/auth/me')));
    await waitLeader();
    // A session made on one replica works on the others.
    const cookie = await replicas[0]!.login('admin', ADMIN_PASSWORD);
    for (const s of replicas) assert.equal((await s.call(cookie, 'GET', '/auth/me')).status, 200);
  });

  it('kill -9 of the leader while it evaluates an alert: the alert fires once and resolves once', async () => {
    const victim = fleet.agents[3]!;
    const subject = `agent:${victim.code}`;
    const ldr = await waitLeader();
    // The agent disappears; its alert is pending (2 s) on the leader — which dies meanwhile.
    await victim.kill();
    await sleep(1200);
    await crash(ldr);
    const next = await waitLeader(ldr);
    await revive(ldr);
    let alert: Alert | undefined;
    await waitFor(
      async () => {
        const r = await call<AlertListResponse>(next, 'GET', `/alerts?kind=agent_offline&status=firing`);
        alert = r.json.items.find((a) => a.subject === subject);
        return alert !== undefined;
      },
      { timeoutMs: 60_000, intervalMs: 300, what: 'the agent_offline alert firing' },
    );
    await waitFor(() => receiver.got.some((d) => d.key === `alert:${alert!.id}:firing`), {
      timeoutMs: 20_000,
      what: 'the firing notification delivered',
    });
    // Back online; the new leader dies right as the condition clears.
    await victim.start();
    await crash(next);
    const third = await waitLeader(next);
    await revive(next);
    await waitFor(
      async () => (await call<Alert>(third, 'GET', `/alerts/${alert!.id}`)).json.status === 'resolved',
      { timeoutMs: 60_000, intervalMs: 300, what: 'the alert resolved' },
    );
    await waitFor(() => receiver.got.some((d) => d.key === `alert:${alert!.id}:resolved`), {
      timeoutMs: 20_000,
      what: 'the resolved notification delivered',
    });
    await sleep(3000); // a duplicate would come now
    const all = await call<AlertListResponse>(third, 'GET', `/alerts?kind=agent_offline&pageSize=100`);
    const forSubject = all.json.items.filter((a) => a.subject === subject);
    assert.equal(forSubject.length, 1, `one alert for ${subject}: ${JSON.stringify(forSubject)}`);
    const keys = receiver.got.filter((d) => d.body.alert.subject === subject).map((d) => d.key);
    assert.deepEqual(keys.sort(), [`alert:${alert!.id}:firing`, `alert:${alert!.id}:resolved`].sort());
  });

  it('kill -9 of the leader and of the replica running a deployment: the rollout finishes', async () => {
    const ids: string[] = [];
    for (const [i, h] of hosts.hosts.entries()) {
      const u = h.users.key!;
      const r = await call<{ id: string }>(replicas[0]!, 'POST', '/devices', {
        name: `host-${i}`,
        ip: h.address,
        function_area: AREA,
        os: 'linux',
        login: {
          username: u.username,
          port: h.port,
          ...('privateKey' in u ? { private_key: u.privateKey } : {}),
        },
        metadata: { install_scope: 'user' },
      });
      assert.equal(r.status, 201, JSON.stringify(r.json));
      ids.push(r.json.id);
    }
    const ldr = await waitLeader();
    const started = await call<Rollout>(ldr, 'POST', '/deployments', {
      type: 'install',
      version: '1.0.0',
      devices: ids,
      batch_size: 1,
    });
    assert.equal(started.status, 202, JSON.stringify(started.json));
    // Wait until a deployment runs, then kill its owner and the leader (maybe the same one).
    let owner = '';
    await waitFor(
      async () => {
        const r = await sql.query<{ lease_owner: string }>(
          `SELECT lease_owner FROM deployments WHERE rollout_id = $1 AND status = 'running'`,
          [started.json.id],
        );
        owner = r.rows[0]?.lease_owner ?? '';
        return owner !== '';
      },
      { timeoutMs: 60_000, intervalMs: 100, what: 'a deployment running' },
    );
    await sleep(1500);
    const runner = replicas.find((s, i) => owner.startsWith(`r${i + 1}:`))!;
    const killed = [...new Set([runner, ldr])];
    for (const s of killed) await crash(s);
    for (const s of killed) await revive(s);
    const any = replicas.find((s) => !killed.includes(s)) ?? replicas[0]!;
    let rollout: Rollout | undefined;
    await waitFor(
      async () => {
        rollout = (await call<Rollout>(any, 'GET', `/rollouts/${started.json.id}`)).json;
        return rollout.status !== 'running';
      },
      { timeoutMs: 240_000, intervalMs: 500, what: 'the rollout finished' },
    );
    assert.deepEqual(
      rollout!.deployments.map((d) => [d.device_name, d.status]).sort(),
      [
        ['host-0', 'succeeded'],
        ['host-1', 'succeeded'],
      ],
      JSON.stringify(rollout!.deployments.map((d) => [d.device_name, d.status, d.error])),
    );
    assert.ok(
      rollout!.deployments.some((d) => d.attempt > 1),
      'the interrupted deployment was taken over (attempt 2)',
    );
  });

  it('kill -9 of the leader running a batch, restarted at once: the batch is reconciled; live events on another replica', async () => {
    const ldr = await waitLeader();
    const other = replicas.find((s) => s !== ldr)!;
    const agents = fleet.agents.slice(0, 3);
    const before = new Map(agents.map((a) => [a.code, starts(a).length]));
    const res = await call<BatchJob>(ldr, 'POST', '/batches?wait=0s', {
      action: 'restart',
      agents: agents.map((a) => a.code),
      packages: ['web'],
      timeout: '40s',
    });
    assert.equal(res.status, 202, JSON.stringify(res.json));
    const id = res.json.id;
    // Follow it live on another replica while the one running it dies.
    const events: string[] = [];
    const stream = (async () => {
      const r = await fetch(`${other.url}/api/v1/batches/${id}/events`, {
        headers: { cookie: cookies.get(other) ?? '' },
        signal: AbortSignal.timeout(90_000),
      });
      assert.equal(r.status, 200);
      const text = await r.text();
      for (const m of text.matchAll(/^event: (\w+)$/gm)) events.push(m[1]!);
    })();
    await sleep(600);
    await crash(ldr);
    // Back at once under the same replica_id: it must not hold on to the dead run's batch.
    await revive(ldr);
    let job: BatchJob | undefined;
    await waitFor(
      async () => {
        job = (await call<BatchJob>(other, 'GET', `/batches/${id}`)).json;
        return job.status !== 'running';
      },
      { timeoutMs: 90_000, intervalMs: 500, what: 'the batch finished on another replica' },
    );
    await stream;
    assert.ok(
      events.includes('end'),
      `the stream on another replica ended with the job: ${events.join(',')}`,
    );
    await sleep(500);
    for (const a of agents) {
      const r = job!.results!.find((x) => x.agent_code === a.code);
      assert.ok(r, `a result for ${a.code}`);
      const did = starts(a).length - before.get(a.code)!;
      assert.ok(did <= 1, `${a.code} restarted at most once (${did})`);
      if (did === 1) {
        assert.equal(r.success, true, `${a.code} restarted and its result says so: ${JSON.stringify(r)}`);
        assert.ok(r.new_pid !== undefined && starts(a).includes(r.new_pid));
      } else
        assert.equal(
          r.success,
          false,
          `${a.code} did not restart and its result says so: ${JSON.stringify(r)}`,
        );
      assert.equal(starts(a).filter((pid) => pidAlive(pid)).length, 1, `${a.code}: one web process`);
    }
  });

  it('the login rate limit counts across replicas', async () => {
    // Failed logins spread over the replicas count once: the limit holds cluster-wide.
    // (Every login of this file counts: the sessions of the replicas and the one above.)
    let allowed = 0;
    let limited = false;
    for (let i = 0; i < LOGIN_LIMIT * 3; i++) {
      const s = replicas[i % replicas.length]!;
      const r = await fetch(`${s.url}/api/v1/auth/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-test': 'rate' },
        body: JSON.stringify({ username: 'nobody-at-all', password: 'wrong-password-123' }),
      });
      if (r.status === 429) {
        limited = true;
        break;
      }
      assert.equal(r.status, 401);
      allowed++;
    }
    assert.ok(limited, 'the limit was reached');
    assert.ok(
      allowed < LOGIN_LIMIT,
      `at most ${LOGIN_LIMIT} logins per window across replicas (${allowed} failed ones got through)`,
    );
    for (const s of replicas) {
      const r = await fetch(`${s.url}/api/v1/auth/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ username: 'admin', password: ADMIN_PASSWORD }),
      });
      assert.equal(r.status, 429, 'every replica refuses once the shared window is full');
    }
  });

  it('afterwards nothing is left running and no alert was notified twice', async () => {
    const s = replicas[0]!;
    const running = await call<{ total: number }>(s, 'GET', '/batches?status=running');
    assert.equal(running.json.total, 0);
    const q = await sql.query<{ n: string }>(
      `SELECT count(*) AS n FROM deployments WHERE status IN ('queued', 'running')`,
    );
    assert.equal(Number(q.rows[0]!.n), 0);
    const byKey = new Map<string, number>();
    for (const d of receiver.got) byKey.set(d.key, (byKey.get(d.key) ?? 0) + 1);
    const twice = [...byKey].filter(([, n]) => n > 1);
    assert.deepEqual(twice, [], 'exactly one delivery per key');
    // One open alert per subject at most, and no subject fired twice in this run.
    const alerts = (await call<AlertListResponse>(s, 'GET', '/alerts?pageSize=200')).json.items;
    const perSubject = new Map<string, number>();
    for (const a of alerts) perSubject.set(a.subject, (perSubject.get(a.subject) ?? 0) + 1);
    assert.deepEqual(
      [...perSubject].filter(([, n]) => n > 1),
      [],
      `no subject fired twice: ${JSON.stringify(alerts.map((a) => [a.subject, a.status]))}`,
    );
  });
});
