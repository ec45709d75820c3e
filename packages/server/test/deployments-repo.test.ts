/**
 * The durable deployment queue's database rules, on PGlite and on PostgreSQL (where several
 * servers may share it): claims are exclusive, leases lapse and are taken over, the old owner
 * can then no longer finish, batch_size caps a rollout, one active deployment per device, and
 * cancel reaches queued and running ones.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { openStore, type DatabaseHandle, type Store } from '../src/index.js';
import { DeploymentInProgressError } from '../src/storage/deployments-repo.js';
import {
  createDevice,
  DRIVERS,
  TEST_MASTER_KEY,
  driverSkip,
  deviceBody,
  testEnv,
  testLogger,
  type TestEnv,
} from './helpers.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

for (const driver of DRIVERS) {
  describe(`deployment queue storage on ${driver}`, { timeout: 90_000, skip: driverSkip(driver) }, () => {
    let env: TestEnv;
    let store: Store;
    let database: DatabaseHandle;
    let n = 0;

    before(async () => {
      env = await testEnv(driver);
      ({ store, database } = await openStore(env.config, testLogger(), { masterKey: TEST_MASTER_KEY }));
    });
    after(async () => {
      await database?.close();
      await env?.cleanup();
    });

    async function devices(count: number) {
      const out = [];
      for (let i = 0; i < count; i++) {
        const d = await createDevice(store, deviceBody(5000 + ++n));
        out.push({ id: d.id, name: d.name, area: d.function_area });
      }
      return out;
    }

    const rollout = async (count: number, batchSize = 10) =>
      store.deployments.createRollout({
        type: 'restart',
        version: '',
        batchSize,
        maxFailures: 0,
        acceptChangedHostKey: false,
        requestedBy: 'test',
        devices: await devices(count),
        steps: ['connect', 'restart'],
      });

    it('claims each deployment once, in request order, within batch_size', async () => {
      const r = await rollout(5, 2);
      const a = await store.deployments.claim({ owner: 'A', leaseMs: 30_000, limit: 10 });
      const b = await store.deployments.claim({ owner: 'B', leaseMs: 30_000, limit: 10 });
      const mine = (rows: typeof a) => rows.filter((x) => x.rolloutId === r.rollout.id);
      assert.deepEqual(
        mine(a).map((x) => x.deviceName),
        r.deployments.slice(0, 2).map((x) => x.deviceName),
      );
      assert.equal(mine(b).length, 0, 'batch_size 2 is taken');
      assert.ok(mine(a).every((x) => x.status === 'running' && x.attempt === 1 && x.leaseOwner === 'A'));
      const done = await store.deployments.finish(mine(a)[0]!.id, 'A', 'succeeded');
      assert.equal(done?.status, 'succeeded');
      const next = mine(await store.deployments.claim({ owner: 'B', leaseMs: 30_000, limit: 10 }));
      assert.deepEqual(
        next.map((x) => x.deviceName),
        [r.deployments[2]!.deviceName],
      );
    });

    it('a rollout at its batch_size does not hide the rollouts queued behind it', async () => {
      const big = await rollout(60, 1);
      const small = await rollout(1, 5);
      const claimed = await store.deployments.claim({ owner: 'A', leaseMs: 30_000, limit: 10 });
      const of = (id: string) => claimed.filter((x) => x.rolloutId === id).length;
      assert.equal(of(big.rollout.id), 1, 'batch_size 1');
      assert.equal(of(small.rollout.id), 1, 'the later rollout gets its turn');
      assert.equal(
        (await store.deployments.claim({ owner: 'B', leaseMs: 30_000, limit: 10 })).filter(
          (x) => x.rolloutId === big.rollout.id,
        ).length,
        0,
      );
      await store.deployments.cancelRollout(big.rollout.id, 'done with it', 'cancelled');
    });

    it('lets another owner take over a lapsed lease; the old owner can no longer finish it', async () => {
      const r = await rollout(1);
      const [mine] = (await store.deployments.claim({ owner: 'dead', leaseMs: 300, limit: 50 })).filter(
        (x) => x.rolloutId === r.rollout.id,
      );
      assert.ok(mine);
      assert.equal(
        (await store.deployments.claim({ owner: 'B', leaseMs: 30_000, limit: 50 })).filter(
          (x) => x.id === mine.id,
        ).length,
        0,
        'still leased',
      );
      await sleep(600);
      const taken = (await store.deployments.claim({ owner: 'B', leaseMs: 30_000, limit: 50 })).find(
        (x) => x.id === mine.id,
      );
      assert.equal(taken?.attempt, 2);
      assert.equal(taken?.leaseOwner, 'B');
      assert.equal(await store.deployments.finish(mine.id, 'dead', 'failed'), undefined);
      assert.equal((await store.deployments.renewLeases('dead', [mine.id], 30_000)).size, 0);
      assert.equal((await store.deployments.renewLeases('B', [mine.id], 30_000)).size, 1);
      assert.equal((await store.deployments.finish(mine.id, 'B', 'succeeded'))?.status, 'succeeded');
    });

    it('allows one active deployment per device, and cancels queued at once and running on request', async () => {
      const r = await rollout(2, 1);
      const dev = r.deployments[0]!;
      await assert.rejects(
        store.deployments.createRollout({
          type: 'restart',
          version: '',
          batchSize: 1,
          maxFailures: 0,
          acceptChangedHostKey: false,
          requestedBy: 'test',
          devices: [{ id: dev.deviceId!, name: dev.deviceName, area: dev.area }],
          steps: ['connect'],
        }),
        DeploymentInProgressError,
      );
      const claimed = (await store.deployments.claim({ owner: 'A', leaseMs: 30_000, limit: 50 })).find(
        (x) => x.rolloutId === r.rollout.id,
      )!;
      await store.deployments.cancelRollout(r.rollout.id, 'test says stop', 'cancelled');
      const after = (await store.deployments.rollout(r.rollout.id))!;
      const byId = new Map(after.deployments.map((d) => [d.id, d]));
      assert.equal(byId.get(claimed.id)!.status, 'running');
      assert.equal(byId.get(claimed.id)!.cancelRequested, true);
      const other = after.deployments.find((d) => d.id !== claimed.id)!;
      assert.equal(other.status, 'cancelled');
      assert.equal(other.error, 'test says stop');
      assert.equal(after.rollout.status, 'cancelled');
      assert.equal(await store.deployments.isCancelRequested(claimed.id), true);
      await store.deployments.finish(claimed.id, 'A', 'cancelled', { code: 'cancelled', message: 'stopped' });
      const settled = await store.deployments.settleRollout(r.rollout.id);
      assert.equal(settled?.status, 'cancelled', 'an operator cancel stays cancelled');
      assert.ok(settled?.finishedAt);
    });

    it('releases leases on a graceful stop so the next claim resumes at once', async () => {
      const r = await rollout(1);
      const [mine] = (await store.deployments.claim({ owner: 'S1', leaseMs: 60_000, limit: 50 })).filter(
        (x) => x.rolloutId === r.rollout.id,
      );
      await store.deployments.releaseLeases('S1', [mine!.id]);
      const again = (await store.deployments.claim({ owner: 'S2', leaseMs: 60_000, limit: 50 })).find(
        (x) => x.id === mine!.id,
      );
      assert.equal(again?.attempt, 2);
    });
  });
}
