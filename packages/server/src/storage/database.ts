/**
 * One `Database` type over two drivers: embedded PGlite (default, `<data_dir>/db`, or
 * `memory://`) and a node-postgres Pool (`postgres://…`). Both are drizzle PgDatabase instances,
 * so repository code is identical; a transaction object is itself a Database.
 */
import { mkdir, open, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { sql, type SQL } from 'drizzle-orm';
import { drizzle as drizzleNodePg } from 'drizzle-orm/node-postgres';
import type { PgDatabase, PgQueryResultHKT } from 'drizzle-orm/pg-core';
import { drizzle as drizzlePglite } from 'drizzle-orm/pglite';
import pg from 'pg';
import type { Logger } from 'pino';
import { OpsplaneError } from '@opsplane/models';
import { backoffDelay, sleep } from '@opsplane/kit';

export type Database = PgDatabase<PgQueryResultHKT>;

export type DriverKind = 'pglite' | 'postgres';

export interface DatabaseHandle {
  readonly db: Database;
  readonly driver: DriverKind;
  /** Where the data is: a directory, `memory://`, or the URL without its password. */
  readonly location: string;
  /** True for an embedded database (the master key may then be generated next to it). */
  readonly embedded: boolean;
  ping(): Promise<void>;
  close(): Promise<void>;
}

export interface OpenDatabaseOptions {
  /** postgres://… or postgresql://… → PostgreSQL; `memory://` → in-memory PGlite; unset → PGlite in dataDir/db. */
  url?: string | undefined;
  dataDir: string;
  logger?: Logger;
  /** Max pool connections (PostgreSQL). */
  poolSize?: number;
}

export class DatabaseError extends OpsplaneError {
  constructor(message: string, cause?: unknown) {
    super('internal', message, { cause });
  }
}

/**
 * The database cannot be reached right now (restarting, network gone, out of connections, disk
 * full): the request did not happen — a 503 the client may retry, never a 500.
 */
export class DatabaseUnavailableError extends OpsplaneError {
  constructor(cause?: unknown) {
    super(
      'database_unavailable',
      'the database is not reachable right now; nothing was changed — retry shortly',
      {
        status: 503,
        cause,
      },
    );
  }
}

/** Seconds a client is asked to wait (Retry-After) while the database is away. */
export const DATABASE_RETRY_AFTER_S = 2;

const UNAVAILABLE_ERRNO = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'ENOTFOUND',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
  'ENOSPC',
]);
// SQLSTATE: class 08 (connection exception), 53 (insufficient resources: disk full, out of
// memory, too many connections), 57P01-57P03 (admin/crash shutdown, cannot connect now).
const UNAVAILABLE_SQLSTATE = /^(08...|53...|57P0[123])$/;
const UNAVAILABLE_MESSAGE =
  /Connection terminated|connection error|timeout exceeded when trying to connect|Cannot use a pool after calling end|the database system is (starting up|shutting down|in recovery mode)|terminating connection due to administrator command|no space left on device/i;

/** True for errors that mean "the database is not reachable now", as opposed to a bad query. */
export function isDatabaseUnavailable(e: unknown): boolean {
  for (let cur = e, depth = 0; cur && depth < 6; depth++) {
    if (cur instanceof DatabaseUnavailableError) return true;
    const code = (cur as { code?: unknown }).code;
    if (typeof code === 'string' && (UNAVAILABLE_ERRNO.has(code) || UNAVAILABLE_SQLSTATE.test(code)))
      return true;
    const message = (cur as { message?: unknown }).message;
    if (typeof message === 'string' && UNAVAILABLE_MESSAGE.test(message)) return true;
    cur = (cur as { cause?: unknown }).cause;
  }
  return false;
}

/**
 * Runs `fn` again while the database is away (with backoff, up to `maxWaitMs` or the signal),
 * for background writes that must not be lost to an outage (batch results, a job's end).
 */
export async function retryWhileUnavailable<T>(
  fn: () => Promise<T>,
  opts: { signal?: AbortSignal; maxWaitMs?: number; onRetry?: (err: unknown) => void } = {},
): Promise<T> {
  const deadline = Date.now() + (opts.maxWaitMs ?? 10 * 60_000);
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (e) {
      if (!isDatabaseUnavailable(e) || Date.now() > deadline || opts.signal?.aborted) throw e;
      opts.onRetry?.(e);
      await sleep(backoffDelay(attempt, 200, 5000), opts.signal);
    }
  }
}

/** The URL with any password replaced, for logs. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '<unparsable database url>';
  }
}

export async function openDatabase(opts: OpenDatabaseOptions): Promise<DatabaseHandle> {
  const url = opts.url;
  if (url && /^postgres(ql)?:\/\//i.test(url)) return openPostgres(url, opts);
  if (url && url !== 'memory://') {
    throw new DatabaseError(
      `unsupported database_url '${redactUrl(url)}' (expected postgres://… or memory://)`,
    );
  }
  return openPglite(url === 'memory://' ? undefined : join(opts.dataDir, 'db'), opts);
}

async function openPostgres(url: string, opts: OpenDatabaseOptions): Promise<DatabaseHandle> {
  // Bounded connect timeout: with an unreachable server, requests (and /healthz) fail instead of hanging.
  const pool = new pg.Pool({
    connectionString: url,
    max: opts.poolSize ?? 10,
    // During an outage requests fail fast (503) instead of queueing for the pool.
    connectionTimeoutMillis: 3000,
    // Connections broken by a restart are dropped rather than handed out again.
    idleTimeoutMillis: 10_000,
  });
  // A client losing its connection — idle in the pool, or checked out (a transaction, an
  // import) between two queries — must not crash the process: the error reaches the query that
  // uses it, and the pool replaces the client.
  pool.on('error', (e) => opts.logger?.warn({ err: e }, 'postgres pool client error'));
  pool.on('connect', (client) => {
    client.on('error', (e) => opts.logger?.warn({ err: e }, 'postgres client error'));
  });
  const db = drizzleNodePg({ client: pool }) as unknown as Database;
  try {
    await db.execute(sql`SELECT 1`);
  } catch (e) {
    await pool.end().catch(() => undefined);
    throw new DatabaseError(`cannot connect to ${redactUrl(url)}: ${(e as Error).message}`, e);
  }
  let closed = false;
  return {
    db,
    driver: 'postgres',
    location: redactUrl(url),
    embedded: false,
    async ping() {
      await db.execute(sql`SELECT 1`);
    },
    async close() {
      if (closed) return;
      closed = true;
      await pool.end();
    },
  };
}

/**
 * PGlite is single-process: a lock file stops a second server from opening the same directory
 * and corrupting it. The file names the holder by pid and, on Linux, the process's start time
 * (/proc/<pid>/stat), so a lock left by a crashed server is taken over even when its pid has
 * since been reused by an unrelated process.
 */
async function lockDir(dir: string): Promise<() => Promise<void>> {
  const path = join(dir, 'opsplane.lock');
  const me = `${process.pid} ${(await startTimeOf(process.pid)) ?? ''}`.trim();
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fh = await open(path, 'wx', 0o600);
      await fh.writeFile(me);
      await fh.close();
      return () => rm(path, { force: true });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const [pidText, started] = (await readFile(path, 'utf8').catch(() => '')).trim().split(/\s+/);
      const pid = Number(pidText);
      if (pid === process.pid)
        throw new DatabaseError(`database directory ${dir} is already open in this process`);
      if (pid > 0 && isAlive(pid) && (!started || started === (await startTimeOf(pid)))) {
        throw new DatabaseError(
          `the embedded database in ${dir} is in use by another Opsplane server (pid ${pid}); ` +
            `stop that one first — to run several servers, point them all at PostgreSQL (server.database_url)`,
        );
      }
      await rm(path, { force: true });
    }
  }
  throw new DatabaseError(`cannot lock database directory ${dir}`);
}

/** The start time of a process (clock ticks since boot), where /proc has it. */
async function startTimeOf(pid: number): Promise<string | undefined> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => undefined);
  // Fields after the command name (which may hold spaces) — the start time is field 22.
  return stat?.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function openPglite(dir: string | undefined, opts: OpenDatabaseOptions): Promise<DatabaseHandle> {
  let unlock: (() => Promise<void>) | undefined;
  if (dir) {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    unlock = await lockDir(dir);
  }
  let client: PGlite;
  try {
    client = dir ? await PGlite.create(dir) : await PGlite.create();
  } catch (e) {
    await unlock?.();
    throw new DatabaseError(
      `cannot open embedded database${dir ? ` in ${dir}` : ''}: ${(e as Error).message}`,
      e,
    );
  }
  const db = drizzlePglite({ client }) as unknown as Database;
  let closed = false;
  opts.logger?.debug({ dir: dir ?? 'memory://' }, 'embedded database open');
  return {
    db,
    driver: 'pglite',
    location: dir ?? 'memory://',
    embedded: true,
    async ping() {
      await db.execute(sql`SELECT 1`);
    },
    async close() {
      if (closed) return;
      closed = true;
      await client.close();
      await unlock?.();
    },
  };
}

/** The SQLSTATE of a driver error, looking through drizzle's wrapping (`cause`). */
export function sqlState(e: unknown): string | undefined {
  for (let cur = e, depth = 0; cur && depth < 5; depth++) {
    const code = (cur as { code?: unknown }).code;
    if (typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code)) return code;
    cur = (cur as { cause?: unknown }).cause;
  }
  return undefined;
}

/** The constraint a driver error names, if any. */
export function sqlConstraint(e: unknown): string | undefined {
  for (let cur = e, depth = 0; cur && depth < 5; depth++) {
    const c = (cur as { constraint?: unknown }).constraint;
    if (typeof c === 'string') return c;
    cur = (cur as { cause?: unknown }).cause;
  }
  return undefined;
}

export const UNIQUE_VIOLATION = '23505';

/** Rows of a raw query; both drivers return `{ rows }` (pg QueryResult, PGlite Results). */
export async function queryRows<T>(db: Database, query: SQL): Promise<T[]> {
  const res = (await db.execute(query)) as { rows?: unknown };
  return Array.isArray(res.rows) ? (res.rows as T[]) : [];
}
