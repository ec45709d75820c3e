/**
 * Agent self-upgrade with real processes: a real controller (artifact relay) and the launcher
 * (`agent.mjs --launch`) running the bundled agent 1.0.0 from `<root>/current`; a desired state
 * naming agent 2.0.0 (pushed through the controller, the bundle uploaded to its relay) makes it
 * fetch, verify and unpack the signed bundle, switch `current` and hand over; 2.0.0 confirms
 * once connected.
 * A bad 3.0.0 (its agent.mjs exits at start) is rolled back to 2.0.0 by the launcher, and 2.0.0
 * reports the rolled back upgrade. Every version dir stays on disk.
 */
import assert from 'node:assert/strict';
import { mkdir, readFile, readlink, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { writeAgentBundle } from '@opsplane/kit';
import { agentToken, type ArtifactRef, type DistributionStatus } from '@opsplane/models';
import {
  createArtifactSigner,
  installAgentBundle,
  signArtifact,
  startFleet,
  startLauncherAgent,
  tempDir,
  waitFor,
  type ArtifactSigner,
  type Fleet,
  type LauncherAgent,
} from '@opsplane/test-support';
import { packAgentBundle } from '../src/index.js';
import { listedAgent, pushDesired, uploadArtifact } from './relay-helpers.js';

const AREA = 'area-u';
const CODE = 'agent-upgrade';

describe('agent self-upgrade through the launcher', () => {
  let root: string;
  let cleanup: () => Promise<void>;
  let fleet: Fleet;
  let signer: ArtifactSigner;
  let launcher: LauncherAgent | undefined;
  const output = (): string => launcher?.output() ?? '';

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

  const listed = () => listedAgent(fleet, AREA, CODE);
  /** Waits until the controller lists the agent online at `version` and `pred` holds for its status. */
  const until = (
    version: string,
    pred: (d: DistributionStatus | undefined) => boolean,
    what: string,
  ): Promise<DistributionStatus | undefined> =>
    waitFor(
      async () => {
        const a = await listed();
        return a?.status === 'online' && a.version === version && pred(a.distribution)
          ? { d: a.distribution }
          : undefined;
      },
      { timeoutMs: 30_000, what: `${what}\n${output()}` },
    ).then((x) => x.d);

  before(async () => {
    ({ path: root, cleanup } = await tempDir('opsplane-upgrade-test-'));
    signer = createArtifactSigner();
    fleet = await startFleet({
      areas: [{ name: AREA, agents: 0 }],
      apiToken: 'self-upgrade-test-token',
      packages: [],
      controllerConfig: { artifacts: { dir: join(root, 'relay-cache'), keys: [signer.publicKey] } },
    });
    // The install the deploy engine leaves: versions/1.0.0 unpacked, current → versions/1.0.0.
    await installAgentBundle(root, (await bundle('1.0.0')).bytes, '1.0.0');
    launcher = await startLauncherAgent(root, {
      agent_code: CODE,
      area: AREA,
      token: agentToken(fleet.secret(AREA), AREA, CODE),
      controllers: fleet.controllersOf(AREA).map((c) => c.url),
      packages_dir: join(root, 'packages'),
      data_dir: join(root, 'data'),
      heartbeat_interval: '200ms',
      reconnect: { initial: '50ms', max: '300ms' },
      artifact_keys: [signer.publicKey],
    });
    await until('1.0.0', () => true, 'agent 1.0.0 connected');
  });

  after(async () => {
    await launcher?.stop();
    await fleet?.stop();
    await cleanup();
  });

  it('upgrades 1.0.0 → 2.0.0: current switched, the new version confirmed, 1.0.0 kept', async () => {
    const v2 = await bundle('2.0.0');
    await uploadArtifact(fleet, AREA, v2);
    await pushDesired(fleet, AREA, CODE, {
      policy: 'agents',
      revision: 1,
      packages: [],
      agent: { version: '2.0.0', artifact: v2.ref },
      health_timeout_ms: 20_000,
    });
    const s = await until('2.0.0', (d) => d?.agent?.state === 'applied', 'agent 2.0.0 up and confirmed');
    assert.ok(s);
    assert.equal(s.state, 'applied');
    assert.equal(s.agent?.version, '2.0.0');
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
    await uploadArtifact(fleet, AREA, v3);
    await pushDesired(fleet, AREA, CODE, {
      policy: 'agents',
      revision: 2,
      packages: [],
      agent: { version: '3.0.0', artifact: v3.ref },
      health_timeout_ms: 20_000,
    });
    const s = await until(
      '2.0.0',
      (d) => d?.revision === 2 && d.agent?.state === 'failed',
      'the rollback to 2.0.0 reported',
    );
    assert.ok(s);
    assert.equal(s.state, 'failed');
    assert.equal(s.agent?.rolled_back, true);
    assert.equal(s.agent?.version, '2.0.0');
    assert.equal(s.agent?.desired_version, '3.0.0');
    assert.equal(s.agent?.error?.code, 'agent_upgrade_rolled_back');
    assert.match(s.agent?.error?.message ?? '', /exited/);
    assert.equal((await listed())?.version, '2.0.0');
    assert.equal(await readlink(join(root, 'current')), 'versions/2.0.0');
    assert.ok(
      await stat(join(root, 'versions', '3.0.0', 'agent.mjs')),
      'the bad version is kept for inspection',
    );
    assert.ok(await stat(join(root, 'versions', '1.0.0', 'agent.mjs')));
    assert.match(output(), /bad agent/);
  });

  it('a 4.0.0 that hangs without ever connecting is rolled back at the deadline', async () => {
    const v4 = await bundle('4.0.0', "console.error('hung agent'); setInterval(() => {}, 1000);\n");
    await uploadArtifact(fleet, AREA, v4);
    await pushDesired(fleet, AREA, CODE, {
      policy: 'agents',
      revision: 3,
      packages: [],
      agent: { version: '4.0.0', artifact: v4.ref },
      health_timeout_ms: 3_000,
    });
    const s = await until(
      '2.0.0',
      (d) => d?.revision === 3 && d.agent?.state === 'failed',
      'the deadline rollback reported',
    );
    assert.ok(s);
    assert.equal(s.agent?.rolled_back, true);
    assert.equal(s.agent?.desired_version, '4.0.0');
    assert.match(s.agent?.error?.message ?? '', /did not confirm/);
    assert.match(output(), /hung agent/);
    assert.equal(await readlink(join(root, 'current')), 'versions/2.0.0');
  });
});
