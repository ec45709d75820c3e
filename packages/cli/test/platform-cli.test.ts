/**
 * The operator's path end to end, with every piece a real process: etcd, `opsplane server`
 * (first start: embedded database, area credentials from OPSPLANE_AREAS_FILE), `opsplane
 * controller`s and `opsplane agent`s of two areas (test-support fleet), and the CLI binary:
 * login → devices import → agents list → batch restart (all ok, exit 0) → batch restart with
 * area-2's controller killed (its agent fails with the reason, exit 1). Plus the CLI's errors:
 * unreachable server, not logged in, usage (exit 2).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  freePort,
  spawnTracked,
  startEtcd,
  startFleet,
  tempDir,
  waitFor,
  type EtcdHandle,
  type Fleet,
  type TrackedProcess,
} from '@opsplane/test-support';

const MAIN = fileURLToPath(new URL('../src/main.js', import.meta.url));
const TOKEN = 'cli-e2e-controller-token-0123456789';
const ADMIN_PASSWORD = 'cli-e2e-admin-password';

interface Run {
  code: number | null;
  out: string;
  err: string;
}

describe(
  'opsplane server + login/devices/agents/batch/alerts against a real fleet',
  { timeout: 180_000 },
  () => {
    let etcd: EtcdHandle;
    let fleet: Fleet;
    let server: TrackedProcess;
    let dir: { path: string; cleanup: () => Promise<void> };
    let url: string;
    let env: NodeJS.ProcessEnv;
    const codes = new Map<string, string>();

    function opsplane(args: string[], extraEnv: NodeJS.ProcessEnv = {}, input?: string): Promise<Run> {
      return new Promise((resolve) => {
        const child = execFile(
          process.execPath,
          [MAIN, ...args],
          { env: { ...env, ...extraEnv }, timeout: 60_000, maxBuffer: 16 * 1024 * 1024 },
          (err, stdout, stderr) => {
            const code = err ? ((err as { code?: number }).code ?? 1) : 0;
            resolve({ code: typeof code === 'number' ? code : 1, out: stdout, err: stderr });
          },
        );
        if (input !== undefined) child.stdin?.end(input);
        else child.stdin?.end();
      });
    }

    before(async () => {
      dir = await tempDir('opsplane-cli-e2e-');
      etcd = await startEtcd();
      const areasFile = join(dir.path, 'areas.yaml');
      await writeFile(
        areasFile,
        `areas:\n  area-1: { controller_token: ${TOKEN} }\n  area-2: { controller_token: ${TOKEN} }\n`,
      );
      const configFile = join(dir.path, 'platform.yaml');
      await writeFile(
        configFile,
        'server:\n  agents_refresh_interval: 2s\n  metrics_history: { interval: 2s }\n' +
          '  alerts: { pending_for: 0s, interval: 1s }\ncache:\n  agent_ttl: 60s\n',
      );
      const port = await freePort();
      url = `http://127.0.0.1:${port}`;
      env = {
        ...process.env,
        OPSPLANE_CONFIG_DIR: join(dir.path, 'cli-config'),
        OPSPLANE_LOG_LEVEL: 'warn',
        OPSPLANE_SERVER: '',
        OPSPLANE_TOKEN: '',
        OPSPLANE_PASSWORD: '',
      };
      delete env.OPSPLANE_SERVER;
      delete env.OPSPLANE_TOKEN;
      delete env.OPSPLANE_PASSWORD;
      server = spawnTracked(
        'opsplane-server',
        process.execPath,
        [
          MAIN,
          'server',
          '--config',
          configFile,
          '--listen',
          `127.0.0.1:${port}`,
          '--etcd',
          etcd.endpoints.join(','),
          '--data-dir',
          join(dir.path, 'server'),
        ],
        {
          env: {
            ...env,
            OPSPLANE_ADMIN_PASSWORD: ADMIN_PASSWORD,
            OPSPLANE_AREAS_FILE: areasFile,
          },
        },
      );
      // The server's first start (embedded database) and the controllers come up in parallel.
      const [, f] = await Promise.all([
        server.waitForOutput(/listening on http/, 80_000),
        startFleet({
          etcd,
          apiToken: TOKEN,
          areas: [
            { name: 'area-1', controllers: 1, agents: 0 },
            { name: 'area-2', controllers: 1, agents: 0 },
          ],
        }),
      ]);
      fleet = f;
    });

    after(async () => {
      await fleet?.stop();
      await server?.stop(10_000);
      await etcd?.stop();
      await dir?.cleanup();
    });

    it('login stores an API token (0600); errors are clear', async () => {
      const notYet = await opsplane(['agents', 'list', '--server', url]);
      assert.equal(notYet.code, 1);
      assert.match(notYet.err, /opsplane login/);

      const bad = await opsplane(['login', '--server', url, '--username', 'admin'], {
        OPSPLANE_PASSWORD: 'wrong-password',
      });
      assert.equal(bad.code, 1);
      assert.match(bad.err, /invalid username or password/);

      // Password on stdin (not a terminal), as scripts pass it.
      const ok = await opsplane(['login', '--server', url, '-u', 'admin'], {}, `${ADMIN_PASSWORD}\n`);
      assert.equal(ok.code, 0, ok.err);
      assert.match(ok.out, /Logged in to .* as admin \(admin\); API token/);
      const file = join(dir.path, 'cli-config', 'credentials.json');
      assert.equal((await stat(file)).mode & 0o777, 0o600);

      const elsewhere = await opsplane(['controllers', 'list', '--server', 'http://127.0.0.1:1']);
      assert.equal(elsewhere.code, 1);
      assert.match(elsewhere.err, /no credentials for http:\/\/127\.0\.0\.1:1/);
      const down = await opsplane(['controllers', 'list'], {
        OPSPLANE_SERVER: 'http://127.0.0.1:1',
        OPSPLANE_TOKEN: 'opsp_x',
      });
      assert.equal(down.code, 1);
      assert.match(down.err, /cannot reach the Opsplane server at http:\/\/127\.0\.0\.1:1/);
      assert.ok(!/\n\s+at /.test(down.err), 'no stack trace');

      const usage = await opsplane(['batch', 'restart', '--packages', 'web']);
      assert.equal(usage.code, 2);
      assert.match(usage.err, /--agents/);
      assert.equal((await opsplane(['agents', 'frobnicate'])).code, 2);
    });

    it('devices import prints the per-row report; agents list shows the area’s online agents', async () => {
      const csv = join(dir.path, 'devices.csv');
      await writeFile(
        csv,
        [
          'name,ip,function_area,os,username,password',
          'cli-web-1,10.1.0.1,area-1,linux,root,pw1',
          'cli-web-2,10.1.0.2,area-1,linux,root,pw2',
          'cli-web-3,10.2.0.1,area-2,linux,root,pw3',
          'broken,not-an-ip,area-2,linux,root,pw4',
        ].join('\n') + '\n',
      );
      const imp = await opsplane(['devices', 'import', csv]);
      assert.equal(imp.code, 1, 'a rejected row makes the exit code 1');
      assert.match(imp.out, /4 row\(s\): 3 created, 0 updated, 1 rejected/);
      assert.match(imp.out, /row 4 \(line 5\) broken: .*ip/);

      const list = await opsplane(['devices', 'list', '--json']);
      assert.equal(list.code, 0, list.err);
      for (const d of (
        JSON.parse(list.out) as { devices: { name: string; agent_code: string; function_area: string }[] }
      ).devices)
        codes.set(d.name, d.agent_code);
      // Install the agents with the codes the platform issued.
      await Promise.all(
        [
          ['cli-web-1', 'area-1'],
          ['cli-web-2', 'area-1'],
          ['cli-web-3', 'area-2'],
        ].map(([name, area]) =>
          fleet.addAgent({
            area: area as string,
            code: codes.get(name as string) as string,
            labels: name === 'cli-web-3' ? { role: 'db', env: 'prod' } : { role: 'web', env: 'prod' },
          }),
        ),
      );

      const a = codes.get('cli-web-1') as string;
      const b = codes.get('cli-web-2') as string;
      let last: Run | undefined;
      await waitFor(
        async () => {
          last = await opsplane(['agents', 'list', '--area', 'area-1', '--status', 'online', '--refresh']);
          return last.code === 0 && last.out.includes(a) && last.out.includes(b);
        },
        {
          timeoutMs: 30_000,
          intervalMs: 500,
          what: `agents list showing ${a} and ${b} (last: ${last?.out}${last?.err})`,
        },
      );
      const lines = (last as Run).out.trim().split('\n');
      assert.match(lines[0] ?? '', /^CODE\s+AREA\s+CONTROLLER\s+STATUS/);
      assert.match((last as Run).out, /2 agent\(s\); page 1 of 1/);
      assert.ok(!(last as Run).out.includes(codes.get('cli-web-3') as string), 'area-2 filtered out');
      assert.match((last as Run).out, new RegExp(`${a}\\s+area-1\\s+\\S+\\s+online.*cli-web-1`));

      const get = await opsplane(['agents', 'get', a]);
      assert.equal(get.code, 0, get.err);
      assert.match(get.out, /device\s+cli-web-1 \(10\.1\.0\.1, area-1/);
      assert.match(get.out, /PACKAGE\s+VERSION\s+STATUS/);

      const ctl = await opsplane(['controllers', 'list']);
      assert.equal(ctl.code, 0, ctl.err);
      assert.match(ctl.out, /2 controller\(s\)/);
    });

    it('label selectors, a batch with a progress bar, --no-wait and watch, --output json, metrics over time', async () => {
      const a = codes.get('cli-web-1') as string;
      const b = codes.get('cli-web-2') as string;
      const c = codes.get('cli-web-3') as string;
      const sel = await opsplane(['agents', 'list', '--selector', 'role=web,env in (prod)']);
      assert.equal(sel.code, 0, sel.err);
      assert.ok(sel.out.includes(a) && sel.out.includes(b) && !sel.out.includes(c), sel.out);
      const db = await opsplane(['agents', 'list', '-l', 'role notin (web)', '--json']);
      assert.deepEqual(
        (JSON.parse(db.out) as { agents: { agent_code: string }[] }).agents.map((x) => x.agent_code),
        [c],
      );
      const badSel = await opsplane(['agents', 'list', '--selector', 'role in (web']);
      assert.equal(badSel.code, 2, 'a bad selector is a usage error');
      assert.match(badSel.err, /--selector: unbalanced/);

      // Not a terminal: the progress comes as plain lines, then the table and the summary.
      const run = await opsplane(['batch', 'restart', '--selector', 'role=web', '--packages', 'web']);
      assert.equal(run.code, 0, run.out + run.err);
      assert.match(run.out, /restart [0-9a-f]{8}: (running|succeeded) \d\/2 agents/);
      assert.match(run.out, new RegExp(`${a}\\s+web\\s+area-1\\s+ok\\s+done`));
      assert.match(run.out, /restart\) done: 2 result\(s\), 2 ok, 0 failed/);
      assert.ok(!run.out.includes(c), 'the db agent was not selected');

      const started = await opsplane([
        'batch',
        'restart',
        '--agents',
        a,
        '--packages',
        'collector',
        '--no-wait',
      ]);
      assert.equal(started.code, 0, started.err);
      const id = /batch (\S+) started: restart on 1 agent/.exec(started.out)?.[1];
      assert.ok(id, started.out);
      const watched = await opsplane(['batch', 'watch', id]);
      assert.equal(watched.code, 0, watched.out + watched.err);
      assert.match(watched.out, new RegExp(`batch ${id} \\(restart\\) done: 1 result`));

      const asJson = await opsplane([
        'batch',
        'restart',
        '--agents',
        b,
        '--packages',
        'web',
        '--output',
        'json',
      ]);
      assert.equal(asJson.code, 0, asJson.err);
      const job = JSON.parse(asJson.out) as {
        status: string;
        results: { agent_code: string; reason: string }[];
      };
      assert.equal(job.status, 'done');
      assert.deepEqual(
        job.results.map((r) => [r.agent_code, r.reason]),
        [[b, 'done']],
      );

      let last: Run | undefined;
      await waitFor(
        async () => {
          last = await opsplane(['agents', 'metrics', a, '--json']);
          const h = JSON.parse(last.out || '{}') as { system?: unknown[]; packages?: { name: string }[] };
          return (h.system?.length ?? 0) >= 2 && (h.packages ?? []).some((p) => p.name === 'web');
        },
        {
          timeoutMs: 30_000,
          intervalMs: 1000,
          what: `two metrics samples of ${a} (last: ${last?.out}${last?.err})`,
        },
      );
      const m = await opsplane(['agents', 'metrics', a, '--window', '1h']);
      assert.equal(m.code, 0, m.err);
      assert.match(m.out, /sample\(s\) from .* one per 2 s/);
      assert.match(m.out, /^cpu\s+\S+%\s+/m);
      assert.match(m.out, /^web rss\s+/m);
    });

    it('alerts: a killed agent fires; ack, silence, list silenced, unsilence', async () => {
      const b = codes.get('cli-web-2') as string;
      await fleet.agent(b)?.kill();
      try {
        await alertsOf(b);
      } finally {
        await fleet.agent(b)?.start();
      }
    });

    async function alertsOf(b: string): Promise<void> {
      let alertId: string | undefined;
      await waitFor(
        async () => {
          const r = await opsplane(['alerts', 'list', '--json']);
          alertId = (
            JSON.parse(r.out || '{"items":[]}') as { items: { id: string; subject: string }[] }
          ).items.find((x) => x.subject === `agent:${b}`)?.id;
          return alertId;
        },
        { timeoutMs: 30_000, intervalMs: 1000, what: `the agent_offline alert of ${b}` },
      );
      const list = await opsplane(['alerts', 'list', '--kind', 'agent_offline']);
      assert.match(list.out, new RegExp(`${alertId}\\s+firing\\s+critical\\s+agent_offline\\s+area-1`));
      const ack = await opsplane(['alerts', 'ack', alertId as string]);
      assert.equal(ack.code, 0, `ack: ${ack.out}${ack.err}`);
      assert.match(ack.out, /acknowledged by admin/);
      const sil = await opsplane([
        'alerts',
        'silence',
        '--agent',
        b,
        '--for',
        '30m',
        '--comment',
        'being replaced',
      ]);
      assert.equal(sil.code, 0, `sil: ${sil.out}${sil.err}`);
      const silenceId = /silence (\S+): agent=/.exec(sil.out)?.[1];
      assert.ok(silenceId, sil.out);
      const silenced = await opsplane(['alerts', 'list', '--silenced', 'true', '--json']);
      assert.deepEqual(
        (JSON.parse(silenced.out) as { items: { id: string }[] }).items.map((x) => x.id),
        [alertId],
      );
      const silences = await opsplane(['alerts', 'silences']);
      assert.match(silences.out, new RegExp(`${silenceId}\\s+agent=${b}.*yes\\s+admin\\s+being replaced`));
      const un = await opsplane(['alerts', 'unsilence', silenceId as string]);
      assert.equal(un.code, 0, `un: ${un.out}${un.err}`);
      assert.match((await opsplane(['alerts', 'silences'])).out, /0 silence\(s\)/);
      assert.equal((await opsplane(['alerts', 'silence'])).code, 2, 'nothing to silence: usage');
    }

    it('agents revoke drops an agent at every controller; revocations lists it; reinstate lets it back', async () => {
      const code = codes.get('cli-web-2') as string;
      const agent = fleet.agents.find((x) => x.code === code);
      assert.ok(agent);
      await fleet.waitOnline(agent);
      const usage = await opsplane(['agents', 'revoke']);
      assert.equal(usage.code, 2);
      assert.match(usage.err, /revoke needs an agent code/);

      const rev = await opsplane(['agents', 'revoke', code, '--reason', 'host stolen']);
      assert.equal(rev.code, 0, rev.err);
      assert.match(rev.out, new RegExp(`revoked ${code} \\(area area-1\\)`));
      await waitFor(async () => (await agent.connectedController()) === undefined, {
        timeoutMs: 10_000,
        intervalMs: 100,
        what: 'the revoked agent to be dropped',
      });
      const list = await opsplane(['agents', 'revocations']);
      assert.equal(list.code, 0, list.err);
      assert.match(list.out, new RegExp(`${code}\\s+area-1\\s+.*admin\\s+host stolen`));
      assert.match(list.out, /1 revoked agent\(s\)/);
      assert.equal(await agent.connectedController(), undefined, 'still refused');

      const back = await opsplane(['agents', 'reinstate', code]);
      assert.equal(back.code, 0, back.err);
      await fleet.waitOnline(agent, 20_000);
      const again = await opsplane(['agents', 'reinstate', code]);
      assert.equal(again.code, 1, 'not revoked any more');
      assert.match(again.err, /is not revoked/);
    });

    it('batch restart: per-(agent, package) lines; exit 1 once an area is down, with the reason', async () => {
      const a = codes.get('cli-web-1') as string;
      const b = codes.get('cli-web-2') as string;
      const c = codes.get('cli-web-3') as string;
      const ok = await opsplane(['batch', 'restart', '--agents', `${a},${b}`, '--packages', 'web']);
      assert.equal(ok.code, 0, ok.out + ok.err);
      assert.match(ok.out, new RegExp(`${a}\\s+web\\s+area-1\\s+ok`));
      assert.match(ok.out, new RegExp(`${b}\\s+web\\s+area-1\\s+ok`));
      assert.match(ok.out, /restart\) done: 2 result\(s\), 2 ok, 0 failed/);

      await fleet.controllersOf('area-2')[0]?.kill();
      const mixed = await opsplane([
        'batch',
        'restart',
        '--agents',
        a,
        '--agents',
        c,
        '--packages',
        'web,collector',
      ]);
      assert.equal(mixed.code, 1, mixed.out + mixed.err);
      assert.match(mixed.out, /4 result\(s\), 2 ok, 2 failed/);
      for (const pkg of ['web', 'collector']) {
        assert.match(mixed.out, new RegExp(`${a}\\s+${pkg}\\s+area-1\\s+ok`));
        assert.match(mixed.out, new RegExp(`${c}\\s+${pkg}\\s+area-2\\s+FAILED\\s+\\S+.*area-2`));
      }
      const id = /batch (\S+) \(restart\)/.exec(mixed.out)?.[1] as string;
      const got = await opsplane(['batch', 'get', id, '--json']);
      assert.equal(got.code, 1);
      assert.equal((JSON.parse(got.out) as { results: unknown[] }).results.length, 4);
      const hist = await opsplane(['batch', 'list']);
      assert.equal(hist.code, 0);
      assert.match(hist.out, new RegExp(id));

      // Nothing secret leaked into the server's output.
      assert.ok(!server.output().includes(TOKEN), 'controller token in the server output');
      assert.ok(!server.output().includes(ADMIN_PASSWORD), 'admin password in the server output');
    });
  },
);
