/**
 * The client pool wired to a real ControllerDiscovery on a real etcd: keys written with the
 * etcd3 client point at real test HTTP controllers, and the pool follows puts and deletes.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Etcd3 } from 'etcd3';
import { startEtcd, waitFor, type EtcdHandle } from '@opsplane/test-support';
import { ControllerClientPool, ControllerDiscovery } from '../src/index.js';
import { startFakeController, type FakeController } from './helpers/fake-controller.js';

let etcd: EtcdHandle;
let client: Etcd3;
let discovery: ControllerDiscovery;
let pool: ControllerClientPool;
let a: FakeController;
let b: FakeController;

const registration = (id: string, address: string, heartbeatAgoMs = 0) =>
  JSON.stringify({
    id,
    address,
    area: 'area-1',
    start_time: new Date(Date.now() - 60_000).toISOString(),
    version: '1.0.0',
    last_heartbeat: new Date(Date.now() - heartbeatAgoMs).toISOString(),
    agent_count: 0,
    metadata: {},
  });

before(async () => {
  etcd = await startEtcd();
  client = new Etcd3({ hosts: etcd.endpoints });
  a = await startFakeController({ id: 'ctrl-a' });
  b = await startFakeController({ id: 'ctrl-b' });
  discovery = new ControllerDiscovery(client, 'controllers/', { staleAfterMs: 60_000 });
  await discovery.start();
  pool = new ControllerClientPool(discovery, { clientOptions: { retryTimes: 0, timeoutMs: 2000 } });
});

after(async () => {
  await pool?.close();
  await discovery?.stop();
  client?.close();
  await etcd?.stop();
  await a?.close();
  await b?.close();
});

test('the pool follows controller puts, address changes and deletes in etcd', async () => {
  await client.put('controllers/area-1/ctrl-a').value(registration('ctrl-a', a.address, 5000));
  await waitFor(() => pool.keys().includes('area-1/ctrl-a'), { what: 'ctrl-a in the pool' });
  assert.equal((await pool.getClient('area-1').getStatus()).id, 'ctrl-a');

  // A second controller with a fresher heartbeat comes first.
  await client.put('controllers/area-1/ctrl-b').value(registration('ctrl-b', b.address, 0));
  await waitFor(() => pool.clientsForArea('area-1').length === 2, { what: 'two clients for area-1' });
  assert.deepEqual(
    pool.onlineControllers('area-1').map((p) => p.controller.id),
    ['ctrl-b', 'ctrl-a'],
  );
  assert.equal((await pool.getClient('area-1').getStatus()).id, 'ctrl-b');

  // ctrl-a re-registers at another address: new client, old one closed.
  const oldA = pool.getClientFor('area-1', 'ctrl-a');
  await client.put('controllers/area-1/ctrl-a').value(registration('ctrl-a', `localhost:${a.port}`, 5000));
  await waitFor(() => oldA?.closed, { what: 'old ctrl-a client closed' });
  const newA = pool.getClientFor('area-1', 'ctrl-a');
  assert.equal(newA?.baseUrl, `http://localhost:${a.port}`);
  assert.equal((await newA?.getStatus())?.id, 'ctrl-a');

  // Deleting ctrl-b's key removes and closes its client.
  const clientB = pool.getClientFor('area-1', 'ctrl-b');
  await client.delete().key('controllers/area-1/ctrl-b');
  await waitFor(() => !pool.keys().includes('area-1/ctrl-b'), { what: 'ctrl-b gone from the pool' });
  assert.equal(clientB?.closed, true);
  assert.equal((await pool.getClient('area-1').getStatus()).id, 'ctrl-a');
  assert.deepEqual(pool.keys(), ['area-1/ctrl-a']);
});
