/**
 * Devices follow their agents: real etcd, a real controller and real agents whose codes are the
 * devices' agent codes. A device turns online (with the agent's version) when its agent connects,
 * offline when it is killed, online again when it is back; a device without a running agent
 * keeps its status; a device being deployed is left alone.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startEtcd, startFleet, waitFor, type EtcdHandle, type Fleet } from '@opsplane/test-support';
import type { Device } from '@opsplane/api';
import { deviceBody, startTestServer, type TestServer } from './helpers.js';

const AREA = 'area-1';
const SECRET = 'device-status-secret-0123456789';

describe('device status follows the agent', { timeout: 120_000 }, () => {
  let etcd: EtcdHandle;
  let t: TestServer;
  let fleet: Fleet;
  const dev: Record<string, Device> = {};

  const status = async (name: string) =>
    (await t.call<Device>('GET', `/api/v1/devices/${dev[name]!.id}`, { auth: t.users.viewer.token })).json;
  const until = (name: string, want: string) =>
    waitFor(async () => (await status(name)).status === want, {
      timeoutMs: 30_000,
      intervalMs: 200,
      what: `${name} ${want}`,
    });

  before(async () => {
    etcd = await startEtcd();
    t = await startTestServer('pglite', {
      etcd: etcd.endpoints,
      areas: { [AREA]: { agent_secret: SECRET } },
      server: { agents_refresh_interval: '1s' },
    });
    for (const [i, name] of ['with-agent-1', 'with-agent-2', 'without-agent'].entries()) {
      const r = await t.call<Device>('POST', '/api/v1/devices', {
        auth: t.users.admin.token,
        body: deviceBody(700 + i, { name, function_area: AREA }),
      });
      assert.equal(r.status, 201, r.text);
      dev[name] = r.json;
    }
    const codes = [dev['with-agent-1']!.agent_code, dev['with-agent-2']!.agent_code];
    fleet = await startFleet({
      etcd,
      areas: [{ name: AREA, controllers: 1, agents: 2 }],
      secrets: { [AREA]: SECRET },
      agentCode: (_area, i) => codes[i]!,
      packages: [],
    });
  });
  after(async () => {
    await fleet?.stop();
    await t?.stop();
    await etcd?.stop();
  });

  it('turns online with the agent version, offline when the agent dies, online when it is back', async () => {
    await until('with-agent-1', 'online');
    await until('with-agent-2', 'online');
    assert.equal((await status('with-agent-1')).agent_version, '0.1.0');
    await fleet.agents[0]!.kill();
    await until('with-agent-1', 'offline');
    assert.equal((await status('with-agent-2')).status, 'online');
    await fleet.agents[0]!.start();
    await until('with-agent-1', 'online');
    assert.equal((await status('without-agent')).status, 'new', 'nothing known: left as it is');
  });

  it('leaves a device being deployed to its deployment', async () => {
    await t.server.store.devices.setStatus(dev['with-agent-2']!.id, 'deploying');
    await fleet.agents[1]!.kill();
    const before = t.server.platform.view.refreshCount;
    await waitFor(() => t.server.platform.view.refreshCount >= before + 2, {
      timeoutMs: 20_000,
      what: 'two view refreshes',
    });
    assert.equal((await status('with-agent-2')).status, 'deploying');
    await fleet.agents[1]!.start();
  });
});
