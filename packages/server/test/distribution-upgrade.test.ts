/**
 * Agent self-upgrade driven through the server, with real processes: a server (PGlite), a real
 * etcd, a real controller and one agent installed from an agent bundle (`versions/1.0.0`,
 * `current` → it) running under the launcher, pinning the server's artifact key.
 *
 * - Agent bundle 2.0.0 uploaded to the server and a policy naming agent_version 2.0.0 for the
 *   agent's area: the agent fetches it through its controller, switches `current` and hands
 *   over; the server lists it at 2.0.0 with the upgrade applied, versions/1.0.0 kept.
 * - A bad 3.0.0 (its agent.mjs exits at start) set on the policy: the launcher rolls back to
 *   2.0.0, and the policy's per-agent status shows the failed, rolled back upgrade.
 */
import assert from 'node:assert/strict';
import { readFile, readlink, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { packAgentBundle } from '@opsplane/agent';
import { writeAgentBundle } from '@opsplane/kit';
import { agentToken, type DistributionStatus } from '@opsplane/models';
import {
  installAgentBundle,
  startEtcd,
  startFleet,
  startLauncherAgent,
  tempDir,
  waitFor,
  type EtcdHandle,
  type Fleet,
  type LauncherAgent,
} from '@opsplane/test-support';
import type { Artifact, ArtifactKeysResponse, Policy, PolicyAgent, PolicyAgentList } from '@opsplane/api';
import { startTestServer, type Auth, type TestServer } from './helpers.js';

const TOKEN = 'distribution-upgrade-controller-token';
const AREA = 'area-up';
const CODE = 'agent-self-upgrade';

interface ListedAgent {
  agent_code: string;
  status: string;
  version: string;
  distribution?: DistributionStatus;
}

describe('agent self-upgrade driven through the server', { timeout: 90_000 }, () => {
  let etcd: EtcdHandle;
  let t: TestServer;
  let fleet: Fleet;
  let op: Auth;
  let root: string;
  let cleanup: (() => Promise<void>) | undefined;
  let agent: LauncherAgent | undefined;
  let policy: Policy;

  /** An agent bundle: the built agent packed as `version`, or one whose agent.mjs is given. */
  async function bundle(version: string, agentMjs?: string): Promise<Buffer> {
    const outDir = join(root, 'bundles');
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
    return readFile(path);
  }

  async function upload(bytes: Buffer): Promise<Artifact> {
    const r = await t.call<Artifact>('POST', '/api/v1/artifacts?kind=agent', {
      auth: op,
      body: bytes,
      contentType: 'application/gzip',
    });
    assert.equal(r.status, 201, r.text);
    return r.json;
  }

  /** The agent as the server lists it (fresh from the controllers). */
  async function listed(): Promise<ListedAgent | undefined> {
    const r = await t.call<{ agents: ListedAgent[] }>('GET', '/api/v1/agents?refresh=true&pageSize=100', {
      auth: op,
    });
    return r.json.agents?.find((a) => a.agent_code === CODE);
  }

  /** The agent's row in the policy's per-agent status. */
  async function policyAgent(): Promise<PolicyAgent | undefined> {
    const r = await t.call<PolicyAgentList>('GET', `/api/v1/policies/${policy.id}/agents`, { auth: op });
    return r.json.items.find((a) => a.agent_code === CODE);
  }

  const out = () => agent?.output() ?? '';

  before(async () => {
    ({ path: root, cleanup } = await tempDir('opsplane-server-upgrade-test-'));
    etcd = await startEtcd();
    t = await startTestServer('pglite', {
      etcd: etcd.endpoints,
      areas: { [AREA]: { controller_token: TOKEN } },
      server: {
        agents_refresh_interval: '1s',
        distribution: { interval: '1s', poll_interval: '500ms', repush_after: '5s' },
      },
    });
    op = t.users.operator.token;
    const keys = await t.call<ArtifactKeysResponse>('GET', '/api/v1/artifacts/keys', { auth: op });
    const pinned = keys.json.keys.map((k) => k.key);
    assert.ok(pinned.length > 0, keys.text);
    fleet = await startFleet({
      etcd,
      apiToken: TOKEN,
      areas: [{ name: AREA, controllers: 1, agents: 0 }],
      packages: [],
      controllerConfig: { artifacts: { keys: pinned } },
    });
    // The install the deploy engine leaves, then the launcher on it.
    await installAgentBundle(root, await bundle('1.0.0'), '1.0.0');
    agent = await startLauncherAgent(root, {
      agent_code: CODE,
      area: AREA,
      token: agentToken(fleet.secret(AREA), AREA, CODE),
      controllers: fleet.controllersOf(AREA).map((c) => c.url),
      packages_dir: join(root, 'packages'),
      data_dir: join(root, 'data'),
      heartbeat_interval: '200ms',
      reconnect: { initial: '50ms', max: '300ms' },
      artifact_keys: pinned,
    });
    await waitFor(
      async () => {
        const a = await listed();
        return a?.status === 'online' && a.version === '1.0.0' ? a : undefined;
      },
      { timeoutMs: 30_000, what: `agent 1.0.0 online in the server view\n${out()}` },
    );
  });

  after(async () => {
    await agent?.stop();
    await fleet?.stop();
    await t?.stop();
    await etcd?.stop();
    await cleanup?.();
  });

  it('upgrades 1.0.0 → 2.0.0 through a policy: current switched, applied, 1.0.0 kept', async () => {
    const v2 = await upload(await bundle('2.0.0'));
    assert.equal(v2.kind, 'agent');
    assert.equal(v2.version, '2.0.0');
    const created = await t.call<Policy>('POST', '/api/v1/policies', {
      auth: op,
      body: { name: 'agents', areas: [AREA], agent_version: '2.0.0', health_timeout_ms: 20_000 },
    });
    assert.equal(created.status, 201, created.text);
    policy = created.json;
    assert.equal(policy.applied_revision, 1);

    const a = await waitFor(
      async () => {
        const x = await listed();
        return x?.status === 'online' && x.version === '2.0.0' && x.distribution?.agent?.state === 'applied'
          ? x
          : undefined;
      },
      { timeoutMs: 30_000, what: `agent 2.0.0 up and confirmed in the server view\n${out()}` },
    );
    assert.equal(a.distribution?.policy, policy.id);
    assert.equal(a.distribution?.agent?.version, '2.0.0');
    assert.equal(a.distribution?.agent?.rolled_back, false);
    assert.equal(await readlink(join(root, 'current')), 'versions/2.0.0');
    assert.ok(await stat(join(root, 'versions', '1.0.0', 'agent.mjs')), 'the previous version is kept');

    const p = await waitFor(
      async () => {
        const x = await policyAgent();
        return x?.state === 'applied' && x.distribution?.revision === 1 ? x : undefined;
      },
      { timeoutMs: 15_000, what: 'the policy lists the agent applied' },
    );
    assert.equal(p.area, AREA);
    assert.equal(p.distribution?.agent?.version, '2.0.0');
  });

  it('a bad 3.0.0 (exits at start) set on the policy is rolled back to 2.0.0 and reported', async () => {
    await upload(await bundle('3.0.0', "console.error('bad agent'); process.exit(3);\n"));
    const updated = await t.call<Policy>('PATCH', `/api/v1/policies/${policy.id}`, {
      auth: op,
      body: { agent_version: '3.0.0' },
    });
    assert.equal(updated.status, 200, updated.text);
    assert.equal(updated.json.applied_revision, 2);

    const p = await waitFor(
      async () => {
        const x = await policyAgent();
        return x?.state === 'failed' && x.distribution?.revision === 2 ? x : undefined;
      },
      { timeoutMs: 40_000, what: `the policy lists the rolled back upgrade\n${out()}` },
    );
    const up = p.distribution?.agent;
    assert.equal(up?.state, 'failed');
    assert.equal(up?.rolled_back, true);
    assert.equal(up?.version, '2.0.0');
    assert.equal(up?.desired_version, '3.0.0');
    assert.equal(up?.error?.code, 'agent_upgrade_rolled_back');
    assert.match(up?.error?.message ?? '', /exited/);

    const a = await listed();
    assert.equal(a?.status, 'online');
    assert.equal(a?.version, '2.0.0');
    assert.equal(await readlink(join(root, 'current')), 'versions/2.0.0');
    assert.ok(await stat(join(root, 'versions', '1.0.0', 'agent.mjs')));
    assert.match(out(), /bad agent/);
  });
});
