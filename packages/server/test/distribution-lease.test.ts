/**
 * Policy rollouts survive the replica running them: two replicas on one PostgreSQL; the one that
 * claimed a running rollout stops stepping without releasing its lease (as a killed process
 * would), the lease lapses, the other replica claims the rollout and carries it on from the
 * database — here to its wave timeout, a failure over max_failures, and the halt.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { waitFor } from '@opsplane/test-support';
import { startServer, type RunningServer } from '../src/index.js';
import { driverSkip, testEnv, testLogger, TEST_MASTER_KEY, type TestEnv } from './helpers.js';

const distribution = { lease_ttl: '2s', poll_interval: '200ms' };

describe('policy rollout lease takeover', { timeout: 60_000, skip: driverSkip('postgres') }, () => {
  const envs: TestEnv[] = [];
  const servers: RunningServer[] = [];

  before(async () => {
    const a = await testEnv('postgres', { replica_id: 'a', distribution });
    envs.push(a);
    const b = await testEnv('pglite', { replica_id: 'b', database_url: a.databaseUrl, distribution });
    envs.push(b);
    for (const env of envs)
      servers.push(
        await startServer(env.config, {
          logger: testLogger(),
          adminPassword: 'lease-admin-password',
          masterKey: TEST_MASTER_KEY,
          printSecret: () => undefined,
        }),
      );
  });

  after(async () => {
    for (const s of servers) await s.stop().catch(() => undefined);
    for (const e of envs) await e.cleanup();
  });

  it('is carried on by another replica when the one running it dies', async () => {
    const store = servers[0]!.store;
    const spec = {
      name: 'lease',
      description: '',
      areas: ['nowhere'],
      selector: '',
      priority: 0,
      packages: [],
      agent_version: null,
      correct_drift: false,
      health_timeout_ms: 60_000,
    };
    const policy = await store.policies.create({ name: 'lease', spec, createdBy: 'test', applied: true });
    await store.policies.addRevision(policy.id, { name: 'lease', spec, createdBy: 'test', applied: false });
    // Wave 1 under way, its agent never reporting: it fails at the wave timeout.
    const r = await store.policyRollouts.create(
      {
        policyId: policy.id,
        policyName: 'lease',
        revision: 2,
        previousRevision: 1,
        batchSize: 1,
        pauseMs: 0,
        maxFailures: 0,
        waveTimeoutMs: 6_000,
        waveCount: 1,
        createdBy: 'test',
      },
      [{ agentCode: 'ghost-agent', area: 'nowhere', wave: 1, previousRevision: 1 }],
    );
    await store.policyRollouts.update(r.id, { currentWave: 1, waveStartedAt: new Date() }, {});
    await store.policyRollouts.updateAgents(r.id, ['ghost-agent'], {
      status: 'applying',
      startedAt: new Date(),
    });

    const ownerOf = async () => (await store.policyRollouts.get(r.id))?.owner ?? null;
    const first = await waitFor(async () => (await ownerOf()) ?? undefined, {
      timeoutMs: 10_000,
      intervalMs: 50,
      what: 'a replica claimed the rollout',
    });
    const dying = servers.find((s) => s.rolloutEngine.owner === first);
    const survivor = servers.find((s) => s.rolloutEngine.owner !== first);
    assert.ok(dying && survivor, `owner ${first}`);
    dying.rolloutEngine.abandon();

    await waitFor(async () => ((await ownerOf()) === survivor.rolloutEngine.owner ? true : undefined), {
      timeoutMs: 10_000,
      intervalMs: 100,
      what: 'the other replica took the rollout over',
    });
    const halted = await waitFor(
      async () => {
        const x = await store.policyRollouts.get(r.id);
        return x?.status === 'halted' ? x : undefined;
      },
      { timeoutMs: 20_000, what: 'the rollout halted' },
    );
    assert.match(halted.message, /1 failure/);
    const agents = await store.policyRollouts.agents(r.id);
    assert.equal(agents[0]?.status, 'rolled_back');
    // The rollback revision (revision 1's spec) is applied.
    const p = await store.policies.get(policy.id);
    assert.equal(p?.revision, 3);
    assert.equal(p?.appliedRevision, 3);
  });
});
