/**
 * Distribution end to end with real processes: a server (PGlite), a real etcd, two areas with a
 * controller each and agents whose only route is their controller (they are never given the
 * server's address: the controller relays every artifact). The agents pin the server's
 * published artifact key, the controllers too.
 *
 * - A policy with a label selector (env=prod) converges on the 18 matching agents of 20 in both areas
 *   (one copy of the artifact per controller), and not on the others.
 * - A staged revision whose version fails its health check, rolled out in waves of 2 with
 *   max_failures 0, halts after the first wave; the touched agents are rolled back (a new
 *   revision with the previous spec) and every agent ends applied on it, running version 1.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { stringify } from 'yaml';
import {
  packageArchive,
  startEtcd,
  startFleet,
  waitFor,
  type EtcdHandle,
  type Fleet,
} from '@opsplane/test-support';
import type { Artifact, ArtifactKeysResponse, Policy, PolicyAgentList, PolicyRollout } from '@opsplane/api';
import { startTestServer, type Auth, type TestServer } from './helpers.js';

const TOKEN = 'distribution-e2e-controller-token';
const AREAS = ['area-1', 'area-2'];
/** Per area: prod agents (the policy's) and one dev agent (not). */
const PROD_PER_AREA = 9;

const SLEEPER = `console.log('up', process.pid); setInterval(() => {}, 1000); process.on('SIGTERM', () => process.exit(0));
setInterval(() => { try { process.kill(Number(process.env.FLEET_OWNER_PID), 0); } catch { process.exit(0); } }, 500);`;
const CRASHER = `setTimeout(() => { console.error('crashing'); process.exit(3); }, 100);`;

function appPackage(version: string, program: string): Buffer {
  return packageArchive({
    manifest: stringify({
      name: 'app',
      version,
      command: process.execPath,
      args: ['main.cjs'],
      stop_grace: '2s',
      health_check: { type: 'process', start_period: '300ms' },
      restart_policy: { policy: 'always', max_retries: 2, backoff_initial: '50ms', backoff_max: '200ms' },
    }),
    files: { 'main.cjs': program },
  });
}

describe('distribution end to end (2 areas, agents behind their controllers)', { timeout: 120_000 }, () => {
  let etcd: EtcdHandle;
  let t: TestServer;
  let fleet: Fleet;
  let op: Auth;
  const prod: string[] = [];
  const dev: string[] = [];

  const agentsOf = async (id: string) =>
    (await t.call<PolicyAgentList>('GET', `/api/v1/policies/${id}/agents`, { auth: op })).json;

  before(async () => {
    etcd = await startEtcd();
    t = await startTestServer('pglite', {
      etcd: etcd.endpoints,
      areas: Object.fromEntries(AREAS.map((a) => [a, { controller_token: TOKEN }])),
      server: {
        agents_refresh_interval: '1s',
        distribution: { interval: '1s', poll_interval: '500ms', repush_after: '5s' },
      },
    });
    op = t.users.operator.token;
    const keys = await t.call<ArtifactKeysResponse>('GET', '/api/v1/artifacts/keys', { auth: op });
    const pinned = keys.json.keys.map((k) => k.key);
    fleet = await startFleet({
      etcd,
      apiToken: TOKEN,
      areas: AREAS.map((name) => ({ name, controllers: 1, agents: 0 })),
      packages: [],
      controllerConfig: { artifacts: { keys: pinned } },
      agentConfig: { artifact_keys: pinned },
    });
    for (const area of AREAS) {
      for (let i = 0; i <= PROD_PER_AREA; i++) {
        const env = i < PROD_PER_AREA ? 'prod' : 'dev';
        const a = await fleet.addAgent({ area, labels: { env, role: 'web' }, waitOnline: false });
        (env === 'prod' ? prod : dev).push(a.code);
      }
    }
    await waitFor(
      async () => {
        const r = await t.call<{ agents: { agent_code: string }[] }>(
          'GET',
          '/api/v1/agents?status=online&refresh=true&pageSize=100',
          { auth: op },
        );
        return r.json.agents?.length === prod.length + dev.length ? true : undefined;
      },
      { timeoutMs: 60_000, what: 'every agent online in the server view' },
    );
  });

  after(async () => {
    await fleet?.stop();
    await t?.stop();
    await etcd?.stop();
  });

  it('converges a labelled policy on the matching agents of both areas, then halts and rolls back a failing version', async () => {
    const v1 = await t.call<Artifact>('POST', '/api/v1/artifacts?kind=package', {
      auth: op,
      body: appPackage('1.0.0', SLEEPER),
      contentType: 'application/gzip',
    });
    assert.equal(v1.status, 201, v1.text);
    const v2 = await t.call<Artifact>('POST', '/api/v1/artifacts?kind=package', {
      auth: op,
      body: appPackage('2.0.0', CRASHER),
      contentType: 'application/gzip',
    });
    assert.equal(v2.status, 201, v2.text);

    const created = await t.call<Policy>('POST', '/api/v1/policies', {
      auth: op,
      body: {
        name: 'prod-app',
        selector: 'env=prod,role=web',
        packages: [
          { name: 'app', version: '1.0.0', configs: [{ file_name: 'app.yaml', content: 'level: 1\n' }] },
        ],
        health_timeout_ms: 5_000,
      },
    });
    assert.equal(created.status, 201, created.text);
    const policy = created.json;

    const converged = await waitFor(
      async () => {
        const l = await agentsOf(policy.id);
        return l.items.length === prod.length && l.items.every((a) => a.state === 'applied') ? l : undefined;
      },
      { timeoutMs: 60_000, what: 'every prod agent applied revision 1' },
    );
    assert.deepEqual(converged.items.map((a) => a.agent_code).sort(), [...prod].sort());
    assert.deepEqual([...new Set(converged.items.map((a) => a.area))].sort(), AREAS);
    for (const a of converged.items) {
      assert.equal(a.target_revision, 1);
      assert.equal(a.distribution?.packages[0]?.version, '1.0.0', JSON.stringify(a.distribution));
      assert.equal(a.distribution?.packages[0]?.drift, false);
    }
    // The dev agents got nothing.
    const all = await t.call<{ agents: { agent_code: string; distribution?: { policy: string } }[] }>(
      'GET',
      '/api/v1/agents?pageSize=100',
      { auth: op },
    );
    for (const code of dev) {
      const a = all.json.agents.find((x) => x.agent_code === code);
      assert.ok(a, code);
      assert.notEqual(a.distribution?.policy, policy.id, `${code} must not follow the policy`);
    }

    // A failing version, staged, rolled out in waves of 2, no failure allowed.
    const staged = await t.call<Policy>('PATCH', `/api/v1/policies/${policy.id}`, {
      auth: op,
      body: { packages: [{ name: 'app', version: '2.0.0' }], staged: true },
    });
    assert.equal(staged.json.revision, 2);
    assert.equal(staged.json.applied_revision, 1);
    const started = await t.call<PolicyRollout>('POST', '/api/v1/policy-rollouts', {
      auth: op,
      body: { policy_id: policy.id, batch_size: 2, max_failures: 0, wave_timeout_ms: 30_000 },
    });
    assert.equal(started.status, 202, started.text);
    assert.equal(started.json.counts.total, prod.length);
    assert.equal(started.json.waves.length, Math.ceil(prod.length / 2));
    const halted = await waitFor(
      async () => {
        const r = await t.call<PolicyRollout>('GET', `/api/v1/policy-rollouts/${started.json.id}`, {
          auth: op,
        });
        return r.json.status === 'halted' ? r.json : undefined;
      },
      { timeoutMs: 60_000, what: 'the rollout halted' },
    );
    const agents = halted.agents ?? [];
    const touched = agents.filter((a) => a.wave === 1);
    assert.equal(touched.length, 2);
    for (const a of touched) assert.equal(a.status, 'rolled_back', JSON.stringify(a));
    for (const a of agents.filter((x) => x.wave > 1)) assert.equal(a.status, 'skipped', JSON.stringify(a));
    assert.match(halted.message, /rolled back to revision 1 \(as revision 3\)/);

    // Every prod agent ends on the rollback revision (revision 1's spec), running 1.0.0.
    const after = await t.call<Policy>('GET', `/api/v1/policies/${policy.id}`, { auth: op });
    assert.equal(after.json.applied_revision, 3);
    assert.equal(after.json.packages[0]?.version, '1.0.0');
    await waitFor(
      async () => {
        const l = await agentsOf(policy.id);
        return l.items.length === prod.length &&
          l.items.every((a) => a.state === 'applied' && a.distribution?.revision === 3)
          ? l
          : undefined;
      },
      { timeoutMs: 60_000, what: 'every prod agent applied the rollback revision' },
    ).then((l) => {
      for (const a of l.items) assert.equal(a.distribution?.packages[0]?.version, '1.0.0');
    });
  });
});
