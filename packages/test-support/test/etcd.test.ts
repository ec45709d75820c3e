import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { startEtcd, startEtcdCluster, type EtcdHandle } from '../src/index.js';

describe('test-support etcd', () => {
  const started: EtcdHandle[] = [];
  after(async () => {
    await Promise.all(started.map((e) => e.stop()));
  });

  it('starts a single member, survives kill + restart with its data, compacts, cleans up', async () => {
    const etcd = await startEtcd();
    started.push(etcd);
    assert.equal(etcd.endpoints.length, 1);
    assert.match(etcd.endpoints[0]!, /^http:\/\/127\.0\.0\.1:\d+$/);

    await etcd.etcdctl(['put', 'k1', 'v1']);
    assert.equal((await etcd.etcdctl(['get', 'k1', '--print-value-only'])).trim(), 'v1');
    const rev = await etcd.revision();
    assert.ok(rev >= 2);

    await etcd.kill();
    assert.equal(etcd.members[0]!.running, false);
    await assert.rejects(etcd.etcdctl(['get', 'k1', '--command-timeout=500ms', '--dial-timeout=500ms']));
    await etcd.restart();
    assert.equal((await etcd.etcdctl(['get', 'k1', '--print-value-only'])).trim(), 'v1');
    assert.equal(await etcd.revision(), rev);

    await etcd.etcdctl(['put', 'k1', 'v2']);
    const compacted = await etcd.compact();
    assert.equal(compacted, rev + 1);
    // History before the compaction point is gone.
    await assert.rejects(etcd.etcdctl(['get', 'k1', `--rev=${rev}`]), /compacted/);

    const dir = etcd.members[0]!.dataDir;
    assert.ok(existsSync(dir));
    await etcd.stop();
    assert.equal(existsSync(dir), false);
    await etcd.stop(); // idempotent
  });

  it('starts a 3-member cluster that keeps serving with one member down', async () => {
    const cluster = await startEtcdCluster(3);
    started.push(cluster);
    assert.equal(cluster.endpoints.length, 3);
    const status = JSON.parse(await cluster.etcdctl(['endpoint', 'status', '-w', 'json'])) as unknown[];
    assert.equal(status.length, 3);

    await cluster.members[0]!.kill();
    await cluster.waitHealthy(); // member 0 may have been the leader
    await cluster.etcdctl(['put', 'k', 'v'], { endpoints: cluster.endpoints.slice(1) });
    await cluster.members[0]!.restart();
    const value = await cluster.etcdctl(['get', 'k', '--print-value-only'], {
      endpoints: [cluster.endpoints[0]!],
    });
    assert.equal(value.trim(), 'v');
    await cluster.stop();
  });
});
