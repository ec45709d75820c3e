import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import pg from 'pg';
import {
  findPostgresBinDir,
  freePort,
  isRoot,
  postgresDependency,
  skipUnlessAvailable,
  startPostgresCluster,
  startPostgresDatabase,
  waitFor,
  type PostgresCluster,
} from '../src/index.js';

const skip = skipUnlessAvailable(
  'PostgreSQL server binaries',
  findPostgresBinDir() !== undefined,
  "private clusters run initdb and postgres (node scripts/ensure-deps.mjs installs Debian's postgresql)",
);

async function query<T extends pg.QueryResultRow>(url: string, sql: string): Promise<T[]> {
  const c = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000 });
  c.on('error', () => undefined);
  await c.connect();
  try {
    return (await c.query<T>(sql)).rows;
  } finally {
    await c.end().catch(() => undefined);
  }
}

const count = async (url: string) =>
  Number((await query<{ n: string }>(url, 'SELECT count(*) AS n FROM t'))[0]?.n);
/** Running (a zombie is not: where pid 1 does not reap orphans, a dead one may stay a zombie). */
const alive = (pid: number) => {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
};
const uidOf = (pid: number) =>
  Number(/^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? NaN);

describe('PostgreSQL for tests', { skip, timeout: 120_000 }, () => {
  const clusters: PostgresCluster[] = [];
  after(async () => {
    for (const c of clusters) await c.destroy();
  });

  it('a private cluster keeps its data across restarts (fast, immediate, smart), a crash and a stop', async () => {
    const c = await startPostgresCluster();
    clusters.push(c);
    assert.ok(c.running && c.pid);
    if (isRoot()) assert.notEqual(uidOf(c.pid), 0, `postgres runs as ${c.osUser}, not root`);
    await query(c.adminUrl, 'CREATE TABLE t (v int)');
    await query(c.adminUrl, 'INSERT INTO t SELECT generate_series(1, 100)');

    for (const mode of ['fast', 'immediate', 'smart'] as const) {
      const before = c.pid;
      await c.restart(mode);
      assert.notEqual(c.pid, before, `a new postmaster after restart(${mode})`);
      assert.equal(await count(c.adminUrl), 100, `data after restart(${mode})`);
    }

    await query(c.adminUrl, 'INSERT INTO t VALUES (101)');
    const killed = c.pid!;
    await c.kill();
    assert.equal(c.running, false);
    assert.equal(alive(killed), false);
    await c.start();
    assert.equal(await count(c.adminUrl), 101, 'committed rows survive a crash');

    await c.stop();
    await assert.rejects(query(c.adminUrl, 'SELECT 1'), /ECONNREFUSED/);
    await c.stop(); // idempotent
    await c.start();
    assert.equal(await count(c.adminUrl), 101);
    assert.match(c.url('x'), new RegExp(`^postgres://postgres@127\\.0\\.0\\.1:${c.port}/x$`));

    const dir = c.dataDir;
    await c.destroy();
    await c.destroy(); // idempotent
    assert.equal(c.running, false);
    assert.equal(existsSync(dir), false, 'data dir removed');
    await assert.rejects(c.start(), /destroyed/);
  });

  it('startPostgresDatabase: a private cluster when nothing answers at the admin URL, shared by the process', async () => {
    const dead = `postgres://postgres@127.0.0.1:${await freePort()}/postgres`;
    const a = await startPostgresDatabase({ adminUrl: dead });
    const b = await startPostgresDatabase({ adminUrl: dead });
    try {
      assert.equal(a.server, 'private');
      assert.notEqual(a.name, b.name);
      assert.equal(new URL(a.url).port, new URL(b.url).port, 'one private cluster per process');
      assert.notEqual(new URL(a.url).port, new URL(dead).port);
      await query(a.url, 'CREATE TABLE t (v int)');
      await query(a.url, 'INSERT INTO t VALUES (1)');
      assert.equal(await count(a.url), 1);
      await assert.rejects(count(b.url), /relation "t" does not exist/, 'databases are separate');
      const forced = await startPostgresDatabase({ private: true });
      assert.equal(forced.server, 'private');
      assert.equal(new URL(forced.url).port, new URL(a.url).port);
      await forced.drop();
    } finally {
      await a.drop();
      await b.drop();
      await b.drop(); // idempotent
    }
    await assert.rejects(query(a.url, 'SELECT 1'), /does not exist/);
    assert.equal((await postgresDependency({ adminUrl: dead })).available, true, 'binaries suffice');
  });

  it('startPostgresDatabase: the server at the admin URL when one answers', async (t) => {
    const dep = await postgresDependency();
    const shared = await startPostgresDatabase().catch((e: Error) => e);
    if (shared instanceof Error) throw shared;
    try {
      // Either answer is right, depending on the machine; what matters is that it says which.
      if (shared.server === 'shared') assert.match(shared.url, /^postgres:\/\/postgres@127\.0\.0\.1:5432\//);
      else t.diagnostic('nothing answers at 127.0.0.1:5432 here: a private cluster was used');
      assert.equal(dep.available, true);
      await query(shared.url, 'SELECT 1');
    } finally {
      await shared.drop();
    }
  });

  it('a cluster whose test process is killed (no exit hook runs) is shut down and removed', async () => {
    const index = new URL('../src/index.js', import.meta.url).href;
    const script = [
      `import { startPostgresCluster } from ${JSON.stringify(index)};`,
      `const c = await startPostgresCluster();`,
      `console.log(JSON.stringify({ pid: c.pid, dir: c.dataDir }));`,
      `setInterval(() => {}, 1000);`,
    ].join('\n');
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const started = await waitFor(
      (): { pid: number; dir: string } | undefined => (/\}\n/.test(out) ? JSON.parse(out) : undefined),
      { timeoutMs: 60_000, what: 'the child to start its cluster' },
    );
    assert.ok(alive(started.pid) && existsSync(started.dir));
    child.kill('SIGKILL');
    await waitFor(() => !alive(started.pid) && !existsSync(started.dir), {
      timeoutMs: 15_000,
      what: 'the orphaned cluster to be shut down and removed',
    });
  });
});
