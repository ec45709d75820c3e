/**
 * `opsplane artifacts|policies|rollouts` against a real `opsplane server` process (no fleet: the
 * agents' convergence is the server's tests' business): upload real package archives (signed by
 * the server; the key `artifacts keys` prints verifies them), list/show/delete, the clear errors
 * (not gzip, in use, unknown version), policies from flags and from a YAML file with config
 * files, revisions (applied and staged), and a rollout started with --no-wait, then shown and
 * listed, and one watched to its end. Usage errors exit 2.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { verifyArtifactSignature, type ArtifactRef } from '@opsplane/models';
import { packageArchive, startServerProcess, tempDir, type ServerProcess } from '@opsplane/test-support';

const MAIN = fileURLToPath(new URL('../src/main.js', import.meta.url));
const ADMIN_PASSWORD = 'dist-cli-password-0123';

interface Run {
  code: number | null;
  out: string;
  err: string;
}

const manifest = (name: string, version: string) =>
  `name: ${name}\nversion: ${version}\ncommand: /bin/sh\nargs: ['-c', 'sleep 1000']\n`;

describe('opsplane artifacts/policies/rollouts against a real server', { timeout: 120_000 }, () => {
  let dir: { path: string; cleanup: () => Promise<void> };
  let server: ServerProcess;
  let env: NodeJS.ProcessEnv;

  function opsplane(args: string[], extraEnv: NodeJS.ProcessEnv = {}, input?: string): Promise<Run> {
    return new Promise((resolve) => {
      const child = execFile(
        process.execPath,
        [MAIN, ...args],
        { env: { ...env, ...extraEnv }, timeout: 60_000, cwd: dir.path },
        (err, stdout, stderr) => {
          const code = err ? ((err as { code?: number }).code ?? 1) : 0;
          resolve({ code: typeof code === 'number' ? code : 1, out: stdout, err: stderr });
        },
      );
      child.stdin?.end(input ?? '');
    });
  }
  const ok = async (args: string[]) => {
    const r = await opsplane(args);
    assert.equal(r.code, 0, `opsplane ${args.join(' ')}: ${r.out}${r.err}`);
    return r;
  };
  const fails = async (args: string[], code: number, message: RegExp) => {
    const r = await opsplane(args);
    assert.equal(r.code, code, `opsplane ${args.join(' ')} should exit ${code}: ${r.out}${r.err}`);
    assert.match(r.err, message);
    return r;
  };
  const archive = async (name: string, version: string) => {
    const file = join(dir.path, `${name}-${version}.tar.gz`);
    await writeFile(
      file,
      packageArchive({ manifest: manifest(name, version), files: { 'bin/run.sh': 'sleep 1' } }),
    );
    return file;
  };

  before(async () => {
    dir = await tempDir('opsplane-dist-cli-');
    server = await startServerProcess({
      dir: join(dir.path, 'server'),
      etcdEndpoints: ['http://127.0.0.1:1'],
      adminPassword: ADMIN_PASSWORD,
    });
    env = { ...process.env, OPSPLANE_CONFIG_DIR: join(dir.path, 'cli'), OPSPLANE_LOG_LEVEL: 'warn' };
    for (const k of ['OPSPLANE_SERVER', 'OPSPLANE_TOKEN', 'OPSPLANE_PASSWORD']) delete env[k];
    const login = await opsplane(['login', '--server', server.url, '-u', 'admin'], {}, `${ADMIN_PASSWORD}\n`);
    assert.equal(login.code, 0, login.err);
  });
  after(async () => {
    await server?.stop();
    await dir?.cleanup();
  });

  it('artifacts: upload (signed by the server), again, list, show, keys verify, delete, clear errors', async () => {
    const up = await ok(['artifacts', 'upload', await archive('web', '1.0.0')]);
    assert.match(
      up.out,
      /^uploaded package web 1\.0\.0 \(any\/any\): .*sha256 [0-9a-f]{64}, signed by server/,
    );
    const again = await ok(['artifacts', 'upload', join(dir.path, 'web-1.0.0.tar.gz')]);
    assert.match(again.out, /^the server already had package web 1\.0\.0/);

    const list = await ok(['artifacts', 'list']);
    assert.match(list.out, /^[0-9a-f]{12}\s+package\s+web\s+1\.0\.0\s+any\/any\s+.*server\s+admin/m);
    assert.match(list.out, /1 artifact\(s\)/);

    const ref = JSON.parse((await ok(['artifacts', 'show', 'web@1.0.0', '-o', 'json'])).out) as ArtifactRef;
    assert.equal(ref.name, 'web');
    const shown = await ok(['artifacts', 'show', ref.sha256.slice(0, 10)]);
    assert.match(shown.out, new RegExp(`artifact ${ref.sha256}`));
    assert.match(shown.out, /command:\s+\/bin\/sh/);

    // The key printed to pin is the one that signed it: the agents' own check passes with it.
    const keys = await ok(['artifacts', 'keys']);
    const pinned = keys.out.trim().split('\n');
    assert.ok(
      pinned.every((k) => /^ed25519:/.test(k)),
      keys.out,
    );
    assert.match(keys.err, /pin these in artifact_keys/);
    assert.deepEqual(verifyArtifactSignature(ref, pinned), { ok: true });
    assert.equal(verifyArtifactSignature({ ...ref, version: '9.9.9' }, pinned).ok, false);

    const notGzip = join(dir.path, 'notes.txt');
    await writeFile(notGzip, 'hello');
    await fails(['artifacts', 'upload', notGzip], 1, /is not a gzip file/);
    await fails(['artifacts', 'upload', join(dir.path, 'missing.tar.gz')], 1, /cannot read/);
    await fails(['artifacts', 'upload'], 2, /upload needs a file/);
    await fails(['artifacts', 'upload', notGzip, '--kind', 'plugin'], 2, /--kind must be package or agent/);
    await fails(['artifacts', 'frob'], 2, /unknown action 'frob'/);

    await ok(['artifacts', 'upload', await archive('web', '0.9.0')]);
    const old = JSON.parse((await ok(['artifacts', 'show', 'web@0.9.0', '--json'])).out) as ArtifactRef;
    const del = await ok(['artifacts', 'delete', old.sha256.slice(0, 12)]);
    assert.match(del.out, /deleted package web 0\.9\.0/);
    await fails(['artifacts', 'show', 'web@0.9.0'], 1, /no artifact matches 'web@0\.9\.0'/);
  });

  it('policies: create from flags and from a YAML file, update (applied, staged), revisions, errors', async () => {
    await ok(['artifacts', 'upload', await archive('web', '1.1.0')]);
    await ok(['artifacts', 'upload', await archive('collector', '2.0.0')]);
    await writeFile(join(dir.path, 'app.yaml'), 'port: 8080\n');

    const missing = await fails(
      ['policies', 'create', 'web-prod', '-l', 'env=prod,role=web', '--package', 'web=7.7.7'],
      1,
      /artifact_not_found|no artifact|7\.7\.7/,
    );
    assert.match(missing.err, /upload it first: opsplane artifacts upload/);

    const c = await ok([
      'policies',
      'create',
      'web-prod',
      '-l',
      'env=prod,role=web',
      '--package',
      'web=1.0.0',
      '--config',
      'web=./app.yaml',
      '--correct-drift',
      '--priority',
      '10',
    ]);
    assert.match(
      c.out,
      /created policy web-prod \(revision 1\): web 1\.0\.0 \(\+1 config\); areas all; selector env=prod,role=web/,
    );
    assert.match(c.out, /applied at once/);

    const shown = JSON.parse((await ok(['policies', 'show', 'web-prod', '-o', 'json'])).out) as {
      id: string;
      revision: number;
      applied_revision: number;
      correct_drift: boolean;
      priority: number;
      packages: { name: string; version: string; configs: { file_name: string; content: string }[] }[];
    };
    assert.deepEqual(shown.packages, [
      { name: 'web', version: '1.0.0', configs: [{ file_name: 'app.yaml', content: 'port: 8080\n' }] },
    ]);
    assert.deepEqual(
      [shown.revision, shown.applied_revision, shown.correct_drift, shown.priority],
      [1, 1, true, 10],
    );

    // Applied at once: a new revision agents get now; the config is kept.
    const u = await ok(['policies', 'update', 'web-prod', '--package', 'web=1.1.0,collector=2.0.0']);
    assert.match(u.out, /updated policy web-prod: revision 2: web 1\.1\.0 \(\+1 config\), collector 2\.0\.0/);
    assert.match(u.out, /applied at once/);
    // Staged: agents stay on 2 until a rollout.
    const s = await ok(['policies', 'update', shown.id, '--remove-package', 'collector', '--staged']);
    assert.match(s.out, /revision 3: web 1\.1\.0/);
    assert.match(
      s.out,
      /staged \(agents stay on revision 2\): roll it out with 'opsplane rollouts start web-prod'/,
    );
    const same = await ok(['policies', 'update', 'web-prod', '--priority', '10', '--staged']);
    assert.match(same.out, /nothing changed \(revision 3\)/);

    const revs = await ok(['policies', 'revisions', 'web-prod']);
    assert.match(revs.out, /^3\s+web 1\.1\.0 \(\+1 config\)\s/m);
    assert.match(revs.out, /^2\s+yes\s+web 1\.1\.0 \(\+1 config\), collector 2\.0\.0\s/m);
    assert.match(revs.out, /^1\s+web 1\.0\.0/m);
    assert.match(revs.out, /3 revision\(s\) of web-prod/);

    // From a file: configs read next to it, packages as a map, a duration.
    await writeFile(join(dir.path, 'collector.conf'), 'level=info\n');
    const file = join(dir.path, 'edge.yaml');
    await writeFile(
      file,
      [
        'name: edge',
        'description: the edge collectors',
        'selector: role=edge',
        'packages:',
        '  - name: collector',
        '    version: 2.0.0',
        '    configs: [{ file: ./collector.conf }]',
        'health_timeout: 90s',
        '',
      ].join('\n'),
    );
    const fromFile = await ok(['policies', 'create', '-f', file]);
    assert.match(
      fromFile.out,
      /created policy edge \(revision 1\): collector 2\.0\.0 \(\+1 config\); areas all; selector role=edge/,
    );
    const edge = JSON.parse((await ok(['policies', 'show', 'edge', '--json'])).out) as {
      health_timeout_ms: number;
      packages: { configs: { file_name: string; content: string }[] }[];
    };
    assert.equal(edge.health_timeout_ms, 90_000);
    assert.deepEqual(edge.packages[0]?.configs, [{ file_name: 'collector.conf', content: 'level=info\n' }]);

    const list = await ok(['policies', 'list']);
    assert.match(
      list.out,
      /^web-prod\s+10\s+all\s+env=prod,role=web\s+web 1\.1\.0 \(\+1 config\)\s+-\s+3 \(applied: 2\)/m,
    );
    assert.match(list.out, /^edge\s+0\s+all\s+role=edge\s+collector 2\.0\.0/m);
    assert.match(list.out, /2 policies/);

    // An artifact a policy names cannot go.
    const inUse = await fails(['artifacts', 'delete', 'collector@2.0.0'], 1, /in_use|in use|names it/);
    assert.match(inUse.err, /change the policy first/);
    assert.match((await ok(['policies', 'agents', 'web-prod'])).out, /0 agent\(s\)/);

    await fails(['policies', 'create', 'x', '--package', 'web'], 2, /--package takes name=version/);
    await fails(['policies', 'create', 'x', '--config', 'web=./app.yaml'], 2, /no package web/);
    await fails(['policies', 'create', 'x', '-l', 'env in prod'], 2, /--selector/);
    await fails(['policies', 'update', 'web-prod'], 2, /nothing to change/);
    await fails(['policies', 'list', '--package', 'web=1'], 2, /--package goes with create or update/);
    await fails(['policies', 'show', 'nope'], 1, /no policy named 'nope'/);
    await ok(['policies', 'delete', 'edge']);
    await fails(['policies', 'show', 'edge'], 1, /no policy named 'edge'/);
  });

  it('rollouts: start --no-wait, show, list, watch of a finished one; usage errors', async () => {
    const started = await ok([
      'rollouts',
      'start',
      'web-prod',
      '--batch-percent',
      '50',
      '--pause',
      '1s',
      '--no-wait',
    ]);
    const id = /^rollout (\S+) started: web-prod revision 3 to \d+ agent\(s\)/.exec(started.out)?.[1];
    assert.ok(id, started.out);
    assert.match(started.out, new RegExp(`watch it: opsplane rollouts watch ${id}`));

    const shown = await ok(['rollouts', 'show', id as string]);
    assert.match(shown.out, new RegExp(`^rollout ${id} web-prod r3: wave \\d+/\\d+`));
    assert.match(shown.out, /pause 1s/);
    assert.match(shown.out, /from revision 2/);
    const json = JSON.parse((await ok(['rollouts', 'show', id as string, '-o', 'json'])).out) as {
      policy_name: string;
      revision: number;
      pause_ms: number;
    };
    assert.deepEqual([json.policy_name, json.revision, json.pause_ms], ['web-prod', 3, 1000]);

    const list = await ok(['rollouts', 'list', '--policy', 'web-prod']);
    assert.match(list.out, new RegExp(`^${id}\\s+web-prod\\s+3\\s+\\S+`, 'm'));
    assert.match(list.out, /1 rollout\(s\)/);

    // watch follows it to its end (no agents match: it has nothing to wait for).
    const watched = await opsplane(['rollouts', 'watch', id as string]);
    assert.match(
      watched.out,
      new RegExp(`rollout ${id} of web-prod revision 3 (succeeded|halted|cancelled)`),
      watched.err,
    );

    await fails(
      ['rollouts', 'start', 'web-prod', '--batch-size', '2', '--batch-percent', '5'],
      2,
      /not both/,
    );
    await fails(['rollouts', 'start', 'web-prod', '--pause', 'soon'], 2, /--pause takes a duration/);
    await fails(['rollouts', 'start', 'web-prod', '--batch-percent', '101'], 2, /from 1 to 100/);
    await fails(['rollouts', 'list', '--batch-size', '2'], 2, /--batch-size goes with start/);
    await fails(['rollouts', 'show', 'not-an-id'], 2, /not a rollout id/);
    await fails(['rollouts', 'start', 'no-such-policy'], 1, /no policy named 'no-such-policy'/);
  });

  it('keys to pin, a policy with no package, a missing version explained, a rollout watched to its end', async () => {
    const keys = await ok(['artifacts', 'keys']);
    assert.match(keys.out.trim(), /^ed25519:[A-Za-z0-9+/]{43}=$/m);
    assert.match(keys.err, /key [0-9a-f]{16} \(the server's signing key\)/);

    const missing = await fails(
      ['policies', 'create', 'web', '-l', 'role=web', '--package', 'web=7.7.7'],
      1,
      /7\.7\.7/,
    );
    assert.match(missing.err, /upload it first: opsplane artifacts upload/);

    const c = await ok(['policies', 'create', 'bare', '-l', 'role=web', '--priority', '5', '--staged']);
    assert.match(c.out, /created policy bare \(revision 1\): -; areas all; selector role=web/);
    assert.match(c.out, /staged: roll it out with 'opsplane rollouts start bare'/);
    const u = await ok([
      'policies',
      'update',
      'bare',
      '--description',
      'nothing yet',
      '--health-timeout',
      '90s',
      '--staged',
    ]);
    assert.match(u.out, /updated policy bare: revision 2/);
    const shown = JSON.parse((await ok(['policies', 'show', 'bare', '-o', 'json'])).out) as {
      revision: number;
      applied_revision: number | null;
      health_timeout_ms: number;
      description: string;
    };
    assert.deepEqual(
      [shown.revision, shown.applied_revision, shown.health_timeout_ms, shown.description],
      [2, null, 90_000, 'nothing yet'],
    );
    const revs = await ok(['policies', 'revisions', 'bare']);
    assert.match(revs.out, /^2\s+-\s+-\s+all\s+role=web\s+admin/m);
    assert.match(revs.out, /2 revision\(s\) of bare/);
    assert.match(
      (await ok(['policies', 'list'])).out,
      /^bare\s+5\s+all\s+role=web\s+-\s+-\s+2 \(applied: none\)/m,
    );
    assert.match((await ok(['policies', 'agents', 'bare'])).out, /0 agent\(s\)/);

    const started = await ok([
      'rollouts',
      'start',
      'bare',
      '--batch-percent',
      '50',
      '--pause',
      '1s',
      '--no-wait',
    ]);
    const id = /^rollout (\S+) started: bare revision 2 to 0 agent\(s\)/.exec(started.out)?.[1];
    assert.ok(id, started.out);
    // No agent matches: nothing to wait for; watch follows it to its end and exits 0.
    const watched = await ok(['rollouts', 'watch', id]);
    assert.match(
      watched.out,
      new RegExp(`rollout ${id} of bare revision 2 succeeded: 0 of 0 agent\\(s\\) applied`),
    );
    const shownRollout = await ok(['rollouts', 'show', id]);
    assert.match(shownRollout.out, new RegExp(`^rollout ${id} bare r2: wave 0/0`));
    assert.match(shownRollout.out, /pause 1s/);
    const list = await ok(['rollouts', 'list', '--policy', 'bare', '--status', 'succeeded']);
    assert.match(list.out, new RegExp(`^${id}\\s+bare\\s+2\\s+succeeded`, 'm'));
    // Succeeded: the revision is applied now.
    assert.match((await ok(['policies', 'show', 'bare'])).out, /revision:\s+2\n/);
    const again = await fails(['rollouts', 'pause', id], 1, /succeeded|cannot/);
    assert.match(again.err, /HTTP 409/);

    await fails(['rollouts', 'start', 'bare', '--batch-size', '2', '--batch-percent', '5'], 2, /not both/);
    await fails(['rollouts', 'start', 'bare', '--pause', 'soon'], 2, /--pause takes a duration/);
    await fails(['rollouts', 'start', 'bare', '--batch-percent', '101'], 2, /from 1 to 100/);
    await fails(['rollouts', 'list', '--batch-size', '2'], 2, /--batch-size goes with start/);
    await fails(['rollouts', 'show', 'not-an-id'], 2, /not a rollout id/);
    await fails(['rollouts', 'start', 'no-such-policy'], 1, /no policy named 'no-such-policy'/);
    await ok(['policies', 'delete', 'bare']);
    await fails(['policies', 'show', 'bare'], 1, /no policy named 'bare'/);
    await fails(['artifacts', 'frob'], 2, /unknown action 'frob'/);
  });
});
