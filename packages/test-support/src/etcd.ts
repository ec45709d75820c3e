/**
 * Real etcd for tests: a single member (`startEtcd`) or an N-member cluster (`startEtcdCluster`)
 * on free loopback ports, each member in its own temp data dir. Owns the processes (spawned
 * with spawnTracked, so they die with the test process), their data dirs, and helpers tests need
 * around them: etcdctl with the right endpoints, kill/restart for outage tests, compaction.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import {
  bootstrapEtcdAuth,
  ETCD_ROLES,
  etcdTlsArgs,
  issueTlsFiles,
  type EtcdUser,
  type TlsFiles,
} from '@opsplane/fleet';
import { initCa } from '@opsplane/pki';
import { freePort } from './ports.js';
import { spawnTracked, type TrackedProcess } from './processes.js';
import { sleep, tempDir } from './wait.js';

export interface EtcdOptions {
  /** Raft heartbeat interval (ms); small so that elections and startup are fast. Default 50. */
  heartbeatIntervalMs?: number;
  /** Raft election timeout (ms). Default 500. */
  electionTimeoutMs?: number;
  /** Backend quota in bytes. Default 256 MiB. */
  quotaBytes?: number;
  /** How long to wait for the member/cluster to report healthy. Default 20 s. */
  startTimeoutMs?: number;
  /** Extra etcd flags, appended to every member's command line. */
  extraArgs?: readonly string[];
  /** etcd binary. Default `etcd` (or $OPSPLANE_ETCD_BIN). */
  etcdBin?: string;
  /** etcdctl binary. Default `etcdctl` (or $OPSPLANE_ETCDCTL_BIN). */
  etcdctlBin?: string;
  /**
   * TLS with client certificates required (`--client-cert-auth`), certificates from the CA in
   * `caDir` (created there when missing) — and, with `auth`, etcd's own authentication enabled
   * with a user per role (ETCD_ROLES of @opsplane/fleet: `opsplane-server`, `opsplane-controller`).
   */
  tls?: { caDir: string };
  auth?: boolean;
}

/** How a kind of client reaches a TLS etcd: the CA bundle and a client certificate (paths), its user. */
export interface EtcdAccess {
  tls: TlsFiles;
  username?: string;
  password?: string;
}

export interface EtcdctlOptions {
  /** Written to etcdctl's stdin (e.g. a value for `put` that starts with '-'). */
  input?: string;
  /** Endpoints to use instead of every member's (e.g. one member only). */
  endpoints?: readonly string[];
  /** Kill etcdctl after this long. Default 15 s. */
  timeoutMs?: number;
}

export interface EtcdMember {
  readonly name: string;
  /** http://127.0.0.1:<client port> */
  readonly clientUrl: string;
  readonly peerUrl: string;
  readonly dataDir: string;
  /** True while the member's process runs. */
  readonly running: boolean;
  /** The current process (replaced by restart()). */
  readonly process: TrackedProcess | undefined;
  /** SIGKILL (no clean shutdown); data dir kept for restart(). */
  kill(): Promise<void>;
  /** SIGTERM (clean shutdown); data dir kept for restart(). */
  shutdown(): Promise<void>;
  /** Starts the member again with the same name, ports and data dir; waits until it serves. */
  restart(): Promise<void>;
}

export interface EtcdHandle {
  /** Client URLs of every member, e.g. ['http://127.0.0.1:34567']. */
  readonly endpoints: string[];
  readonly members: readonly EtcdMember[];
  /** Runs `etcdctl <args>` against the endpoints (ETCDCTL_API=3); resolves with stdout. */
  etcdctl(args: readonly string[], opts?: EtcdctlOptions): Promise<string>;
  /** The cluster's current revision. */
  revision(): Promise<number>;
  /** Compacts to `revision` (default: the current revision), physically; returns it. */
  compact(revision?: number): Promise<number>;
  /** SIGKILL every member; data dirs are kept so that restart() resumes from them. */
  kill(): Promise<void>;
  /** Starts every stopped member again on the same ports and data dirs; waits until healthy. */
  restart(): Promise<void>;
  /**
   * Resolves when every running member reports healthy (which includes having a leader) —
   * e.g. after killing the leader, before writing again (a write proposed while there is no
   * leader hangs until its timeout).
   */
  waitHealthy(timeoutMs?: number): Promise<void>;
  /** Kills every member and removes the data dirs. Idempotent. */
  stop(): Promise<void>;
  /** With `tls`: how the server, the controllers or an admin reach it (undefined without TLS). */
  access(who: 'server' | 'controller' | 'admin'): EtcdAccess | undefined;
  /** What a fleet's controllers are configured with (FleetEtcd.controllerAccess). */
  readonly controllerAccess: EtcdAccess | undefined;
}

/** Temp dirs still to be removed if the test process exits without stop(). */
const liveDirs = new Set<string>();
process.once('exit', () => {
  for (const d of liveDirs) {
    try {
      rmSync(d, { recursive: true, force: true });
    } catch {
      /* best effort */
    }
  }
});

const etcdBin = (o: EtcdOptions) => o.etcdBin ?? process.env.OPSPLANE_ETCD_BIN ?? 'etcd';
const etcdctlBin = (o: EtcdOptions) => o.etcdctlBin ?? process.env.OPSPLANE_ETCDCTL_BIN ?? 'etcdctl';

let clusterCounter = 0;

interface MemberSpec {
  name: string;
  clientPort: number;
  peerPort: number;
  metricsPort: number;
  dataDir: string;
}

class Member implements EtcdMember {
  process: TrackedProcess | undefined;
  readonly clientUrl: string;
  readonly peerUrl: string;

  /** Plain /health (and /metrics) when the client port wants certificates. */
  readonly healthUrl: string;

  constructor(
    private readonly spec: MemberSpec,
    private readonly initialCluster: string,
    private readonly clusterToken: string,
    private readonly opts: EtcdOptions,
    private readonly serverTls?: TlsFiles,
  ) {
    this.clientUrl = `${serverTls ? 'https' : 'http'}://127.0.0.1:${spec.clientPort}`;
    this.peerUrl = `http://127.0.0.1:${spec.peerPort}`;
    this.healthUrl = serverTls ? `http://127.0.0.1:${spec.metricsPort}` : this.clientUrl;
  }

  get name() {
    return this.spec.name;
  }
  get dataDir() {
    return this.spec.dataDir;
  }
  get running() {
    const c = this.process?.child;
    return c !== undefined && c.exitCode === null && c.signalCode === null;
  }

  /** Spawns the process; does not wait for health (a cluster member cannot be healthy alone). */
  spawn(): void {
    if (this.running) return;
    const o = this.opts;
    // prettier-ignore
    const args = [
      '--name', this.spec.name,
      '--data-dir', this.spec.dataDir,
      '--listen-client-urls', this.clientUrl,
      '--advertise-client-urls', this.clientUrl,
      '--listen-peer-urls', this.peerUrl,
      '--initial-advertise-peer-urls', this.peerUrl,
      '--initial-cluster', this.initialCluster,
      '--initial-cluster-token', this.clusterToken,
      // Ignored once the data dir holds a WAL, so restart() resumes the same member.
      '--initial-cluster-state', 'new',
      '--heartbeat-interval', String(o.heartbeatIntervalMs ?? 50),
      '--election-timeout', String(o.electionTimeoutMs ?? 500),
      '--snapshot-count', '5000',
      '--quota-backend-bytes', String(o.quotaBytes ?? 256 * 1024 * 1024),
      '--auto-compaction-retention', '0',
      '--logger', 'zap',
      '--log-level', process.env.OPSPLANE_TEST_VERBOSE ? 'info' : 'warn',
      ...(this.serverTls ? [...etcdTlsArgs(this.serverTls), '--listen-metrics-urls', this.healthUrl] : []),
      ...(o.extraArgs ?? []),
    ];
    this.process = spawnTracked(`etcd:${this.spec.name}`, etcdBin(o), args);
  }

  async waitServing(timeoutMs: number): Promise<void> {
    await waitHealthy([this.healthUrl], timeoutMs, () => this.process);
  }

  async kill(): Promise<void> {
    await this.process?.kill();
  }

  async shutdown(): Promise<void> {
    await this.process?.stop(5000);
  }

  async restart(): Promise<void> {
    this.spawn();
    await this.waitServing(this.opts.startTimeoutMs ?? 20_000);
  }
}

/** GET /health on each URL until all say {"health":"true"}; fails fast if a process died. */
async function waitHealthy(
  urls: readonly string[],
  timeoutMs: number,
  proc?: () => TrackedProcess | undefined,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    const results = await Promise.all(
      urls.map(async (u) => {
        try {
          const res = await fetch(`${u}/health`, { signal: AbortSignal.timeout(1000) });
          const body = (await res.json()) as { health?: string };
          last = `${u}: ${res.status} ${JSON.stringify(body)}`;
          return res.ok && body.health === 'true';
        } catch (e) {
          last = `${u}: ${(e as Error).message}`;
          return false;
        }
      }),
    );
    if (results.every(Boolean)) return;
    const p = proc?.();
    if (p && p.child.exitCode !== null) {
      throw new Error(
        `etcd exited with code ${p.child.exitCode} before it was healthy:\n${p.output().slice(-4000)}`,
      );
    }
    if (Date.now() > deadline) {
      throw new Error(
        `etcd not healthy after ${timeoutMs} ms (last: ${last})\n${p?.output().slice(-4000) ?? ''}`,
      );
    }
    await sleep(30);
  }
}

class EtcdCluster implements EtcdHandle {
  readonly endpoints: string[];
  private stopped = false;
  /** Set when the cluster runs TLS (and users, with auth). */
  security:
    { admin: TlsFiles; server: EtcdAccess; controller: EtcdAccess; rootPassword?: string } | undefined;

  constructor(
    readonly members: readonly Member[],
    private readonly root: { path: string; cleanup: () => Promise<void> },
    private readonly opts: EtcdOptions,
  ) {
    this.endpoints = members.map((m) => m.clientUrl);
  }

  get controllerAccess(): EtcdAccess | undefined {
    return this.access('controller');
  }

  access(who: 'server' | 'controller' | 'admin'): EtcdAccess | undefined {
    const s = this.security;
    if (!s) return undefined;
    if (who === 'admin')
      return { tls: s.admin, ...(s.rootPassword ? { username: 'root', password: s.rootPassword } : {}) };
    return s[who];
  }

  etcdctl(args: readonly string[], opts: EtcdctlOptions = {}): Promise<string> {
    const endpoints = (opts.endpoints ?? this.endpoints).join(',');
    const s = this.security;
    const secure = s
      ? [
          `--cacert=${s.admin.ca}`,
          `--cert=${s.admin.cert}`,
          `--key=${s.admin.key}`,
          ...(s.rootPassword ? [`--user=root:${s.rootPassword}`] : []),
        ]
      : [];
    return new Promise((resolve, reject) => {
      const child = execFile(
        etcdctlBin(this.opts),
        ['--endpoints', endpoints, '--dial-timeout=2s', '--command-timeout=5s', ...secure, ...args],
        {
          env: { ...process.env, ETCDCTL_API: '3' },
          timeout: opts.timeoutMs ?? 15_000,
          maxBuffer: 64 * 1024 * 1024,
        },
        (err, stdout, stderr) => {
          if (err) {
            reject(new Error(`etcdctl ${args.join(' ')} failed: ${err.message}\n${stderr}`));
          } else {
            resolve(stdout);
          }
        },
      );
      if (opts.input !== undefined) child.stdin?.end(opts.input);
      else child.stdin?.end();
    });
  }

  async revision(): Promise<number> {
    // Any range returns the store's current revision in its header.
    const out = await this.etcdctl(['get', '__opsplane_revision_probe__', '-w', 'json']);
    const parsed = JSON.parse(out) as { header?: { revision?: number | string } };
    const rev = Number(parsed.header?.revision);
    if (!Number.isFinite(rev)) throw new Error(`could not read the etcd revision from: ${out}`);
    return rev;
  }

  async compact(revision?: number): Promise<number> {
    const rev = revision ?? (await this.revision());
    await this.etcdctl(['compact', String(rev), '--physical']);
    return rev;
  }

  async kill(): Promise<void> {
    await Promise.all(this.members.map((m) => m.kill()));
  }

  async waitHealthy(timeoutMs = this.opts.startTimeoutMs ?? 20_000): Promise<void> {
    const running = this.members.filter((m) => m.running).map((m) => m.healthUrl);
    if (running.length === 0) throw new Error('no etcd member is running');
    await waitHealthy(running, timeoutMs);
  }

  async restart(): Promise<void> {
    for (const m of this.members) m.spawn();
    await waitHealthy(
      this.members.map((m) => m.healthUrl),
      this.opts.startTimeoutMs ?? 20_000,
    );
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    // The data is thrown away, so there is nothing a clean shutdown would save (and a cluster
    // member on SIGTERM may spend seconds trying to hand over leadership to dying peers).
    await Promise.all(this.members.map((m) => m.kill()));
    liveDirs.delete(this.root.path);
    await this.root.cleanup();
  }
}

async function launch(size: number, opts: EtcdOptions): Promise<EtcdCluster> {
  const root = await tempDir('opsplane-etcd-');
  liveDirs.add(root.path);
  const token = `opsplane-test-${process.pid}-${++clusterCounter}`;
  const specs: MemberSpec[] = [];
  for (let i = 0; i < size; i++) {
    specs.push({
      name: `m${i}`,
      clientPort: await freePort(),
      peerPort: await freePort(),
      metricsPort: await freePort(),
      dataDir: join(root.path, `m${i}`),
    });
  }
  const initialCluster = specs.map((s) => `${s.name}=http://127.0.0.1:${s.peerPort}`).join(',');
  let serverTls: TlsFiles | undefined;
  let security: EtcdCluster['security'];
  if (opts.tls) {
    const caDir = opts.tls.caDir;
    await initCa(caDir);
    const dir = join(root.path, 'tls');
    serverTls = await issueTlsFiles(caDir, dir, 'etcd', { kind: 'server', name: 'etcd' });
    const client = (base: string) => issueTlsFiles(caDir, dir, base, { kind: 'client', name: base });
    const pw = () => randomBytes(12).toString('hex');
    security = {
      admin: await client('etcd-admin'),
      server: { tls: await client('opsplane-server') },
      controller: { tls: await client('opsplane-controller') },
    };
    if (opts.auth) {
      security.rootPassword = pw();
      security.server = { ...security.server, username: ETCD_ROLES.server.name, password: pw() };
      security.controller = { ...security.controller, username: ETCD_ROLES.controller.name, password: pw() };
    }
  }
  const members = specs.map((s) => new Member(s, initialCluster, token, opts, serverTls));
  const cluster = new EtcdCluster(members, root, opts);
  try {
    for (const m of members) m.spawn();
    const timeoutMs = opts.startTimeoutMs ?? 20_000;
    const deadline = Date.now() + timeoutMs;
    await waitHealthy(
      members.map((m) => m.healthUrl),
      timeoutMs,
      () => members.find((m) => m.process?.child.exitCode !== null)?.process,
    );
    // etcdctl talks TLS from now on; as root only once authentication is enabled below.
    if (security)
      cluster.security = { admin: security.admin, server: security.server, controller: security.controller };
    // /health is per member; make sure a leader exists from every member's point of view.
    while (Date.now() < deadline) {
      try {
        await cluster.etcdctl(['endpoint', 'status', '-w', 'json']);
        break;
      } catch {
        await sleep(50);
      }
    }
    if (security?.rootPassword) {
      const users: EtcdUser[] = [
        { name: ETCD_ROLES.server.name, password: security.server.password ?? '', role: ETCD_ROLES.server },
        {
          name: ETCD_ROLES.controller.name,
          password: security.controller.password ?? '',
          role: ETCD_ROLES.controller,
        },
      ];
      await bootstrapEtcdAuth({
        endpoint: cluster.endpoints[0] ?? '',
        admin: security.admin,
        rootPassword: security.rootPassword,
        users,
        dataDir: root.path,
        etcdctlBin: etcdctlBin(opts),
      });
      cluster.security = security;
    }
    return cluster;
  } catch (e) {
    await cluster.stop().catch(() => undefined);
    throw e;
  }
}

/** Address-in-use races (a free port taken before etcd binds it) are retried with new ports. */
async function launchWithRetry(size: number, opts: EtcdOptions): Promise<EtcdCluster> {
  let lastErr: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      return await launch(size, opts);
    } catch (e) {
      lastErr = e;
      if (!/address already in use/i.test(String((e as Error).message))) throw e;
    }
  }
  throw lastErr;
}

/** One etcd member on free loopback ports in a temp dir; resolves once it is healthy. */
export function startEtcd(opts: EtcdOptions = {}): Promise<EtcdHandle> {
  return launchWithRetry(1, opts);
}

/** An N-member (default 3) etcd cluster on loopback; resolves once every member is healthy. */
export function startEtcdCluster(size = 3, opts: EtcdOptions = {}): Promise<EtcdHandle> {
  if (!Number.isInteger(size) || size < 1) throw new RangeError(`cluster size must be >= 1, got ${size}`);
  return launchWithRetry(size, opts);
}
