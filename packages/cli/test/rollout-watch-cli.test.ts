/**
 * `opsplane rollouts start` following a real rollout to its end: a fleet (etcd, a controller, two
 * agents labelled role=web pinning the server's artifact key), an `opsplane server` process, a
 * package uploaded with the CLI, a staged policy, and `rollouts start --batch-size 1` waiting by
 * default: the plain progress lines (not a terminal) show each wave running and done from the
 * event stream, then the summary; exit 0. `policies agents` then shows both agents applied.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  packageArchive,
  startFleet,
  startServerProcess,
  tempDir,
  waitFor,
  type Fleet,
  type ServerProcess,
} from '@opsplane/test-support';

const MAIN = fileURLToPath(new URL('../src/main.js', import.meta.url));
const ADMIN_PASSWORD = 'rollout-watch-password-0123';

describe('opsplane rollouts start follows a real rollout', { timeout: 150_000 }, () => {
  let dir: { path: string; cleanup: () => Promise<void> };
  let fleet: Fleet | undefined;
  let server: ServerProcess | undefined;
  let env: NodeJS.ProcessEnv;

  const opsplane = (args: string[], input?: string) =>
    new Promise<{ code: number; out: string; err: string }>((resolve) => {
      const child = execFile(
        process.execPath,
        [MAIN, ...args],
        { env, timeout: 90_000, cwd: dir.path },
        (err, stdout, stderr) => {
          const code = err ? ((err as { code?: number }).code ?? 1) : 0;
          resolve({ code: typeof code === 'number' ? code : 1, out: stdout, err: stderr });
        },
      );
      child.stdin?.end(input ?? '');
    });
  const ok = async (args: string[], input?: string) => {
    const r = await opsplane(args, input);
    assert.equal(r.code, 0, `opsplane ${args.join(' ')}: ${r.out}${r.err}`);
    return r;
  };

  before(async () => {
    dir = await tempDir('opsplane-rollout-watch-');
    fleet = await startFleet({ areas: [{ name: 'area-1', controllers: 1, agents: 0 }] });
    server = await startServerProcess({
      dir: join(dir.path, 'server'),
      etcdEndpoints: fleet.etcd.endpoints,
      areas: { 'area-1': { agent_secret: fleet.secret('area-1') } },
      server: { agents_refresh_interval: '1s' },
      adminPassword: ADMIN_PASSWORD,
    });
    env = { ...process.env, OPSPLANE_CONFIG_DIR: join(dir.path, 'cli'), OPSPLANE_LOG_LEVEL: 'warn' };
    for (const k of ['OPSPLANE_SERVER', 'OPSPLANE_TOKEN', 'OPSPLANE_PASSWORD']) delete env[k];
    await ok(['login', '--server', server.url, '-u', 'admin'], `${ADMIN_PASSWORD}\n`);
    // The agents pin the key the CLI prints, as an install would write it.
    const keys = (await ok(['artifacts', 'keys'])).out.trim().split('\n');
    for (const code of ['watch-web-1', 'watch-web-2'])
      await fleet.addAgent({
        area: 'area-1',
        code,
        labels: { role: 'web' },
        agentConfig: { artifact_keys: keys },
      });
    await waitFor(
      async () =>
        /watch-web-2/.test((await ok(['agents', 'list', '-l', 'role=web', '--status', 'online'])).out),
      { timeoutMs: 30_000, what: 'both agents listed online' },
    );
  });
  after(async () => {
    await server?.stop();
    await fleet?.stop();
    await dir?.cleanup();
  });

  it('waits with progress per wave, prints the summary, and the agents report applied', async () => {
    const file = join(dir.path, 'hello-1.0.0.tar.gz');
    await writeFile(
      file,
      packageArchive({
        manifest:
          "name: hello\nversion: 1.0.0\ncommand: /bin/sh\nargs: ['-c', 'exec sleep 3600']\n" +
          'health_check: { type: process, start_period: 0s, interval: 200ms }\n',
      }),
    );
    await ok(['artifacts', 'upload', file]);
    await ok(['policies', 'create', 'hello', '-l', 'role=web', '--package', 'hello=1.0.0', '--staged']);

    const r = await ok(['rollouts', 'start', 'hello', '--batch-size', '1', '--max-failures', '0']);
    // Plain progress (not a terminal): a line per change of a wave's status, from the stream.
    assert.match(r.out, /^wave 1: running 0\/1/m);
    assert.match(r.out, /^wave 1: succeeded 1\/1 agents · 1 applied, 0 failed/m);
    assert.match(r.out, /^wave 2: succeeded 1\/1 agents · 1 applied, 0 failed/m);
    assert.match(
      r.out,
      /rollout \S+ of hello revision 1 succeeded: 2 of 2 agent\(s\) applied — revision 1 applied$/m,
    );

    const agents = await ok(['policies', 'agents', 'hello']);
    assert.match(
      agents.out,
      /^watch-web-1\s+area-1\s+yes\s+applied\s+r1\s+r1 applied\s+hello 1\.0\.0 applied/m,
    );
    assert.match(
      agents.out,
      /^watch-web-2\s+area-1\s+yes\s+applied\s+r1\s+r1 applied\s+hello 1\.0\.0 applied/m,
    );
    assert.match(agents.out, /2 agent\(s\): 2 applied/);
  });
});
