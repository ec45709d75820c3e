/**
 * The controller as a real daemon (`node packages/cli/dist/src/main.js controller …`) against a
 * real etcd: lease-bound registration and its refresh, the guide's curl URLs, SIGTERM/SIGINT
 * deregistration (agents told to fail over), kill -9 → key gone within TTL + 1 s, and an etcd
 * outage: the daemon keeps serving HTTP and registers again when etcd is back.
 */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { CLOSE_CODES, ControllerRegistrationSchema, type ControllerRegistration } from '@opsplane/models';
import {
  freePort,
  sleep,
  spawnTracked,
  startEtcd,
  tempDir,
  waitFor,
  type EtcdHandle,
  type TrackedProcess,
} from '@opsplane/test-support';
import { FakeAgent } from './support/fake-agent.js';
import { SECRET, getJson } from './support/harness.js';

const CLI = fileURLToPath(new URL('../../../cli/dist/src/main.js', import.meta.url));
const TTL_S = 3;

let etcd: EtcdHandle;
let dir: { path: string; cleanup: () => Promise<void> };
let configFile: string;
const daemons: TrackedProcess[] = [];

interface Daemon {
  proc: TrackedProcess;
  id: string;
  url: string;
  key: string;
}

async function startDaemon(id: string, { waitForKey = true } = {}): Promise<Daemon> {
  const port = await freePort();
  const proc = spawnTracked(
    `controller:${id}`,
    process.execPath,
    [
      CLI,
      'controller',
      '--config',
      configFile,
      '--id',
      id,
      '--listen',
      `127.0.0.1:${port}`,
      '--etcd',
      etcd.endpoints.join(','),
      // These tests call /api/v1 without credentials (the token itself: insecure.test.ts).
      '--insecure-no-token',
    ],
    { env: { ...process.env, OPSPLANE_AGENT_SECRET: SECRET, OPSPLANE_LOG_LEVEL: 'info' } },
  );
  daemons.push(proc);
  await proc.waitForOutput('listening on');
  const d = { proc, id, url: `http://127.0.0.1:${port}`, key: `controllers/area-1/${id}` };
  if (waitForKey) await waitFor(() => readKey(d.key), { timeoutMs: 10_000, what: `${d.key} in etcd` });
  return d;
}

async function readKey(key: string): Promise<{ value: ControllerRegistration; lease: string } | undefined> {
  const text = await etcd.etcdctl(['get', key, '-w', 'json']);
  const out = JSON.parse(text) as { kvs?: { value: string }[] };
  const kv = out.kvs?.[0];
  if (!kv) return undefined;
  const value = ControllerRegistrationSchema.parse(
    JSON.parse(Buffer.from(kv.value, 'base64').toString('utf8')),
  );
  // Lease ids are 64-bit: read them from the text, JSON.parse would round them.
  return { value, lease: /"lease":(\d+)/.exec(text)?.[1] ?? '0' };
}

/** The lease's granted TTL in seconds, from etcd itself (etcdctl wants the id in hex). */
async function leaseTtl(leaseDecimal: string): Promise<{ granted: number; remaining: number }> {
  const out = JSON.parse(
    await etcd.etcdctl(['lease', 'timetolive', BigInt(leaseDecimal).toString(16), '-w', 'json']),
  ) as {
    ttl: number;
    'granted-ttl': number;
  };
  return { granted: out['granted-ttl'], remaining: out.ttl };
}

before(async () => {
  etcd = await startEtcd();
  dir = await tempDir('opsplane-controller-test-');
  configFile = join(dir.path, 'controller.yaml');
  await writeFile(
    configFile,
    [
      'area: area-1',
      `lease_ttl: ${TTL_S}s`,
      'refresh_interval: 1s',
      'etcd:',
      '  dial_timeout: 2s',
      'agents:',
      '  heartbeat_interval: 1s',
      '',
    ].join('\n'),
  );
});

after(async () => {
  await Promise.all(daemons.map((d) => d.stop(3000)));
  await etcd?.stop();
  await dir?.cleanup();
});

describe('controller daemon', () => {
  it('registers under controllers/<area>/<id> with a lease and refreshes the value', async () => {
    const d = await startDaemon('daemon-reg');
    const first = await readKey(d.key);
    assert.ok(first);
    const v = first.value;
    assert.equal(v.id, 'daemon-reg');
    assert.equal(v.area, 'area-1');
    assert.equal(v.address, d.url.replace('http://', ''));
    assert.match(v.version, /^\d+\.\d+\.\d+/);
    assert.equal(v.agent_count, 0);
    assert.ok(Date.parse(v.start_time) > 0 && Date.parse(v.last_heartbeat) >= Date.parse(v.start_time));
    assert.equal(typeof v.metadata, 'object');
    assert.notEqual(first.lease, '0', 'key is bound to a lease');
    const ttl = await leaseTtl(first.lease);
    assert.equal(ttl.granted, TTL_S);
    assert.ok(ttl.remaining > 0);

    // Refreshed: last_heartbeat moves, and agent_count follows connected agents.
    const agent = await FakeAgent.connect({
      url: d.url,
      code: 'daemon-agent',
      area: 'area-1',
      secret: SECRET,
    });
    const later = await waitFor(
      async () => {
        const k = await readKey(d.key);
        return k &&
          Date.parse(k.value.last_heartbeat) > Date.parse(v.last_heartbeat) &&
          k.value.agent_count === 1
          ? k
          : undefined;
      },
      { timeoutMs: 4000, what: 'a refreshed value with agent_count 1' },
    );
    assert.equal(later.value.start_time, v.start_time);

    // The guide's curl commands.
    const status = await getJson<{ id: string; agent_count: number }>(`${d.url}/api/v1/status`);
    assert.equal(status.status, 200);
    assert.equal(status.body.id, 'daemon-reg');
    const list = await getJson<{ agents: { id: string }[]; total: number; page: number; pageSize: number }>(
      `${d.url}/api/v1/agents?page=1&pageSize=20`,
    );
    assert.equal(list.status, 200);
    assert.deepEqual(
      list.body.agents.map((a) => a.id),
      ['daemon-agent'],
    );
    assert.equal(list.body.pageSize, 20);
    await agent.close();
  });

  it('on SIGTERM tells agents to fail over, deletes its key and exits 0', async () => {
    const d = await startDaemon('daemon-term');
    const agent = await FakeAgent.connect({ url: d.url, code: 'term-agent', area: 'area-1', secret: SECRET });
    const t0 = Date.now();
    d.proc.child.kill('SIGTERM');
    const closed = await agent.closed;
    assert.equal(closed.code, CLOSE_CODES.shutdown);
    const exit = await d.proc.exited;
    assert.equal(exit.code, 0, d.proc.output().slice(-2000));
    assert.equal(await readKey(d.key), undefined);
    assert.ok(Date.now() - t0 < 5000);
  });

  it('on SIGINT deletes its key too', async () => {
    const d = await startDaemon('daemon-int');
    d.proc.child.kill('SIGINT');
    assert.equal((await d.proc.exited).code, 0);
    assert.equal(await readKey(d.key), undefined);
  });

  it(`after kill -9 the key is gone within TTL + 1 s (${TTL_S + 1} s)`, async () => {
    const d = await startDaemon('daemon-kill');
    await d.proc.kill();
    const t0 = Date.now();
    await waitFor(async () => (await readKey(d.key)) === undefined, {
      timeoutMs: (TTL_S + 1) * 1000,
      intervalMs: 100,
      what: 'the key to expire with its lease',
    });
    const took = Date.now() - t0;
    assert.ok(took <= (TTL_S + 1) * 1000, `took ${took} ms`);
  });

  it('starts and serves with etcd down, and registers once etcd is up', async () => {
    await etcd.kill();
    const d = await startDaemon('daemon-early', { waitForKey: false });
    const health = await getJson<{ registered: boolean }>(`${d.url}/healthz`);
    assert.equal(health.status, 200);
    assert.equal(health.body.registered, false);
    assert.equal((await getJson(`${d.url}/api/v1/status`)).status, 200);
    await etcd.restart();
    await waitFor(() => readKey(d.key), {
      timeoutMs: 15_000,
      intervalMs: 200,
      what: 'registration after etcd came up',
    });
    await d.proc.stop();
  });

  it('keeps serving while etcd is down and registers again when it is back', async () => {
    const d = await startDaemon('daemon-outage');
    await etcd.kill();
    const outageStart = Date.now();
    // Longer than the lease TTL, so the lease is gone from the controller's point of view.
    while (Date.now() - outageStart < (TTL_S + 1.5) * 1000) {
      const r = await getJson<{ id: string }>(`${d.url}/api/v1/status`);
      assert.equal(r.status, 200);
      assert.equal((await getJson(`${d.url}/api/v1/agents?page=1&pageSize=20`)).status, 200);
      await sleep(250);
    }
    const health = await getJson<{ registered: boolean }>(`${d.url}/healthz`);
    assert.equal(health.status, 200);
    await etcd.restart();
    const backAt = Date.now();
    const again = await waitFor(
      async () => {
        const k = await readKey(d.key);
        return k && Date.parse(k.value.last_heartbeat) >= backAt - 100 ? k : undefined;
      },
      { timeoutMs: 15_000, intervalMs: 200, what: 'a fresh registration after etcd came back' },
    );
    const ttl = await leaseTtl(again.lease);
    assert.ok(ttl.remaining > 0, 'the key hangs on a live lease');
    assert.equal((d.proc.child.exitCode ?? d.proc.child.signalCode) === null, true, 'still running');
    assert.equal((await getJson(`${d.url}/api/v1/status`)).status, 200);
    await waitFor(async () => (await getJson<{ registered: boolean }>(`${d.url}/healthz`)).body.registered, {
      timeoutMs: 5000,
      what: '/healthz registered=true',
    });
  });
});
