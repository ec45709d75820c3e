/**
 * Distribution end to end with real processes: a real controller (artifact relay with a cache
 * and a bandwidth limit) and a real agent process. The test plays the platform over the
 * controller's API: it uploads signed artifacts (PUT /artifacts/{sha256}) and hands the agent
 * its desired state (POST /agents/desired-state); the agent downloads through the controller
 * only. Covered: install, a failing version rolled back, a relabelled artifact refused, a
 * controller killed (-9) mid-download (the agent keeps its .part and resumes with Range), an
 * agent killed (-9) mid-download resuming from disk without a new push.
 */
import assert from 'node:assert/strict';
import { readFile, readlink, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  type ArtifactRef,
  type DesiredStateInput,
  type DistributionStatus,
  type PackageDistribution,
} from '@opsplane/models';
import {
  createArtifactSigner,
  freePort,
  packageArchive,
  signArtifact,
  startFleet,
  tempDir,
  waitFor,
  type ArtifactSigner,
  type Fleet,
  type FleetAgent,
} from '@opsplane/test-support';
import { initCa } from '@opsplane/pki';
import { stringify } from 'yaml';
import { CRASHER, NODE, SLEEPER as PLAIN_SLEEPER } from './helpers.js';
import { controllerMetric, listedAgent, pushDesired, uploadArtifact } from './relay-helpers.js';

/** Runs until SIGTERM, or until the test process (FLEET_OWNER_PID) is gone. */
const SLEEPER = `${PLAIN_SLEEPER}
setInterval(() => { try { process.kill(Number(process.env.FLEET_OWNER_PID), 0); } catch { process.exit(0); } }, 500);`;

const AREA = 'area-1';
const TOKEN = 'relay-agent-test-token';

function makePackage(
  signer: ArtifactSigner,
  name: string,
  version: string,
  program: string,
  padTo?: number,
  healthCheck: Record<string, unknown> = { type: 'process', start_period: '300ms' },
): { bytes: Buffer; ref: ArtifactRef } {
  const bytes = packageArchive({
    manifest: stringify({
      name,
      version,
      command: NODE,
      args: ['main.cjs'],
      stop_grace: '2s',
      health_check: healthCheck,
      restart_policy: { policy: 'always', max_retries: 3, backoff_initial: '50ms', backoff_max: '200ms' },
    }),
    files: { 'main.cjs': program },
    ...(padTo !== undefined ? { padTo } : {}),
  });
  return { bytes, ref: signArtifact(signer, bytes, { name, version }) };
}

describe('distribution through a real controller relay', { timeout: 120_000 }, () => {
  let fleet: Fleet;
  let agent: FleetAgent;
  let signer: ArtifactSigner;
  let cache: { path: string; cleanup: () => Promise<void> };
  let revision = 0;

  const ctrl = () => fleet.controllersOf(AREA)[0]!;

  const upload = (a: { bytes: Buffer; ref: ArtifactRef }) => uploadArtifact(fleet, AREA, a);
  const metric = (name: string, labels = '') => controllerMetric(fleet, AREA, name, labels);
  const reported = async () => (await listedAgent(fleet, AREA, agent.code))?.distribution;

  async function push(
    packages: { name: string; version: string; artifact: ArtifactRef }[],
  ): Promise<DesiredStateInput> {
    const desired: DesiredStateInput = {
      policy: 'relay-pol',
      revision: ++revision,
      packages: packages.map((p) => ({ ...p, configs: [], config_hash: '' })),
      health_timeout_ms: 5_000,
    };
    await pushDesired(fleet, AREA, agent.code, desired);
    return desired;
  }

  async function settled(rev: number, timeoutMs = 30_000): Promise<DistributionStatus> {
    return waitFor(
      async () => {
        const d = await reported();
        return d && d.revision === rev && (d.state === 'applied' || d.state === 'failed') ? d : undefined;
      },
      { timeoutMs, what: `revision ${rev} settled` },
    );
  }

  const pkgOf = (s: DistributionStatus, name: string): PackageDistribution => {
    const p = s.packages.find((x) => x.name === name);
    assert.ok(p, JSON.stringify(s));
    return p;
  };

  before(async () => {
    signer = createArtifactSigner();
    cache = await tempDir('opsplane-relay-cache-');
    fleet = await startFleet({
      apiToken: TOKEN,
      packages: [],
      controllerConfig: {
        // ~1 MB/s for all downloads: a 3 MB artifact takes long enough to be cut in the middle.
        artifacts: { dir: cache.path, keys: [signer.publicKey], bandwidth: '1MiB' },
      },
      agentConfig: { artifact_keys: [signer.publicKey] },
    });
    agent = fleet.agentsOf(AREA)[0]!;
  });

  after(async () => {
    // The packages the agent installed are its children, not the fleet's: stop them by pid.
    const state = await readFile(join(agent.dataDir, 'state.json'), 'utf8').catch(() => '{}');
    const pids = Object.values(
      (JSON.parse(state) as { packages?: Record<string, { pid?: number }> }).packages ?? {},
    )
      .map((p) => p.pid)
      .filter((p): p is number => typeof p === 'number');
    await fleet?.stop();
    for (const pid of pids) {
      try {
        process.kill(-pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
    await cache?.cleanup();
  });

  it('installs a package from an artifact the controller relays; a failing version is rolled back', async () => {
    const v1 = makePackage(signer, 'svc', '1.0.0', SLEEPER);
    await upload(v1);
    let d = await push([{ name: 'svc', version: '1.0.0', artifact: v1.ref }]);
    let s = await settled(d.revision);
    assert.equal(s.state, 'applied', JSON.stringify(s));
    assert.equal(pkgOf(s, 'svc').version, '1.0.0');
    assert.equal(
      await readlink(join(agent.packagesDir, 'svc')),
      join(agent.dataDir, 'packages', 'svc', 'versions', '1.0.0'),
    );

    const bad = makePackage(signer, 'svc', '2.0.0', CRASHER);
    await upload(bad);
    d = await push([{ name: 'svc', version: '2.0.0', artifact: bad.ref }]);
    s = await settled(d.revision);
    assert.equal(s.state, 'failed');
    assert.equal(pkgOf(s, 'svc').rolled_back, true);
    assert.equal(pkgOf(s, 'svc').version, '1.0.0');
    assert.equal(pkgOf(s, 'svc').error?.code, 'health_check_failed');
    assert.equal(
      await readlink(join(agent.packagesDir, 'svc')),
      join(agent.dataDir, 'packages', 'svc', 'versions', '1.0.0'),
    );
  });

  it('refuses an artifact relabelled in the desired state (signature), fetching nothing', async () => {
    const v1 = makePackage(signer, 'svc', '1.0.0', SLEEPER);
    const before = await metric('opsplane_controller_artifact_downloads_total', '{outcome="hit"}');
    const d = await push([{ name: 'svc', version: '7.0.0', artifact: { ...v1.ref, version: '7.0.0' } }]);
    const s = await settled(d.revision);
    assert.equal(pkgOf(s, 'svc').error?.code, 'artifact_bad_signature');
    assert.equal(pkgOf(s, 'svc').version, '1.0.0');
    assert.equal(await metric('opsplane_controller_artifact_downloads_total', '{outcome="hit"}'), before);
    assert.equal(
      await stat(join(agent.dataDir, 'packages', 'svc', 'versions', '7.0.0')).catch(() => undefined),
      undefined,
    );
  });

  it('resumes a download after the controller is killed mid-download (the .part kept, Range used)', async () => {
    const big = makePackage(signer, 'big', '1.0.0', SLEEPER, 3 * 1024 * 1024);
    await upload(big);
    const v1 = makePackage(signer, 'svc', '1.0.0', SLEEPER);
    const d = await push([
      { name: 'svc', version: '1.0.0', artifact: v1.ref },
      { name: 'big', version: '1.0.0', artifact: big.ref },
    ]);
    const part = join(agent.dataDir, 'downloads', `${big.ref.sha256}.part`);
    await waitFor(async () => ((await stat(part).catch(() => undefined))?.size ?? 0) > 500_000 || undefined, {
      timeoutMs: 20_000,
      what: 'half a megabyte downloaded',
    });
    await ctrl().kill();
    const had = (await stat(part)).size;
    assert.ok(had < big.bytes.length, `partial: ${had}`);
    await ctrl().start();
    const s = await settled(d.revision, 40_000);
    assert.equal(pkgOf(s, 'big').state, 'applied', JSON.stringify(s));
    // The restarted controller (fresh counters) answered a Range request, with less than the whole.
    assert.ok((await metric('opsplane_controller_artifact_downloads_total', '{outcome="resumed"}')) >= 1);
    const served = await metric('opsplane_controller_artifact_bytes_served_total');
    assert.ok(
      served > 0 && served <= big.bytes.length - had,
      `served ${served} after the restart, had ${had}`,
    );
  });

  it('an agent killed mid-download resumes from disk without a new push', async () => {
    const slow = makePackage(signer, 'slow', '1.0.0', SLEEPER, 2 * 1024 * 1024);
    await upload(slow);
    const v1 = makePackage(signer, 'svc', '1.0.0', SLEEPER);
    const d = await push([
      { name: 'svc', version: '1.0.0', artifact: v1.ref },
      { name: 'slow', version: '1.0.0', artifact: slow.ref },
    ]);
    const part = join(agent.dataDir, 'downloads', `${slow.ref.sha256}.part`);
    await waitFor(async () => ((await stat(part).catch(() => undefined))?.size ?? 0) > 300_000 || undefined, {
      timeoutMs: 20_000,
      what: 'part of the download',
    });
    await agent.kill();
    const had = (await stat(part)).size;
    const resumedBefore = await metric('opsplane_controller_artifact_downloads_total', '{outcome="resumed"}');
    await agent.start();
    const s = await settled(d.revision, 40_000);
    assert.equal(pkgOf(s, 'slow').state, 'applied', JSON.stringify(s));
    assert.ok(had > 0);
    assert.ok(
      (await metric('opsplane_controller_artifact_downloads_total', '{outcome="resumed"}')) > resumedBefore,
      'the restarted agent resumed with Range',
    );
    // The 'big' package the desired state dropped is stopped and unlinked; its version stays.
    assert.equal(await stat(join(agent.packagesDir, 'big')).catch(() => undefined), undefined);
    assert.ok(await stat(join(agent.dataDir, 'packages', 'big', 'versions', '1.0.0', 'package.yaml')));
  });
  it('an agent killed during the health gate gates again after its restart and rolls back', async () => {
    // Up, but its health endpoint never answers: unhealthy about 2.5 s after start.
    const port = await freePort();
    const bad = makePackage(signer, 'svc', '3.0.0', SLEEPER, undefined, {
      type: 'tcp',
      port,
      start_period: '2s',
      interval: '200ms',
      timeout: '100ms',
      retries: 2,
    });
    await upload(bad);
    const slow = makePackage(signer, 'slow', '1.0.0', SLEEPER, 2 * 1024 * 1024);
    const d = await push([
      { name: 'svc', version: '3.0.0', artifact: bad.ref },
      { name: 'slow', version: '1.0.0', artifact: slow.ref },
    ]);
    const link = join(agent.packagesDir, 'svc');
    await waitFor(
      async () => ((await readlink(link).catch(() => '')).endsWith('/3.0.0') ? true : undefined),
      {
        timeoutMs: 20_000,
        what: 'switched to 3.0.0',
      },
    );
    await agent.kill(); // mid health gate: the switch is on disk, the verdict is not
    await agent.start();
    const s = await settled(d.revision, 30_000);
    const svc = pkgOf(s, 'svc');
    assert.equal(svc.state, 'failed', JSON.stringify(s));
    assert.equal(svc.rolled_back, true);
    assert.equal(svc.version, '1.0.0');
    assert.equal(svc.error?.code, 'health_check_failed');
    assert.equal(await readlink(link), join(agent.dataDir, 'packages', 'svc', 'versions', '1.0.0'));
  });
});

describe('distribution over HTTPS with client certificates (mutual TLS)', { timeout: 120_000 }, () => {
  let fleet: Fleet;
  let dir: { path: string; cleanup: () => Promise<void> };
  const signer = createArtifactSigner();

  before(async () => {
    dir = await tempDir('opsplane-relay-tls-');
    const caDir = join(dir.path, 'ca');
    await initCa(caDir);
    fleet = await startFleet({
      apiToken: TOKEN,
      packages: [],
      tls: { caDir },
      controllerConfig: { artifacts: { dir: join(dir.path, 'cache'), keys: [signer.publicKey] } },
      agentConfig: { artifact_keys: [signer.publicKey] },
    });
  });

  after(async () => {
    const agent = fleet?.agentsOf(AREA)[0];
    const state = agent ? await readFile(join(agent.dataDir, 'state.json'), 'utf8').catch(() => '{}') : '{}';
    await fleet?.stop();
    for (const p of Object.values(
      (JSON.parse(state) as { packages?: Record<string, { pid?: number }> }).packages ?? {},
    )) {
      try {
        if (p.pid) process.kill(-p.pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
    await dir?.cleanup();
  });

  it('downloads from the https controller with the agent certificate and installs', async () => {
    const agent = fleet.agentsOf(AREA)[0]!;
    assert.match(fleet.controllersOf(AREA)[0]!.url, /^https:/);
    const v1 = makePackage(signer, 'svc', '1.0.0', SLEEPER);
    await uploadArtifact(fleet, AREA, v1);
    await pushDesired(fleet, AREA, agent.code, {
      policy: 'tls-pol',
      revision: 1,
      packages: [{ name: 'svc', version: '1.0.0', artifact: v1.ref, configs: [], config_hash: '' }],
      health_timeout_ms: 5_000,
    });
    const s = await waitFor(
      async () => {
        const d = (await listedAgent(fleet, AREA, agent.code))?.distribution;
        return d?.state === 'applied' || d?.state === 'failed' ? d : undefined;
      },
      { timeoutMs: 30_000, what: 'converged over TLS' },
    );
    assert.equal(s.state, 'applied', JSON.stringify(s));
    assert.equal(
      await readlink(join(agent.packagesDir, 'svc')),
      join(agent.dataDir, 'packages', 'svc', 'versions', '1.0.0'),
    );
  });
});
