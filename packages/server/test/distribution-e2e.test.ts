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
 * - A rollout in waves is paused (no next wave while paused), resumed and completes (its live
 *   events seen); another is cancelled after its first wave and those agents are rolled back.
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
    // One copy per controller: each received exactly the artifact's bytes from the server, while
    // its agents downloaded from it.
    for (const area of AREAS) {
      const c = fleet.controllersOf(area)[0]!;
      const res = await fleet.fetch(`${c.url}/metrics`, { headers: fleet.apiHeaders(area) });
      const text = await res.text();
      const metric = (name: string) =>
        Number(
          text
            .split('\n')
            .find((l) => l.startsWith(`${name} `))
            ?.split(' ')[1] ?? 0,
        );
      assert.equal(metric('opsplane_controller_artifact_bytes_received_total'), v1.json.size, area);
      assert.ok(
        metric('opsplane_controller_artifact_bytes_served_total') >= PROD_PER_AREA * v1.json.size,
        area,
      );
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

  it('pauses, resumes and cancels a rollout of a healthy revision, following it live', async () => {
    const list = await t.call<{ items: Policy[] }>('GET', '/api/v1/policies', { auth: op });
    const policy = list.json.items.find((p) => p.name === 'prod-app');
    assert.ok(policy);
    const base = policy.revision;
    const stage = async (level: number) => {
      const r = await t.call<Policy>('PATCH', `/api/v1/policies/${policy.id}`, {
        auth: op,
        body: {
          packages: [
            {
              name: 'app',
              version: '1.0.0',
              configs: [{ file_name: 'app.yaml', content: `level: ${level}\n` }],
            },
          ],
          staged: true,
        },
      });
      assert.equal(r.status, 200, r.text);
      return r.json.revision;
    };
    const get = async (id: string) =>
      (await t.call<PolicyRollout>('GET', `/api/v1/policy-rollouts/${id}`, { auth: op })).json;

    // Waves of 6 with a long pause: pause while waiting, resume, and it completes.
    const rev = await stage(2);
    assert.equal(rev, base + 1);
    const r = await t.call<PolicyRollout>('POST', '/api/v1/policy-rollouts', {
      auth: op,
      body: { policy_id: policy.id, batch_size: 6, pause_ms: 2_000, wave_timeout_ms: 30_000 },
    });
    assert.equal(r.status, 202, r.text);
    const events = fetch(`${t.url}/api/v1/policy-rollouts/${r.json.id}/events`, {
      headers: { authorization: `Bearer ${op.token}` },
    }).then((res) => res.text());
    await waitFor(async () => ((await get(r.json.id)).counts.applied >= 6 ? true : undefined), {
      timeoutMs: 30_000,
      what: 'wave 1 applied',
    });
    const paused = await t.call<PolicyRollout>('POST', `/api/v1/policy-rollouts/${r.json.id}/pause`, {
      auth: op,
    });
    assert.equal(paused.status, 200, paused.text);
    assert.equal(paused.json.status, 'paused');
    const waveAtPause = paused.json.current_wave;
    // Longer than the pause between waves: no next wave starts while paused.
    await new Promise((res) => setTimeout(res, 3_000));
    const still = await get(r.json.id);
    assert.equal(still.status, 'paused');
    assert.equal(still.current_wave, waveAtPause);
    assert.equal(
      (await t.call('POST', `/api/v1/policy-rollouts/${r.json.id}/pause`, { auth: op })).status,
      409,
    );
    const resumed = await t.call<PolicyRollout>('POST', `/api/v1/policy-rollouts/${r.json.id}/resume`, {
      auth: op,
    });
    assert.equal(resumed.json.status, 'running');
    const done = await waitFor(
      async () => {
        const x = await get(r.json.id);
        return x.status === 'succeeded' ? x : undefined;
      },
      { timeoutMs: 60_000, what: 'the rollout succeeded' },
    );
    assert.equal(done.counts.applied, prod.length);
    assert.equal(
      (await t.call<Policy>('GET', `/api/v1/policies/${policy.id}`, { auth: op })).json.applied_revision,
      rev,
    );
    const text = await events;
    assert.match(text, /event: agent\n/);
    assert.match(text, /"status":"paused"/);
    assert.match(text, /event: end\n[^\n]*"status":"succeeded"/);

    // Cancel after the first wave: its agents go back to the previous spec as a new revision.
    const rev2 = await stage(3);
    const c = await t.call<PolicyRollout>('POST', '/api/v1/policy-rollouts', {
      auth: op,
      body: { policy_id: policy.id, batch_size: 6, pause_ms: 600_000, wave_timeout_ms: 30_000 },
    });
    assert.equal(c.status, 202, c.text);
    await waitFor(async () => ((await get(c.json.id)).counts.applied === 6 ? true : undefined), {
      timeoutMs: 30_000,
      what: 'wave 1 of the second rollout applied',
    });
    const cancelled = await t.call<PolicyRollout>('POST', `/api/v1/policy-rollouts/${c.json.id}/cancel`, {
      auth: op,
    });
    assert.equal(cancelled.status, 200, cancelled.text);
    assert.equal(cancelled.json.status, 'cancelled');
    assert.equal(cancelled.json.counts.rolled_back, 6);
    assert.equal(cancelled.json.counts.skipped, prod.length - 6);
    const p = (await t.call<Policy>('GET', `/api/v1/policies/${policy.id}`, { auth: op })).json;
    assert.equal(p.applied_revision, rev2 + 1);
    assert.equal(p.packages[0]?.configs[0]?.content, 'level: 2\n');
    await waitFor(
      async () => {
        const l = await agentsOf(policy.id);
        return l.items.length === prod.length &&
          l.items.every((a) => a.state === 'applied' && a.distribution?.revision === rev2 + 1)
          ? true
          : undefined;
      },
      { timeoutMs: 60_000, what: 'every prod agent on the rollback revision' },
    );
  });
});
