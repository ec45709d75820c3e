/**
 * Real PostgreSQL for tests.
 *
 * `startPostgresDatabase()` hands out a fresh, uniquely named database (dropped by drop()) on
 * the PostgreSQL that answers at $OPSPLANE_TEST_POSTGRES_URL (default
 * postgres://postgres@127.0.0.1:5432/postgres, trust auth). When nothing answers there — or
 * OPSPLANE_TEST_POSTGRES=private — it starts a private cluster for the test process instead
 * (one per process, shared by its databases, removed when the process exits), like the tests
 * do for etcd.
 *
 * `startPostgresCluster()` is that private cluster, for tests that need a server of their own
 * to stop, restart or crash: initdb in a temp dir and `postgres` on a free loopback port, from
 * Debian's `postgresql` package (`/usr/lib/postgresql/<version>/bin`; `node
 * scripts/ensure-deps.mjs` installs it). PostgreSQL refuses to run as root, so as root it runs
 * as the `postgres` system user the package creates (else `nobody`). The cluster is removed by
 * destroy(); when the test process exits without it, the exit hook kills it and removes its
 * dir, and when the test process is killed outright (no exit hook runs) a small reaper process
 * shuts it down and removes the dir within about a second.
 */
import { execFile, execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chownSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { dirname, join } from 'node:path';
import pg from 'pg';
import { isRoot, type Dependency } from './dependencies.js';
import { freePort } from './ports.js';
import { spawnTracked, type TrackedProcess } from './processes.js';
import { sleep, tempDir } from './wait.js';

// ------------------------------------------------------------------------------ private cluster

/** How to shut the server down, as `pg_ctl stop -m`: smart waits for clients, fast disconnects them, immediate crashes (recovery on the next start). */
export type PostgresShutdownMode = 'smart' | 'fast' | 'immediate';

export interface PostgresClusterOptions {
  /** Directory holding initdb and postgres. Default: $OPSPLANE_TEST_PG_BINDIR, else findPostgresBinDir(). */
  binDir?: string;
  /** TCP port on 127.0.0.1. Default: a free one (kept across restarts). */
  port?: number;
  /** Extra server settings, passed as `-c name=value`. */
  settings?: Readonly<Record<string, string | number | boolean>>;
  /** How long to wait for the server to accept connections on each start. Default 30 s. */
  startTimeoutMs?: number;
  /**
   * Do not keep the Node.js process alive while the cluster runs (for a cluster shared by a
   * whole test file that is never destroyed explicitly: the exit hook removes it). Default false.
   */
  unref?: boolean;
}

export interface PostgresCluster {
  /** 127.0.0.1 */
  readonly host: string;
  readonly port: number;
  /** postgres://postgres@127.0.0.1:<port>/postgres: the superuser (trust auth) on the maintenance database. */
  readonly adminUrl: string;
  /** The cluster's data directory (PGDATA). */
  readonly dataDir: string;
  /** True while the server process runs. */
  readonly running: boolean;
  /** The postmaster's pid while it runs. */
  readonly pid: number | undefined;
  /** The OS user the server runs as. */
  readonly osUser: string;
  /** postgres://postgres@127.0.0.1:<port>/<database> */
  url(database?: string): string;
  /** The server log of the current (or last) process. */
  output(): string;
  /** Starts the server again (after stop/kill) on the same port and data; resolves once it accepts connections. */
  start(): Promise<void>;
  /** Shuts the server down (default 'fast'); the data stays for start(). */
  stop(mode?: PostgresShutdownMode): Promise<void>;
  /** stop(mode) then start(), like `pg_ctl restart -m <mode>`. */
  restart(mode?: PostgresShutdownMode): Promise<void>;
  /** SIGKILLs the server and its backends at once (a crash); start() recovers the data. */
  kill(): Promise<void>;
  /** Stops the server and removes its data directory. Idempotent. */
  destroy(): Promise<void>;
}

/** Where PostgreSQL's server binaries are: $OPSPLANE_TEST_PG_BINDIR, the newest /usr/lib/postgresql/<v>/bin, or where `initdb` on PATH lives. */
export function findPostgresBinDir(): string | undefined {
  const explicit = process.env.OPSPLANE_TEST_PG_BINDIR;
  if (explicit) return explicit;
  try {
    const versions = readdirSync('/usr/lib/postgresql')
      .filter((v) => /^\d+(\.\d+)?$/.test(v))
      .sort((a, b) => Number(b) - Number(a));
    for (const v of versions) {
      const dir = join('/usr/lib/postgresql', v, 'bin');
      if (existsSync(join(dir, 'initdb')) && existsSync(join(dir, 'postgres'))) return dir;
    }
  } catch {
    /* not Debian's layout */
  }
  try {
    const initdb = execFileSync('sh', ['-c', 'command -v initdb'], { encoding: 'utf8' }).trim();
    if (initdb.startsWith('/')) {
      // Follow a symlink such as /usr/local/bin/initdb → /usr/lib/postgresql/15/bin/initdb.
      const real = execFileSync('readlink', ['-f', initdb], { encoding: 'utf8' }).trim() || initdb;
      if (existsSync(join(dirname(real), 'postgres'))) return dirname(real);
    }
  } catch {
    /* not on PATH */
  }
  return undefined;
}

const NO_BINARIES =
  "PostgreSQL's server binaries (initdb, postgres) were not found: `node scripts/ensure-deps.mjs` " +
  "installs Debian's postgresql (or set OPSPLANE_TEST_PG_BINDIR)";

/** Clusters not destroyed yet: killed and removed when the test process exits. */
const liveClusters = new Set<Cluster>();
process.once('exit', () => {
  // processes.ts's own exit hook (registered first) has SIGKILLed the servers already.
  for (const c of liveClusters) c.cleanupSync();
});

function run(
  cmd: string,
  args: readonly string[],
  opts: { uid?: number; gid?: number; cwd?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<string> {
  return new Promise((resolve, reject) =>
    execFile(cmd, args, { timeout: 120_000, ...opts }, (err, stdout, stderr) =>
      err
        ? reject(new Error(`${cmd} ${args.join(' ')} failed: ${err.message}\n${stdout}\n${stderr}`))
        : resolve(stdout),
    ),
  );
}

/** uid/gid of the OS user to run the server as: ourselves, or (as root) `postgres`, else `nobody`. */
function serverUser(): { name: string; uid?: number; gid?: number } {
  if (!isRoot()) return { name: process.env.USER ?? String(process.getuid?.()) };
  for (const name of ['postgres', 'nobody']) {
    try {
      const uid = Number(execFileSync('id', ['-u', name], { encoding: 'utf8' }).trim());
      const gid = Number(execFileSync('id', ['-g', name], { encoding: 'utf8' }).trim());
      if (uid > 0) return { name, uid, gid };
    } catch {
      /* no such user */
    }
  }
  throw new Error(
    'running as root, and neither a `postgres` nor a `nobody` user exists to run PostgreSQL as',
  );
}

/**
 * Watches the test process; when it is gone without having destroyed the cluster (killed by a
 * signal: no exit hook ran), shuts the server down (immediate, then SIGKILL), releases its
 * shared memory and removes the directory. Exits by itself once the directory is gone.
 */
const REAPER_SCRIPT = `
const { existsSync, readFileSync, rmSync } = require('node:fs');
const { execFileSync } = require('node:child_process');
const [owner, root, data] = process.argv.slice(1);
const alive = (pid) => {
  try { process.kill(pid, 0); } catch (e) { if (e.code !== 'EPERM') return false; }
  try { return !/^\\d+ \\(.*\\) Z/.test(readFileSync('/proc/' + pid + '/stat', 'utf8')); } catch { return true; }
};
const timer = setInterval(() => {
  if (!existsSync(root)) process.exit(0);
  if (alive(Number(owner))) return;
  clearInterval(timer);
  let lines = [];
  try { lines = readFileSync(data + '/postmaster.pid', 'utf8').split('\\n'); } catch {}
  const pid = Number(lines[0]);
  const shmid = (lines[6] || '').trim().split(/\\s+/)[1];
  const finish = () => {
    if (shmid) { try { execFileSync('ipcrm', ['-m', shmid], { stdio: 'ignore' }); } catch {} }
    try { rmSync(root, { recursive: true, force: true }); } catch {}
    process.exit(0);
  };
  if (!(pid > 0) || !alive(pid)) return finish();
  try { process.kill(pid, 'SIGQUIT'); } catch {}
  const deadline = Date.now() + 5000;
  const wait = setInterval(() => {
    if (alive(pid) && Date.now() < deadline) return;
    clearInterval(wait);
    for (const t of [-pid, pid]) { try { process.kill(t, 'SIGKILL'); } catch {} }
    finish();
  }, 100);
}, 500);
`;

const SHUTDOWN_SIGNAL: Record<PostgresShutdownMode, NodeJS.Signals> = {
  smart: 'SIGTERM',
  fast: 'SIGINT',
  immediate: 'SIGQUIT',
};

class Cluster implements PostgresCluster {
  readonly host = '127.0.0.1';
  process: TrackedProcess | undefined;
  reaperPid: number | undefined;
  private destroyed = false;

  constructor(
    readonly port: number,
    readonly root: string,
    private readonly binDir: string,
    private readonly user: { name: string; uid?: number; gid?: number },
    private readonly opts: PostgresClusterOptions,
  ) {}

  get dataDir(): string {
    return join(this.root, 'data');
  }
  get socketDir(): string {
    return join(this.root, 'socket');
  }
  get adminUrl(): string {
    return this.url('postgres');
  }
  get osUser(): string {
    return this.user.name;
  }
  url(database = 'postgres'): string {
    return `postgres://postgres@${this.host}:${this.port}/${encodeURIComponent(database)}`;
  }
  get running(): boolean {
    const c = this.process?.child;
    return c !== undefined && c.exitCode === null && c.signalCode === null;
  }
  get pid(): number | undefined {
    return this.running ? this.process?.child.pid : undefined;
  }
  output(): string {
    return this.process?.output() ?? '';
  }

  private get ids(): { uid?: number; gid?: number } {
    return this.user.uid === undefined ? {} : { uid: this.user.uid, gid: this.user.gid! };
  }

  private get env(): NodeJS.ProcessEnv {
    const env: NodeJS.ProcessEnv = { ...process.env, LC_ALL: 'C', LANG: 'C', HOME: this.root, TZ: 'UTC' };
    for (const k of Object.keys(env)) if (k.startsWith('PG')) delete env[k];
    return env;
  }

  async initdb(): Promise<void> {
    mkdirSync(this.socketDir, { recursive: true });
    if (this.user.uid !== undefined) {
      chownSync(this.root, this.user.uid, this.user.gid!);
      chownSync(this.socketDir, this.user.uid, this.user.gid!);
    }
    // prettier-ignore
    await run(join(this.binDir, 'initdb'), [
      '-D', this.dataDir, '-U', 'postgres', '--auth=trust', '--encoding=UTF8', '--locale=C', '--no-sync',
    ], { ...this.ids, cwd: this.root, env: this.env });
  }

  async start(): Promise<void> {
    if (this.destroyed) throw new Error('the PostgreSQL cluster was destroyed');
    if (this.running) return;
    const settings: Record<string, string | number | boolean> = {
      listen_addresses: this.host,
      port: this.port,
      unix_socket_directories: this.socketDir,
      // Tests throw the data away: no fsync (a crash of the server alone loses nothing that
      // was committed; only an OS crash would). Commits stay synchronous, so kill() and an
      // immediate shutdown keep every committed row.
      fsync: 'off',
      // In the data dir rather than /dev/shm: nothing outlives the cluster's directory.
      dynamic_shared_memory_type: 'mmap',
      max_connections: 200,
      ...this.opts.settings,
    };
    const args = ['-D', this.dataDir];
    for (const [k, v] of Object.entries(settings)) args.push('-c', `${k}=${String(v)}`);
    const p = spawnTracked(`postgres:${this.port}`, join(this.binDir, 'postgres'), args, {
      ...this.ids,
      cwd: this.root,
      env: this.env,
    });
    this.process = p;
    if (this.opts.unref) {
      p.child.unref();
      for (const s of [p.child.stdout, p.child.stderr]) (s as unknown as { unref?: () => void })?.unref?.();
    }
    const timeoutMs = this.opts.startTimeoutMs ?? 30_000;
    const deadline = Date.now() + timeoutMs;
    let last = '';
    for (;;) {
      if (p.child.exitCode !== null || p.child.signalCode !== null) {
        throw new Error(
          `postgres exited (${p.child.exitCode ?? p.child.signalCode}) before it accepted connections:\n${p.output().slice(-4000)}`,
        );
      }
      try {
        await withClient(this.adminUrl, (c) => c.query('SELECT 1'), 2000);
        return;
      } catch (e) {
        last = (e as Error).message;
      }
      if (Date.now() > deadline) {
        await p.kill();
        throw new Error(
          `postgres did not accept connections within ${timeoutMs} ms (last: ${last}):\n${p.output().slice(-4000)}`,
        );
      }
      await sleep(50);
    }
  }

  async stop(mode: PostgresShutdownMode = 'fast'): Promise<void> {
    const p = this.process;
    if (!p || !this.running) return;
    try {
      p.child.kill(SHUTDOWN_SIGNAL[mode]); // the postmaster only: it shuts its backends down itself
    } catch {
      /* gone */
    }
    const timeoutMs = mode === 'smart' ? 60_000 : 30_000;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), timeoutMs)));
    const outcome = await Promise.race([p.exited, timedOut]);
    clearTimeout(timer);
    if (outcome === 'timeout') await p.kill();
  }

  async restart(mode: PostgresShutdownMode = 'fast'): Promise<void> {
    await this.stop(mode);
    await this.start();
  }

  async kill(): Promise<void> {
    await this.process?.kill(); // the whole process group: postmaster and backends
  }

  async destroy(): Promise<void> {
    if (this.destroyed) return;
    // Immediate shutdown releases the shared memory, which a SIGKILL would leave behind.
    await this.stop('immediate');
    this.destroyed = true;
    liveClusters.delete(this);
    this.cleanupSync();
  }

  /** Kills what is left, releases the shared memory of a killed server, removes the dir and stops the reaper. */
  cleanupSync(): void {
    const pidFile = join(this.dataDir, 'postmaster.pid');
    try {
      if (this.running && this.process?.child.pid) process.kill(-this.process.child.pid, 'SIGKILL');
    } catch {
      /* gone */
    }
    try {
      // A postmaster.pid left behind means the server did not shut down cleanly (kill()): its
      // System V segment ("key shmid" on line 7) stays until removed.
      const shmid = readFileSync(pidFile, 'utf8').split('\n')[6]?.trim().split(/\s+/)[1];
      if (shmid) execFileSync('ipcrm', ['-m', shmid], { stdio: 'ignore', timeout: 5000 });
    } catch {
      /* no pid file, or already removed */
    }
    try {
      rmSync(this.root, { recursive: true, force: true });
    } catch {
      /* best effort */
    }
    if (this.reaperPid) {
      try {
        process.kill(this.reaperPid, 'SIGKILL');
      } catch {
        /* gone */
      }
      this.reaperPid = undefined;
    }
  }

  startReaper(): void {
    const reaper = spawn(
      process.execPath,
      ['-e', REAPER_SCRIPT, String(process.pid), this.root, this.dataDir],
      {
        detached: true,
        stdio: 'ignore',
      },
    );
    reaper.unref();
    this.reaperPid = reaper.pid;
  }
}

/**
 * A private PostgreSQL cluster: initdb in a fresh temp dir, then the server on a free loopback
 * port (superuser `postgres`, trust auth). Resolves once it accepts connections. The caller
 * destroys it (an after() hook); see the module comment for what happens if it does not.
 */
export async function startPostgresCluster(opts: PostgresClusterOptions = {}): Promise<PostgresCluster> {
  const binDir = opts.binDir ?? findPostgresBinDir();
  if (!binDir) throw new Error(NO_BINARIES);
  const user = serverUser();
  let lastErr: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    const root = await tempDir('opsplane-pg-');
    const cluster = new Cluster(opts.port ?? (await freePort()), root.path, binDir, user, opts);
    liveClusters.add(cluster);
    cluster.startReaper();
    try {
      await cluster.initdb();
      await cluster.start();
      return cluster;
    } catch (e) {
      lastErr = e;
      await cluster.destroy().catch(() => undefined);
      // A free port taken by someone else before postgres bound it: again, with another port.
      if (opts.port !== undefined || !/could not bind|address already in use/i.test((e as Error).message))
        throw e;
    }
  }
  throw lastErr;
}

// --------------------------------------------------------------------- databases for tests

export interface PostgresDatabase {
  /** postgres://…/<name> of the new database. */
  readonly url: string;
  readonly name: string;
  /** Where it lives: the PostgreSQL that answered at the admin URL, or this process's private cluster. */
  readonly server: 'shared' | 'private';
  /** Drops the database (terminating its connections). Idempotent. */
  drop(): Promise<void>;
}

export interface PostgresOptions {
  /** Maintenance-database URL. Default $OPSPLANE_TEST_POSTGRES_URL or postgres://postgres@127.0.0.1:5432/postgres. */
  adminUrl?: string;
  /**
   * Always use this process's private cluster, even when a server answers at the admin URL.
   * Default: true when OPSPLANE_TEST_POSTGRES=private.
   */
  private?: boolean;
}

const DEFAULT_ADMIN_URL = 'postgres://postgres@127.0.0.1:5432/postgres';

const adminUrlOf = (opts: PostgresOptions) =>
  opts.adminUrl ?? process.env.OPSPLANE_TEST_POSTGRES_URL ?? DEFAULT_ADMIN_URL;
const forcePrivate = (opts: PostgresOptions) =>
  opts.private ?? process.env.OPSPLANE_TEST_POSTGRES === 'private';

async function withClient<T>(url: string, fn: (c: pg.Client) => Promise<T>, timeoutMs = 5000): Promise<T> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: timeoutMs });
  client.on('error', () => undefined);
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** Errors meaning "no server there" (rather than a server that refuses us). */
function nothingAnswers(e: unknown): boolean {
  const code = (e as NodeJS.ErrnoException).code;
  return (
    code === 'ECONNREFUSED' ||
    code === 'ENOENT' ||
    code === 'EHOSTUNREACH' ||
    code === 'ENETUNREACH' ||
    code === 'ETIMEDOUT' ||
    code === '57P03' || // the database system is starting up / shutting down
    /timeout|terminated unexpectedly/i.test((e as Error).message)
  );
}

let privateCluster: Promise<PostgresCluster> | undefined;
const adminChoice = new Map<string, Promise<{ adminUrl: string; server: 'shared' | 'private' }>>();

function sharedPrivateCluster(): Promise<PostgresCluster> {
  privateCluster ??= startPostgresCluster({ unref: true }).catch((e: unknown) => {
    privateCluster = undefined;
    throw e;
  });
  return privateCluster;
}

/** The maintenance URL to create databases on: the server at the admin URL when it answers, else the private cluster. */
function chooseServer(opts: PostgresOptions): Promise<{ adminUrl: string; server: 'shared' | 'private' }> {
  const url = adminUrlOf(opts);
  const key = forcePrivate(opts) ? '<private>' : url;
  let choice = adminChoice.get(key);
  if (!choice) {
    choice = (async () => {
      if (key !== '<private>') {
        try {
          await withClient(url, (c) => c.query('SELECT 1'), 3000);
          return { adminUrl: url, server: 'shared' as const };
        } catch (e) {
          if (!nothingAnswers(e)) throw e;
          if (!findPostgresBinDir()) {
            const where = new URL(url);
            throw new Error(
              `PostgreSQL: nothing answers at ${where.host} (${(e as Error).message}) and ${NO_BINARIES}`,
            );
          }
        }
      }
      return { adminUrl: (await sharedPrivateCluster()).adminUrl, server: 'private' as const };
    })();
    choice.catch(() => adminChoice.delete(key));
    adminChoice.set(key, choice);
  }
  return choice;
}

const quoteIdent = (s: string) => `"${s.replace(/"/g, '""')}"`;

/** Creates an empty database with a unique name; the caller must drop() it. */
export async function startPostgresDatabase(opts: PostgresOptions = {}): Promise<PostgresDatabase> {
  const { adminUrl, server } = await chooseServer(opts);
  const name = `opsplane_test_${process.pid}_${Date.now().toString(36)}_${randomBytes(4).toString('hex')}`;
  await withClient(adminUrl, (c) => c.query(`CREATE DATABASE ${quoteIdent(name)}`));
  const u = new URL(adminUrl);
  u.pathname = `/${name}`;
  let dropped: Promise<void> | undefined;
  return {
    url: u.toString(),
    name,
    server,
    drop() {
      dropped ??= withClient(adminUrl, async (c) => {
        await c.query(`DROP DATABASE IF EXISTS ${quoteIdent(name)} WITH (FORCE)`);
      });
      return dropped;
    },
  };
}

/** Whether a TCP connection to host:port succeeds within `timeoutMs`. */
function tcpAnswers(host: string, port: number, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host, port });
    const done = (ok: boolean) => {
      s.destroy();
      resolve(ok);
    };
    s.setTimeout(timeoutMs, () => done(false));
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}

/**
 * What startPostgresDatabase needs, for a test's `skip` option (skipUnlessAvailable): a server
 * answering at the admin URL, or PostgreSQL's binaries for a private cluster.
 */
export async function postgresDependency(opts: PostgresOptions = {}): Promise<Dependency> {
  const name = 'PostgreSQL';
  if (findPostgresBinDir()) return { name, available: true, reason: 'private clusters' };
  const u = new URL(adminUrlOf(opts));
  if (!forcePrivate(opts) && (await tcpAnswers(u.hostname, Number(u.port || 5432)))) {
    return { name, available: true, reason: `the server at ${u.host}` };
  }
  return { name, available: false, reason: `nothing answers at ${u.host} and ${NO_BINARIES}` };
}
