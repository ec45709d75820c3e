/**
 * The server on a shaky database, with real processes: a private PostgreSQL cluster (pg_ctl,
 * free port) that the test restarts (`-m fast`, quick), stops (`-m fast`, `-m immediate`) and
 * keeps down for 10–12 s, while a client loop walks every route family (~10 requests/s) and
 * three CSV imports run. The server is an `opsplane server` process beside a real etcd, a
 * controller and agents. It must answer 503 `database_unavailable` with Retry-After while the
 * database is away — never a 500 — never die, leave no batch `running`, keep every import whole
 * or absent, and serve every route again within a second of the database's return.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import {
  findPostgresBinDir,
  skipUnlessAvailable,
  sleep,
  startEtcd,
  startFleet,
  startPostgresCluster,
  startServerProcess,
  tempDir,
  waitFor,
  type EtcdHandle,
  type Fleet,
  type PostgresCluster,
  type ServerProcess,
} from '@opsplane/test-support';
import type { AgentListResponse, BatchJob, DeviceListResponse, ImportReport } from '@opsplane/api';

const TOKEN = 'outage-controller-token-0123456789';
const ADMIN_PASSWORD = 'outage-admin-password';
const IMPORT_ROWS = 3000;

interface Answer {
  route: string;
  status: number;
  code?: string;
  retryAfter?: string | null;
  at: number;
}

/** One request of the loop: a route family, and how to call it. */
interface RouteCall {
  route: string;
  method: string;
  path: () => string;
  body?: () => unknown;
  auth: boolean;
}

const pgBinaries = {
  name: 'PostgreSQL server binaries',
  available: findPostgresBinDir() !== undefined,
  reason: 'a private cluster to restart needs pg_ctl/postgres (Debian package postgresql)',
};

const skip = skipUnlessAvailable(pgBinaries);

describe(
  'PostgreSQL outages under load (real PostgreSQL, etcd, controller, agents)',
  { timeout: 300_000, skip },
  () => {
    let pg: PostgresCluster;
    let etcd: EtcdHandle;
    let fleet: Fleet;
    let dir: Awaited<ReturnType<typeof tempDir>>;
    let server: ServerProcess;
    let cookie = '';
    const answers: Answer[] = [];
    const batchIds = new Set<string>();
    let stopLoop = false;
    let loop: Promise<void> | undefined;
    let seq = 0;

    const routes: RouteCall[] = [
      { route: 'GET /healthz', method: 'GET', path: () => '/healthz', auth: false },
      { route: 'GET /auth/me', method: 'GET', path: () => '/api/v1/auth/me', auth: true },
      { route: 'GET /devices', method: 'GET', path: () => '/api/v1/devices?pageSize=5', auth: true },
      { route: 'GET /batches', method: 'GET', path: () => '/api/v1/batches', auth: true },
      { route: 'GET /agents', method: 'GET', path: () => '/api/v1/agents', auth: true },
      { route: 'GET /audit', method: 'GET', path: () => '/api/v1/audit', auth: true },
      { route: 'GET /alerts', method: 'GET', path: () => '/api/v1/alerts', auth: true },
      { route: 'GET /deployments', method: 'GET', path: () => '/api/v1/deployments', auth: true },
      { route: 'GET /controllers', method: 'GET', path: () => '/api/v1/controllers', auth: true },
      { route: 'GET /areas', method: 'GET', path: () => '/api/v1/areas', auth: true },
      { route: 'GET /users', method: 'GET', path: () => '/api/v1/users', auth: true },
      {
        route: 'POST /devices',
        method: 'POST',
        path: () => '/api/v1/devices',
        body: () => ({
          name: `loop-${++seq}-${randomBytes(3).toString('hex')}`,
          ip: `10.9.${1 + (seq % 250)}.${1 + ((seq * 7) % 250)}`,
          function_area: 'area-1',
          os: 'linux',
          arch: 'amd64',
          login_method: 'ssh',
          login: { username: 'ops', password: 'secret-password' },
        }),
        auth: true,
      },
      {
        route: 'POST /batches',
        method: 'POST',
        path: () => '/api/v1/batches?wait=0s',
        body: () => ({
          action: 'restart',
          agents: fleet.agents.map((a) => a.code),
          packages: ['web'],
          timeout: '30s',
        }),
        auth: true,
      },
      {
        route: 'POST /auth/login',
        method: 'POST',
        path: () => '/api/v1/auth/login',
        body: () => ({ username: 'admin', password: ADMIN_PASSWORD }),
        auth: false,
      },
    ];

    async function send(r: RouteCall, timeoutMs = 15_000): Promise<Answer & { json?: unknown }> {
      const body = r.body?.();
      const at = Date.now();
      try {
        const res = await fetch(`${server.url}${r.path()}`, {
          method: r.method,
          headers: {
            // A cookie-authenticated change must name its origin (the CSRF guard).
            ...(r.auth ? { cookie, origin: server.url } : {}),
            ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
          },
          ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
          signal: AbortSignal.timeout(timeoutMs),
        });
        const text = await res.text();
        let json: unknown;
        try {
          json = JSON.parse(text);
        } catch {
          json = undefined;
        }
        const code = (json as { error?: { code?: string } } | undefined)?.error?.code;
        if (r.route === 'POST /batches' && res.status === 202) batchIds.add((json as BatchJob).id);
        return {
          route: r.route,
          status: res.status,
          ...(code ? { code } : {}),
          retryAfter: res.headers.get('retry-after'),
          at,
          json,
        };
      } catch (e) {
        // No answer at all (connection refused: the server died; timeout: it hangs).
        return { route: r.route, status: 0, code: (e as Error).name, at };
      }
    }

    function startLoop(): void {
      stopLoop = false;
      // Three workers, each ~3.3 requests/s, offset over the route families.
      loop = Promise.all(
        [0, 1, 2].map(async (w) => {
          for (let i = w * 4; !stopLoop; i++) {
            const r = routes[i % routes.length] as RouteCall;
            answers.push(await send(r));
            await sleep(300);
          }
        }),
      ).then(() => undefined);
    }

    async function stopLoopAndCheck(): Promise<void> {
      stopLoop = true;
      await loop;
      const bad = answers.filter((a) => a.status >= 500 && a.status !== 503);
      assert.deepEqual(bad, [], 'no 5xx other than 503');
      const none = answers.filter((a) => a.status === 0);
      assert.deepEqual(none, [], 'every request answered (the server neither died nor hung)');
      for (const a of answers.filter((x) => x.status === 503 && x.route !== 'GET /healthz')) {
        assert.equal(a.code, 'database_unavailable', JSON.stringify(a));
        assert.ok(a.retryAfter && Number(a.retryAfter) > 0, `Retry-After on ${JSON.stringify(a)}`);
      }
      assert.ok(server.process.running, 'the server process is alive');
      assert.doesNotMatch(server.process.output(), /Unhandled|uncaught/i);
    }

    /** After the database's return: the time each route family takes to answer 2xx again. */
    async function recoveryTimes(since: number): Promise<Map<string, number>> {
      const out = new Map<string, number>();
      await Promise.all(
        routes.map(async (r) => {
          for (;;) {
            const a = await send(r, 5000);
            if (a.status >= 200 && a.status < 300) {
              out.set(r.route, a.at - since);
              return;
            }
            assert.ok(
              a.status === 503 || a.status === 0,
              `${r.route} answered ${a.status} ${JSON.stringify(a.json)}`,
            );
            if (Date.now() - since > 20_000)
              throw new Error(`${r.route} did not recover: ${a.status} ${a.code}`);
            await sleep(50);
          }
        }),
      );
      return out;
    }

    before(async () => {
      pg = await startPostgresCluster();
      dir = await tempDir('opsplane-outage-');
      etcd = await startEtcd();
      fleet = await startFleet({
        etcd,
        apiToken: TOKEN,
        areas: [{ name: 'area-1', controllers: 1, agents: 3 }],
        packages: [{ kind: 'web' }],
      });
      server = await startServerProcess({
        dir: dir.path,
        etcdEndpoints: etcd.endpoints,
        areas: { 'area-1': { controller_token: TOKEN } },
        server: { database_url: pg.url(), agents_refresh_interval: '1s', batch_wait: '0s' },
        env: { OPSPLANE_MASTER_KEY: randomBytes(32).toString('base64') },
        adminPassword: ADMIN_PASSWORD,
      });
      cookie = await server.login();
      await waitFor(
        async () =>
          (await server.call<AgentListResponse>(cookie, 'GET', '/agents?status=online&refresh=true')).json
            .total === fleet.agents.length,
        { timeoutMs: 30_000, intervalMs: 300, what: 'every agent online' },
      );
    });

    after(async () => {
      stopLoop = true;
      await loop;
      await server?.stop().catch(() => undefined);
      await fleet?.stop();
      await etcd?.stop();
      await pg?.destroy();
      await dir?.cleanup();
    });

    for (const outage of [
      { name: 'a quick restart (-m fast)', mode: 'fast' as const, downMs: 0 },
      { name: 'stopped -m fast and kept down 10 s', mode: 'fast' as const, downMs: 10_000 },
      { name: 'crashed (-m immediate) and kept down 12 s', mode: 'immediate' as const, downMs: 12_000 },
    ]) {
      it(`${outage.name}: 503 with Retry-After, never 500; every route back within 1 s of the return`, async () => {
        answers.length = 0;
        startLoop();
        await sleep(1500);
        // Three imports in flight as the database goes away: each must be all there or not at all.
        const importNames = [0, 1, 2].map(() => `imp${randomBytes(3).toString('hex')}`);
        const imports = importNames.map((prefix) => {
          const csv = ['name,ip,function_area,os,arch,login_method,username,password']
            .concat(
              Array.from(
                { length: IMPORT_ROWS },
                (_, i) =>
                  `${prefix}-${i},10.${(i >> 8) & 255}.${i & 255}.9,area-1,linux,amd64,ssh,ops,pw-${i}`,
              ),
            )
            .join('\n');
          return fetch(`${server.url}/api/v1/devices/import`, {
            method: 'POST',
            headers: { cookie, origin: server.url, 'content-type': 'text/csv' },
            body: csv,
            signal: AbortSignal.timeout(60_000),
          }).then(async (res) => ({ status: res.status, body: (await res.json()) as ImportReport }));
        });
        await sleep(150);
        if (outage.downMs === 0) await pg.restart(outage.mode);
        else {
          await pg.stop(outage.mode);
          await sleep(outage.downMs);
          await pg.start();
        }
        const back = Date.now();
        const recovered = await recoveryTimes(back);
        const slowest = Math.max(...recovered.values());
        process.stdout.write(
          `# ${outage.name}: recovered in ${slowest} ms; ${JSON.stringify(Object.fromEntries(recovered))}\n`,
        );
        assert.ok(
          slowest <= 1000,
          `every route answers again within 1 s of the database's return: ${slowest} ms`,
        );

        await sleep(1000);
        await stopLoopAndCheck();
        const n503 = answers.filter((a) => a.status === 503).length;
        if (outage.downMs > 0) assert.ok(n503 > 0, 'the outage was seen (503s while the database was away)');

        // Imports: whole or absent.
        const results = await Promise.all(imports);
        process.stdout.write(
          `# ${outage.name}: ${answers.length} requests, ${n503} answered 503; imports ${results.map((r) => r.status).join(', ')}; ${batchIds.size} batches\n`,
        );
        for (const [i, r] of results.entries()) {
          assert.ok(
            r.status === 200 || r.status === 503,
            `import answered ${r.status} ${JSON.stringify(r.body)}`,
          );
          const list = await server.call<DeviceListResponse>(
            cookie,
            'GET',
            `/devices?name=${importNames[i]}-&pageSize=1`,
          );
          assert.equal(list.status, 200);
          if (r.status === 200) assert.equal(list.json.total, IMPORT_ROWS, 'a reported import is all there');
          else
            assert.ok(
              list.json.total === 0 || list.json.total === IMPORT_ROWS,
              `import ${i}: ${list.json.total} rows`,
            );
        }

        // No batch stays running: each accepted one finishes with a result per agent.
        await waitFor(
          async () => {
            for (const id of batchIds) {
              const b = await server.call<BatchJob>(cookie, 'GET', `/batches/${id}`);
              if (b.status !== 200 || b.json.status === 'running') return false;
            }
            return true;
          },
          { timeoutMs: 60_000, intervalMs: 500, what: 'every batch finished' },
        );
        for (const id of batchIds) {
          const b = await server.call<BatchJob>(cookie, 'GET', `/batches/${id}`);
          assert.equal(b.json.results?.length, fleet.agents.length, `batch ${id}: a result per agent`);
        }
        batchIds.clear();
      });
    }
  },
);
