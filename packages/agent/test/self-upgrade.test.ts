/**
 * Agent self-upgrade with real processes: the launcher (`agent.mjs --launch`) runs the bundled
 * agent 1.0.0 from `<root>/current`; a desired state naming agent 2.0.0 makes it fetch, verify
 * and unpack the signed bundle, switch `current` and hand over; 2.0.0 confirms once connected.
 * A bad 3.0.0 (its agent.mjs exits at start) is rolled back to 2.0.0 by the launcher, and 2.0.0
 * reports the rolled back upgrade. Every version dir stays on disk.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, readFile, readlink, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { readTarGz, writeAgentBundle } from '@opsplane/kit';
import type { ArtifactRef, DistributionStatus } from '@opsplane/models';
import {
  createArtifactSigner,
  signArtifact,
  tempDir,
  waitFor,
  type ArtifactSigner,
} from '@opsplane/test-support';
import { stringify } from 'yaml';
import { packAgentBundle } from '../src/index.js';
import { ControllerPeer, tokenFor } from './controller-peer.js';

const AREA = 'area-u';
const CODE = 'agent-upgrade';

describe('agent self-upgrade through the launcher', () => {
  let root: string;
  let cleanup: () => Promise<void>;
  let peer: ControllerPeer;
  let signer: ArtifactSigner;
  let launcher: ChildProcess | undefined;
  let output = '';

  /** A signed agent bundle artifact: the built agent packed as `version`, or the given agent.mjs. */
  async function bundle(version: string, agentMjs?: string): Promise<{ bytes: Buffer; ref: ArtifactRef }> {
    const outDir = join(root, 'bundles');
    await mkdir(outDir, { recursive: true });
    const path = agentMjs
      ? (
          await writeAgentBundle({
            version,
            files: { 'agent.mjs': Buffer.from(agentMjs) },
            node: '>=20',
            outFile: join(outDir, `bad-${version}.tar.gz`),
          })
        ).path
      : (await packAgentBundle({ version, outDir })).path;
    const bytes = await readFile(path);
    return { bytes, ref: signArtifact(signer, bytes, { kind: 'agent', name: 'opsplane-agent', version }) };
  }

  const hellos = () => peer.of('hello');
  const lastDistribution = (): DistributionStatus | undefined => peer.of('heartbeat').at(-1)?.distribution;

  before(async () => {
    ({ path: root, cleanup } = await tempDir('opsplane-upgrade-test-'));
    signer = createArtifactSigner();
    peer = await new ControllerPeer('ctrl-u', AREA).start();
    // The install the deploy engine leaves: versions/1.0.0 unpacked, current → versions/1.0.0.
    const v1 = await bundle('1.0.0');
    for (const e of readTarGz(v1.bytes)) {
      const rel = e.path.split('/').slice(1).join('/');
      if (rel === '') continue;
      const p = join(root, 'versions', '1.0.0', rel);
      if (e.type === 'dir') await mkdir(p, { recursive: true });
      else {
        await mkdir(dirname(p), { recursive: true });
        await writeFile(p, e.data ?? Buffer.alloc(0));
      }
    }
    await writeFile(join(root, 'versions', '1.0.0', '.complete'), '');
    const { symlink } = await import('node:fs/promises');
    await symlink('versions/1.0.0', join(root, 'current'));
    await mkdir(join(root, 'etc'), { recursive: true });
    await writeFile(
      join(root, 'etc', 'agent.yaml'),
      stringify({
        agent_code: CODE,
        area: AREA,
        token: tokenFor(AREA, CODE),
        controllers: [peer.url],
        packages_dir: join(root, 'packages'),
        data_dir: join(root, 'data'),
        heartbeat_interval: '200ms',
        reconnect: { initial: '50ms', max: '300ms' },
        artifact_keys: [signer.publicKey],
      }),
    );
    launcher = spawn(
      process.execPath,
      [
        join(root, 'current', 'agent.mjs'),
        '--launch',
        '--root',
        root,
        '--config',
        join(root, 'etc', 'agent.yaml'),
      ],
      { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, OPSPLANE_LOG_LEVEL: 'info' } },
    );
    launcher.stdout?.on('data', (d: Buffer) => (output += d.toString()));
    launcher.stderr?.on('data', (d: Buffer) => (output += d.toString()));
    await waitFor(() => hellos().find((h) => h.agent.version === '1.0.0'), {
      timeoutMs: 20_000,
      what: 'agent 1.0.0 connected',
    });
  });

  after(async () => {
    if (launcher && launcher.exitCode === null) {
      const exited = new Promise((r) => launcher?.once('exit', r));
      launcher.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000).unref())]);
      if (launcher.exitCode === null) launcher.kill('SIGKILL');
    }
    await peer.stop();
    await cleanup();
    if (process.env.OPSPLANE_TEST_VERBOSE) process.stderr.write(output);
  });

  it('upgrades 1.0.0 → 2.0.0: current switched, the new version confirmed, 1.0.0 kept', async () => {
    const v2 = await bundle('2.0.0');
    peer.artifacts.set(v2.ref.sha256, v2.bytes);
    const r = await peer.request({
      op: 'desired_state',
      desired: {
        policy: 'agents',
        revision: 1,
        packages: [],
        agent: { version: '2.0.0', artifact: v2.ref },
        health_timeout_ms: 20_000,
      },
    });
    assert.equal(r.ok, true, JSON.stringify(r));
    await waitFor(() => hellos().find((h) => h.agent.version === '2.0.0'), {
      timeoutMs: 30_000,
      what: `agent 2.0.0 connected\n${output}`,
    });
    const s = await waitFor(
      () => {
        const d = lastDistribution();
        return d?.agent?.version === '2.0.0' && d.agent.state === 'applied' ? d : undefined;
      },
      { timeoutMs: 20_000, what: 'upgrade confirmed' },
    );
    assert.equal(s.state, 'applied');
    assert.equal(s.agent?.rolled_back, false);
    assert.equal(await readlink(join(root, 'current')), 'versions/2.0.0');
    assert.equal(await readlink(join(root, 'previous')), 'versions/1.0.0');
    assert.ok(await stat(join(root, 'versions', '1.0.0', 'agent.mjs')));
    const trial = JSON.parse(
      await readFile(join(root, 'data', 'distribution', 'agent-upgrade.json'), 'utf8'),
    );
    assert.equal(trial.state, 'confirmed');
    assert.equal(trial.to, '2.0.0');
  });

  it('a bad 3.0.0 (exits at start) is rolled back to 2.0.0, which reports it', async () => {
    const v3 = await bundle('3.0.0', "console.error('bad agent'); process.exit(3);\n");
    peer.artifacts.set(v3.ref.sha256, v3.bytes);
    const hellosBefore = hellos().length;
    const r = await peer.request({
      op: 'desired_state',
      desired: {
        policy: 'agents',
        revision: 2,
        packages: [],
        agent: { version: '3.0.0', artifact: v3.ref },
        health_timeout_ms: 20_000,
      },
    });
    assert.equal(r.ok, true, JSON.stringify(r));
    const s = await waitFor(
      () => {
        const d = lastDistribution();
        return hellos().length > hellosBefore && d?.revision === 2 && d.agent?.state === 'failed'
          ? d
          : undefined;
      },
      { timeoutMs: 30_000, what: `rollback reported\n${output}` },
    );
    assert.equal(s.state, 'failed');
    assert.equal(s.agent?.rolled_back, true);
    assert.equal(s.agent?.version, '2.0.0');
    assert.equal(s.agent?.desired_version, '3.0.0');
    assert.equal(s.agent?.error?.code, 'agent_upgrade_rolled_back');
    assert.match(s.agent?.error?.message ?? '', /exited/);
    assert.equal(hellos().at(-1)?.agent.version, '2.0.0');
    assert.equal(await readlink(join(root, 'current')), 'versions/2.0.0');
    assert.ok(
      await stat(join(root, 'versions', '3.0.0', 'agent.mjs')),
      'the bad version is kept for inspection',
    );
    assert.ok(await stat(join(root, 'versions', '1.0.0', 'agent.mjs')));
    assert.match(output, /bad agent/);
  });
});
