/**
 * Convergence on desired states, with real package processes and a real HTTP/WebSocket
 * controller side (ControllerPeer serving signed artifacts with Range): install from an
 * artifact, upgrade by switching the link, a version failing its health gate rolled back,
 * untrusted/tampered/relabelled artifacts refused before anything is unpacked, an unmanaged
 * package left alone, drift reported and corrected, a download resumed after the controller
 * went away, an agent stopped mid-download resuming from disk, removal of an undesired package.
 */
import assert from 'node:assert/strict';
import { lstat, readFile, readlink, readdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  configHash,
  type ArtifactRef,
  type DesiredStateInput,
  type DistributionStatus,
  type PackageDistribution,
} from '@opsplane/models';
import {
  createArtifactSigner,
  packageArchive,
  signArtifact,
  waitFor,
  type ArtifactSigner,
} from '@opsplane/test-support';
import { stringify } from 'yaml';
import { createLogger } from '@opsplane/kit';
import {
  ArtifactFetcher,
  parseAgentConfig,
  startAgent,
  type AgentConfig,
  type RunningAgent,
} from '../src/index.js';
import { ControllerPeer, tokenFor } from './controller-peer.js';
import {
  alive,
  CRASHER,
  NODE,
  PidTracker,
  SLEEPER,
  workspace,
  writePackage,
  type Workspace,
} from './helpers.js';

const AREA = 'area-d';
const CODE = 'agent-dist';

/** A signed package artifact of `name` `version` running `program`; config/app.json shipped. */
function makePackage(
  signer: ArtifactSigner,
  name: string,
  version: string,
  program: string,
  opts: { padTo?: number; manifestVersion?: string } = {},
): { bytes: Buffer; ref: ArtifactRef } {
  const bytes = packageArchive({
    manifest: stringify({
      name,
      version: opts.manifestVersion ?? version,
      command: NODE,
      args: ['main.cjs'],
      stop_grace: '2s',
      health_check: { type: 'process', start_period: '300ms' },
      restart_policy: { policy: 'always', max_retries: 3, backoff_initial: '50ms', backoff_max: '200ms' },
    }),
    files: { 'main.cjs': program, 'config/app.json': `{"shipped":"${version}"}` },
    ...(opts.padTo !== undefined ? { padTo: opts.padTo } : {}),
  });
  return { bytes, ref: signArtifact(signer, bytes, { name, version }) };
}

describe('distribution: converging on a desired state', () => {
  let ws: Workspace;
  let peer: ControllerPeer;
  let config: AgentConfig;
  let agent: RunningAgent | undefined;
  let signer: ArtifactSigner;
  let revision = 0;
  const pids = new PidTracker();

  const state = (
    packages: {
      name: string;
      version: string;
      artifact: ArtifactRef;
      configs?: { file_name: string; content: string }[];
    }[],
    extra: Partial<DesiredStateInput> = {},
  ): DesiredStateInput => ({
    policy: 'pol-1',
    revision: ++revision,
    packages: packages.map((p) => ({
      ...p,
      configs: p.configs ?? [],
      config_hash: p.configs && p.configs.length > 0 ? configHash(p.configs) : '',
    })),
    health_timeout_ms: 5_000,
    ...extra,
  });

  async function push(desired: DesiredStateInput) {
    const r = await peer.request({ op: 'desired_state', desired });
    return r;
  }

  /** Waits for the agent to report this revision in a terminal state (from heartbeats). */
  async function settled(rev: number, timeoutMs = 20_000): Promise<DistributionStatus> {
    return waitFor(
      () => {
        const hb = peer.of('heartbeat').at(-1)?.distribution;
        return hb && hb.revision === rev && (hb.state === 'applied' || hb.state === 'failed')
          ? hb
          : undefined;
      },
      { timeoutMs, what: `revision ${rev} settled` },
    );
  }

  const pkgOf = (s: DistributionStatus, name: string): PackageDistribution => {
    const p = s.packages.find((x) => x.name === name);
    assert.ok(p, `status of ${name} in ${JSON.stringify(s)}`);
    return p;
  };

  const baseConfig = (): Record<string, unknown> => ({
    agent_code: CODE,
    area: AREA,
    token: tokenFor(AREA, CODE),
    controllers: [peer.url],
    packages_dir: ws.packagesDir,
    data_dir: ws.dataDir,
    heartbeat_interval: '200ms',
    reconnect: { initial: '50ms', max: '300ms' },
    artifact_keys: [signer.publicKey],
  });

  const linkTarget = (name: string) => readlink(join(ws.packagesDir, name));
  const versionDir = (name: string, v: string) => join(ws.dataDir, 'packages', name, 'versions', v);

  before(async () => {
    ws = await workspace();
    signer = createArtifactSigner();
    peer = await new ControllerPeer('ctrl-d', AREA).start();
    config = parseAgentConfig(baseConfig(), { env: {} });
    agent = await startAgent(config);
    await waitFor(() => agent?.link.connected || undefined, { what: 'agent connected' });
  });

  after(async () => {
    if (agent) {
      pids.noteSupervisor(agent.supervisor);
      await agent.stop({ stopPackages: true });
    }
    pids.killAll();
    await peer.stop();
    await ws.cleanup();
  });

  it('installs v1 from a signed artifact: versions/1.0.0, the link, running, applied', async () => {
    const v1 = makePackage(signer, 'app', '1.0.0', SLEEPER);
    peer.artifacts.set(v1.ref.sha256, v1.bytes);
    const configs = [{ file_name: 'app.json', content: '{"from":"policy"}' }];
    const d = state([{ name: 'app', version: '1.0.0', artifact: v1.ref, configs }]);
    const r = await push(d);
    assert.equal(r.ok, true, JSON.stringify(r));
    const answer = (r as { result: DistributionStatus }).result;
    assert.equal(answer.revision, d.revision);
    assert.equal(answer.state, 'applying');

    const s = await settled(d.revision);
    assert.equal(s.state, 'applied', JSON.stringify(s));
    const app = pkgOf(s, 'app');
    assert.equal(app.version, '1.0.0');
    assert.equal(app.rolled_back, false);
    assert.equal(app.config_hash, configHash(configs));
    assert.equal(app.drift, false);
    assert.equal(await linkTarget('app'), versionDir('app', '1.0.0'));
    const st = agent!.supervisor.statusOf('app');
    assert.equal(st?.is_running, true);
    assert.equal(st?.version, '1.0.0');
    pids.note(st);
    assert.equal(
      await readFile(join(versionDir('app', '1.0.0'), 'config', 'app.json'), 'utf8'),
      '{"from":"policy"}',
    );
    // The same revision again is idempotent: accepted, nothing redone.
    const again = await push({ ...d });
    assert.equal(again.ok, true);
    assert.equal(agent!.supervisor.statusOf('app')?.pid, st?.pid);
    // An older revision is refused.
    const stale = await push({ ...d, revision: d.revision - 1 });
    assert.equal(stale.ok, false);
    assert.equal((stale as { error: { code: string } }).error.code, 'stale_revision');
  });

  it('upgrades to v2 by switching the link; v1 stays on disk', async () => {
    const before = agent!.supervisor.statusOf('app');
    const v2 = makePackage(signer, 'app', '2.0.0', SLEEPER);
    peer.artifacts.set(v2.ref.sha256, v2.bytes);
    const d = state([{ name: 'app', version: '2.0.0', artifact: v2.ref }]);
    assert.equal((await push(d)).ok, true);
    const s = await settled(d.revision);
    assert.equal(s.state, 'applied', JSON.stringify(s));
    assert.equal(pkgOf(s, 'app').version, '2.0.0');
    assert.equal(await linkTarget('app'), versionDir('app', '2.0.0'));
    const now = pids.note(agent!.supervisor.statusOf('app'));
    assert.equal(now?.version, '2.0.0');
    assert.equal(now?.is_running, true);
    assert.notEqual(now?.pid, before?.pid);
    assert.equal(alive(before!.pid!), false, 'the v1 process was stopped');
    assert.ok(await stat(join(versionDir('app', '1.0.0'), 'package.yaml')));
  });

  it('rolls a v3 that fails its health gate back to v2 and says why', async () => {
    const v3 = makePackage(signer, 'app', '3.0.0', CRASHER);
    peer.artifacts.set(v3.ref.sha256, v3.bytes);
    const d = state([{ name: 'app', version: '3.0.0', artifact: v3.ref }]);
    assert.equal((await push(d)).ok, true);
    const s = await settled(d.revision);
    assert.equal(s.state, 'failed');
    const app = pkgOf(s, 'app');
    assert.equal(app.state, 'failed');
    assert.equal(app.rolled_back, true);
    assert.equal(app.version, '2.0.0');
    assert.equal(app.desired_version, '3.0.0');
    assert.equal(app.error?.code, 'health_check_failed', JSON.stringify(app));
    assert.equal(await linkTarget('app'), versionDir('app', '2.0.0'));
    const st = await waitFor(
      () => {
        const x = agent!.supervisor.statusOf('app');
        return x?.is_running && x.version === '2.0.0' ? x : undefined;
      },
      { what: 'v2 running again' },
    );
    pids.note(st);
    assert.ok(await stat(join(versionDir('app', '3.0.0'), 'package.yaml')), 'the failed version is kept');
  });

  it('refuses untrusted, tampered and relabelled artifacts before unpacking anything', async () => {
    const other = createArtifactSigner();
    const u = makePackage(other, 'app', '4.0.0', SLEEPER);
    peer.artifacts.set(u.ref.sha256, u.bytes);
    let d = state([{ name: 'app', version: '4.0.0', artifact: u.ref }]);
    await push(d);
    let s = await settled(d.revision);
    assert.equal(pkgOf(s, 'app').error?.code, 'artifact_untrusted_key');

    // Bytes changed in transit (the controller serves other bytes under the signed sha256).
    const t = makePackage(signer, 'app', '5.0.0', SLEEPER);
    const tampered = Buffer.from(t.bytes);
    tampered[tampered.length - 10] = (tampered[tampered.length - 10] ?? 0) ^ 0xff;
    peer.artifacts.set(t.ref.sha256, tampered);
    d = state([{ name: 'app', version: '5.0.0', artifact: t.ref }]);
    await push(d);
    s = await settled(d.revision);
    assert.equal(s.state, 'failed');
    assert.equal(pkgOf(s, 'app').error?.code, 'artifact_hash_mismatch', JSON.stringify(s));
    assert.equal(pkgOf(s, 'app').version, '2.0.0');
    assert.equal(await stat(versionDir('app', '5.0.0')).catch(() => undefined), undefined);
    assert.equal(
      await stat(join(ws.dataDir, 'downloads', `${t.ref.sha256}.part`)).catch(() => undefined),
      undefined,
    );

    // A signed 2.0.0 relabelled 6.0.0 (metadata changed, signature kept).
    const v2 = makePackage(signer, 'app', '6.0.0', SLEEPER, { manifestVersion: '6.0.0' });
    const relabelled = {
      ...signArtifact(signer, v2.bytes, { name: 'app', version: '2.0.0' }),
      version: '6.0.0',
    };
    peer.artifacts.set(v2.ref.sha256, v2.bytes);
    const getsBefore = peer.artifactGets.length;
    d = state([{ name: 'app', version: '6.0.0', artifact: relabelled }]);
    await push(d);
    s = await settled(d.revision);
    assert.equal(pkgOf(s, 'app').error?.code, 'artifact_bad_signature');
    assert.equal(peer.artifactGets.length, getsBefore, 'nothing fetched for a bad signature');
    assert.equal(await stat(versionDir('app', '6.0.0')).catch(() => undefined), undefined);
    assert.equal(await linkTarget('app'), versionDir('app', '2.0.0'));
    assert.equal(agent!.supervisor.statusOf('app')?.version, '2.0.0');
  });

  it('without artifact_keys every artifact is refused; without the launcher no self-upgrade', async () => {
    assert.deepEqual(
      parseAgentConfig({ ...baseConfig(), artifact_keys: undefined }, { env: {} }).artifactKeys,
      [],
    );
    assert.throws(
      () => parseAgentConfig({ ...baseConfig(), artifact_keys: ['rsa:abc'] }, { env: {} }),
      /artifact_keys/,
    );
    const v2 = makePackage(signer, 'app', '2.0.0', SLEEPER);
    const fetcher = new ArtifactFetcher({
      dataDir: ws.dataDir,
      trustedKeys: [],
      logger: createLogger('test'),
      source: { controllerUrl: () => peer.url, headers: () => ({}), tls: () => undefined },
    });
    await assert.rejects(fetcher.fetch(v2.ref, new AbortController().signal), {
      code: 'artifact_untrusted_key',
    });

    // This agent runs in-process, not under the launcher: an agent upgrade is refused, saying why.
    const bundleRef = signArtifact(signer, Buffer.from('not fetched'), {
      kind: 'agent',
      name: 'opsplane-agent',
      version: '9.9.9',
    });
    const d = state([{ name: 'app', version: '2.0.0', artifact: v2.ref }], {
      agent: { version: '9.9.9', artifact: bundleRef },
    });
    await push(d);
    const s = await settled(d.revision);
    assert.equal(s.state, 'failed');
    assert.equal(s.agent?.state, 'failed');
    assert.equal(s.agent?.error?.code, 'agent_upgrade_unsupported');
    assert.equal(pkgOf(s, 'app').state, 'applied');
  });

  it('leaves an operator-installed package of the same name alone (package_unmanaged)', async () => {
    await writePackage(ws, 'local', SLEEPER);
    const l = makePackage(signer, 'local', '9.0.0', SLEEPER);
    peer.artifacts.set(l.ref.sha256, l.bytes);
    const v2 = makePackage(signer, 'app', '2.0.0', SLEEPER);
    const d = state([
      { name: 'app', version: '2.0.0', artifact: v2.ref },
      { name: 'local', version: '9.0.0', artifact: l.ref },
    ]);
    await push(d);
    const s = await settled(d.revision);
    assert.equal(pkgOf(s, 'local').error?.code, 'package_unmanaged');
    assert.equal(pkgOf(s, 'app').state, 'applied');
    assert.equal((await lstat(join(ws.packagesDir, 'local'))).isDirectory(), true);
    assert.equal(await stat(versionDir('local', '9.0.0')).catch(() => undefined), undefined);
  });

  it('reports drift and, when the policy says so, corrects it (journaled)', async () => {
    const v2 = makePackage(signer, 'app', '2.0.0', SLEEPER);
    const configs = [{ file_name: 'app.json', content: '{"policy":2}' }];
    let d = state([{ name: 'app', version: '2.0.0', artifact: v2.ref, configs }]);
    await push(d);
    let s = await settled(d.revision);
    assert.equal(pkgOf(s, 'app').config_hash, configHash(configs), 'a policy config change is applied');
    const file = join(versionDir('app', '2.0.0'), 'config', 'app.json');
    assert.equal(await readFile(file, 'utf8'), '{"policy":2}');

    await writeFile(file, '{"edited":"by hand"}');
    s = await waitFor(
      () => {
        const hb = peer.of('heartbeat').at(-1)?.distribution;
        return hb && pkgOf(hb, 'app').drift ? hb : undefined;
      },
      { what: 'drift reported' },
    );
    assert.notEqual(pkgOf(s, 'app').config_hash, configHash(configs));
    assert.equal(await readFile(file, 'utf8'), '{"edited":"by hand"}', 'not corrected without correct_drift');

    d = state([{ name: 'app', version: '2.0.0', artifact: v2.ref, configs }], { correct_drift: true });
    await push(d);
    await waitFor(async () => ((await readFile(file, 'utf8')) === '{"policy":2}' ? true : undefined), {
      what: 'drift corrected',
    });
    s = await waitFor(
      () => {
        const hb = peer.of('heartbeat').at(-1)?.distribution;
        return hb && hb.revision === d.revision && !pkgOf(hb, 'app').drift && hb.state === 'applied'
          ? hb
          : undefined;
      },
      { what: 'no drift reported' },
    );
    assert.equal(pkgOf(s, 'app').config_hash, configHash(configs));
    // Journaled like any config update: the agent's operation journal holds it.
    const drift = /"operation_id":"drift-[^"]+","package":"app","action":"configs","state":"done"/;
    await waitFor(
      async () =>
        drift.test(await readFile(join(ws.dataDir, 'operations.jsonl'), 'utf8')) ? true : undefined,
      { what: 'the drift correction in the journal' },
    );
  });

  it('resumes a download with Range after the controller went away mid-download', async () => {
    const big = makePackage(signer, 'big', '1.0.0', SLEEPER, { padTo: 3 * 1024 * 1024 });
    peer.artifacts.set(big.ref.sha256, big.bytes);
    peer.artifactRate = 64 * 1024; // ~1.3 MB/s: the cut comes mid-download
    const v2 = makePackage(signer, 'app', '2.0.0', SLEEPER);
    const d = state([
      { name: 'app', version: '2.0.0', artifact: v2.ref },
      { name: 'big', version: '1.0.0', artifact: big.ref },
    ]);
    await push(d);
    const part = join(ws.dataDir, 'downloads', `${big.ref.sha256}.part`);
    await waitFor(async () => ((await stat(part).catch(() => undefined))?.size ?? 0) > 300_000 || undefined, {
      what: 'part of the download',
    });
    // The controller goes away (every connection cut) and comes back on the same port.
    const port = Number(new URL(peer.url).port);
    const artifacts = [...peer.artifacts];
    await peer.stop();
    const had = (await stat(part)).size;
    assert.ok(had > 0 && had < big.bytes.length, `partial: ${had}`);
    peer = await new ControllerPeer('ctrl-d', AREA).start(port);
    for (const [k, v] of artifacts) peer.artifacts.set(k, v);
    const s = await settled(d.revision, 30_000);
    assert.equal(pkgOf(s, 'big').state, 'applied', JSON.stringify(s));
    const gets = peer.artifactGets.filter((g) => g.sha256 === big.ref.sha256);
    assert.ok(gets.length >= 1);
    assert.match(gets[0]?.range ?? '', /^bytes=\d+-$/);
    const from = Number(/\d+/.exec(gets[0]?.range ?? '')?.[0]);
    assert.ok(from >= had, `resumed at ${from}, had ${had}`);
    const served = gets.reduce((n, g) => n + g.bytes, 0);
    assert.ok(
      served < big.bytes.length,
      `after the restart only the rest was served (${served} of ${big.bytes.length})`,
    );
    pids.note(agent!.supervisor.statusOf('big'));
  });

  it('a newer desired state supersedes one still downloading (its download is cut short)', async () => {
    const slow = makePackage(signer, 'later', '1.0.0', SLEEPER, { padTo: 3 * 1024 * 1024 });
    peer.artifacts.set(slow.ref.sha256, slow.bytes);
    peer.artifactRate = 32 * 1024;
    const v2 = makePackage(signer, 'app', '2.0.0', SLEEPER);
    const bigPid = agent!.supervisor.statusOf('big')?.pid;
    assert.ok(bigPid, 'big runs (installed by the previous test)');
    const first = state([
      { name: 'app', version: '2.0.0', artifact: v2.ref },
      { name: 'later', version: '1.0.0', artifact: slow.ref },
    ]);
    await push(first);
    const part = join(ws.dataDir, 'downloads', `${slow.ref.sha256}.part`);
    await waitFor(async () => ((await stat(part).catch(() => undefined))?.size ?? 0) > 50_000 || undefined, {
      what: 'the download under way',
    });
    const second = state([{ name: 'app', version: '2.0.0', artifact: v2.ref }]);
    await push(second);
    const s = await settled(second.revision, 10_000);
    assert.equal(s.state, 'applied');
    assert.deepEqual(
      s.packages.map((p) => p.name),
      ['app'],
    );
    assert.equal(await lstat(join(ws.packagesDir, 'later')).catch(() => undefined), undefined);
    // `big`, dropped by both: stopped and unlinked; its version dir stays.
    assert.equal(await lstat(join(ws.packagesDir, 'big')).catch(() => undefined), undefined);
    assert.equal(agent!.supervisor.statusOf('big'), undefined);
    assert.equal(alive(bigPid), false);
    assert.ok((await readdir(join(ws.dataDir, 'packages', 'big', 'versions'))).includes('1.0.0'));
    const size = (await stat(part)).size;
    assert.ok(size < slow.bytes.length, 'not downloaded to the end');
    await new Promise((r) => setTimeout(r, 500));
    assert.equal((await stat(part)).size, size, 'the download stopped');
    peer.artifactRate = undefined;
  });

  it('an agent stopped mid-download resumes from disk without the platform pushing again', async () => {
    const slow = makePackage(signer, 'slow', '1.0.0', SLEEPER, { padTo: 2 * 1024 * 1024 });
    peer.artifacts.set(slow.ref.sha256, slow.bytes);
    peer.artifactRate = 64 * 1024;
    const v2 = makePackage(signer, 'app', '2.0.0', SLEEPER);
    const d = state([
      { name: 'app', version: '2.0.0', artifact: v2.ref },
      { name: 'slow', version: '1.0.0', artifact: slow.ref },
    ]);
    await push(d);
    const part = join(ws.dataDir, 'downloads', `${slow.ref.sha256}.part`);
    await waitFor(async () => ((await stat(part).catch(() => undefined))?.size ?? 0) > 200_000 || undefined, {
      what: 'part of the download',
    });
    pids.noteSupervisor(agent!.supervisor);
    await agent!.stop();
    const requestsBefore = peer.of('response').length;
    agent = await startAgent(config);
    const s = await settled(d.revision, 30_000);
    assert.equal(pkgOf(s, 'slow').state, 'applied', JSON.stringify(s));
    assert.equal(peer.of('response').length, requestsBefore, 'no new desired_state was needed');
    assert.equal(agent.supervisor.statusOf('slow')?.is_running, true);
    pids.note(agent.supervisor.statusOf('slow'));
  });
});
