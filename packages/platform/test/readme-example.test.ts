/**
 * The README's library example, run as written (modulo addresses) against a real etcd and a real
 * HTTP controller, so the README cannot drift from the library.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Etcd3 } from 'etcd3';
import { startEtcd, waitFor, type EtcdHandle } from '@opsplane/test-support';
import { ControllerDiscovery, ControllerClient, ControllerUnavailableError } from '@opsplane/platform';
import { makeAgent, startFakeController, type FakeController } from './helpers/fake-controller.js';

let etcdServer: EtcdHandle;
let ctrlServer: FakeController;

before(async () => {
  etcdServer = await startEtcd();
  ctrlServer = await startFakeController({
    id: 'ctrl-a',
    agents: [makeAgent('agent-001'), makeAgent('agent-002'), makeAgent('agent-003', { status: 'offline' })],
  });
});
after(async () => {
  await ctrlServer?.close();
  await etcdServer?.stop();
});

test('README: discovery → getControllerByArea → ControllerClient → listAgents / batchRestart', async () => {
  const etcd = new Etcd3({ hosts: etcdServer.endpoints, dialTimeout: 5000 });
  const updates: string[] = [];
  const deletes: string[] = [];
  const discovery = new ControllerDiscovery(etcd, 'controllers/');
  discovery.onControllerUpdate((c) => updates.push(`${c.area}/${c.id} ${c.status}`));
  discovery.onControllerDelete((key) => deletes.push(key));
  await discovery.start();
  try {
    assert.throws(() => discovery.getControllerByArea('area-1'), ControllerUnavailableError);

    const now = new Date().toISOString();
    await etcd.put('controllers/area-1/ctrl-a').value(
      JSON.stringify({
        id: 'ctrl-a',
        address: ctrlServer.address,
        area: 'area-1',
        start_time: now,
        version: '1.0.0',
        last_heartbeat: now,
        agent_count: 3,
        metadata: {},
      }),
    );
    await waitFor(() => updates.length === 1, { what: 'update callback' });
    assert.deepEqual(updates, ['area-1/ctrl-a online']);

    const ctrl = discovery.getControllerByArea('area-1');
    assert.ok(!ctrl.address.startsWith('http'), 'registered address has no scheme');
    const client = new ControllerClient(ctrl.address, 'area-1');
    client.setTimeout(30_000);
    const { agents, total } = await client.listAgents({ status: 'online' }, 1, 20);
    assert.equal(total, 2);
    assert.deepEqual(agents.map((a) => a.id).sort(), ['agent-001', 'agent-002']);
    assert.match(ctrlServer.hits.at(-1)?.url ?? '', /[?&]pageSize=20/);

    const result = await client.batchRestart({ agents: ['agent-001', 'agent-002'], packages: ['nginx'] });
    assert.equal(result.total, 2);
    assert.equal(result.results.length, 2);
    await client.close();

    await etcd.delete().key('controllers/area-1/ctrl-a');
    await waitFor(() => deletes.length === 1, { what: 'delete callback' });
    assert.deepEqual(deletes, ['area-1/ctrl-a']);
  } finally {
    await discovery.stop();
    etcd.close();
  }
});
