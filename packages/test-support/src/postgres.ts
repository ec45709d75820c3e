/**
 * Real PostgreSQL for tests: a fresh, uniquely named database on the local server per call,
 * dropped by drop(). Uses the maintenance database of OPSPLANE_TEST_POSTGRES_URL (default
 * postgres://postgres@127.0.0.1:5432/postgres, trust auth). If the server is not running, tries
 * once per process to start the Debian cluster with pg_ctlcluster.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdirSync } from 'node:fs';
import pg from 'pg';
import { sleep } from './wait.js';

export interface PostgresDatabase {
  /** postgres://…/<name> of the new database. */
  readonly url: string;
  readonly name: string;
  /** Drops the database (terminating its connections). Idempotent. */
  drop(): Promise<void>;
}

export interface PostgresOptions {
  /** Maintenance-database URL. Default $OPSPLANE_TEST_POSTGRES_URL or postgres://postgres@127.0.0.1:5432/postgres. */
  adminUrl?: string;
  /** How long to wait for the server after trying to start it. Default 30 s. */
  startTimeoutMs?: number;
}

const DEFAULT_ADMIN_URL = 'postgres://postgres@127.0.0.1:5432/postgres';
let startAttempt: Promise<void> | undefined;

async function withClient<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000 });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

function run(cmd: string, args: readonly string[]): Promise<string> {
  return new Promise((resolve, reject) =>
    execFile(cmd, args, { timeout: 60_000 }, (err, stdout, stderr) =>
      err ? reject(new Error(`${cmd} ${args.join(' ')} failed: ${err.message}\n${stderr}`)) : resolve(stdout),
    ),
  );
}

/** `pg_ctlcluster --skip-systemctl-redirect <version> main start` for the newest installed version. */
async function startLocalCluster(): Promise<void> {
  let versions: string[];
  try {
    versions = readdirSync('/etc/postgresql').filter((v) => /^\d+(\.\d+)?$/.test(v));
  } catch {
    throw new Error(
      'PostgreSQL is not running and /etc/postgresql does not exist (is postgresql installed?)',
    );
  }
  const version = versions.sort((a, b) => Number(b) - Number(a))[0];
  if (!version)
    throw new Error('PostgreSQL is not running and no cluster is configured under /etc/postgresql');
  await run('pg_ctlcluster', ['--skip-systemctl-redirect', version, 'main', 'start']);
}

async function reachable(adminUrl: string, timeoutMs: number): Promise<void> {
  try {
    await withClient(adminUrl, (c) => c.query('SELECT 1'));
    return;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'ECONNREFUSED' && code !== 'ENOENT' && code !== '57P03') throw e;
  }
  startAttempt ??= startLocalCluster();
  await startAttempt;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await withClient(adminUrl, (c) => c.query('SELECT 1'));
      return;
    } catch (e) {
      if (Date.now() > deadline)
        throw new Error(`PostgreSQL at ${adminUrl} not reachable: ${(e as Error).message}`);
      await sleep(200);
    }
  }
}

const quoteIdent = (s: string) => `"${s.replace(/"/g, '""')}"`;

/** Creates an empty database with a unique name; the caller must drop() it. */
export async function startPostgresDatabase(opts: PostgresOptions = {}): Promise<PostgresDatabase> {
  const adminUrl = opts.adminUrl ?? process.env.OPSPLANE_TEST_POSTGRES_URL ?? DEFAULT_ADMIN_URL;
  await reachable(adminUrl, opts.startTimeoutMs ?? 30_000);
  const name = `opsplane_test_${process.pid}_${Date.now().toString(36)}_${randomBytes(4).toString('hex')}`;
  await withClient(adminUrl, (c) => c.query(`CREATE DATABASE ${quoteIdent(name)}`));
  const u = new URL(adminUrl);
  u.pathname = `/${name}`;
  let dropped: Promise<void> | undefined;
  return {
    url: u.toString(),
    name,
    drop() {
      dropped ??= withClient(adminUrl, async (c) => {
        await c.query(`DROP DATABASE IF EXISTS ${quoteIdent(name)} WITH (FORCE)`);
      });
      return dropped;
    },
  };
}
