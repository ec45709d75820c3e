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
    connectionTimeoutMillis: 5000,
  });
  // An idle client losing its connection must not crash the process; the pool replaces it.
  pool.on('error', (e) => opts.logger?.warn({ err: e }, 'postgres pool client error'));
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
 * PGlite is single-process: a lock file (with our pid) stops a second server from opening the
 * same directory and corrupting it. A lock left by a dead process is taken over.
 */
async function lockDir(dir: string): Promise<() => Promise<void>> {
  const path = join(dir, 'opsplane.lock');
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fh = await open(path, 'wx', 0o600);
      await fh.writeFile(String(process.pid));
      await fh.close();
      return () => rm(path, { force: true });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const pid = Number((await readFile(path, 'utf8').catch(() => '')).trim());
      if (pid > 0 && pid !== process.pid && isAlive(pid)) {
        throw new DatabaseError(`database directory ${dir} is in use by process ${pid}`);
      }
      if (pid === process.pid)
        throw new DatabaseError(`database directory ${dir} is already open in this process`);
      await rm(path, { force: true });
    }
  }
  throw new DatabaseError(`cannot lock database directory ${dir}`);
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
