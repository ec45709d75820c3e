/**
 * ControllerRegistration against a REAL etcd: lease-bound key with refreshed heartbeat and
 * agent count, removal on stop(), re-registration after the lease is revoked and after etcd is
 * down for longer than the TTL, and validation of its options.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { Etcd3 } from 'etcd3';
import { pino, type Logger } from 'pino';
import { ControllerRegistrationSchema, RequestTimeoutError, ValidationError } from '@opsplane/models';
import { sleep, startEtcd, waitFor, type EtcdHandle } from '@opsplane/test-support';
import {
  ControllerDiscovery,
  ControllerRegistration,
  type ControllerRegistrationOptions,
} from '../src/index.js';

const silent = (): Logger => pino({ level: 'silent' }, new Writable({ write: (_c, _e, cb) => cb() }));

interface KvJson {
  kvs?: Array<{ key: string; value: string; mod_revision: number }>;
}

/** The key as etcdctl sees it, or undefined. `lease` is decimal (read from the raw text: it exceeds 2^53). */
async function readKey(etcd: EtcdHandle, key: string) {
  const raw = await etcd.etcdctl(['get', key, '-w', 'json']);
  const kv = (JSON.parse(raw) as KvJson).kvs?.[0];
  if (!kv) return undefined;
  return {
    value: ControllerRegistrationSchema.parse(JSON.parse(Buffer.from(kv.value, 'base64').toString())),
    lease: /"lease":(\d+)/.exec(raw)?.[1] ?? '0',
    modRevision: kv.mod_revision,
  };
}

describe('ControllerRegistration (real etcd)', { timeout: 60_000 }, () => {
  const cleanups: Array<() => Promise<unknown> | unknown> = [];
  after(async () => {
    for (const c of cleanups.reverse()) await c();
  });

  async function setup() {
    const etcd = await startEtcd();
    cleanups.push(() => etcd.stop());
    const client = new Etcd3({ hosts: etcd.endpoints });
    cleanups.push(() => client.close());
    return { etcd, client };
  }

  function registration(client: Etcd3, opts: Partial<ControllerRegistrationOptions> = {}) {
    const reg = new ControllerRegistration(client, {
      area: 'area-1',
      id: 'ctl-1',
      address: '127.0.0.1:9090',
      version: '2.0.0',
      metadata: { zone: 'z1' },
      logger: silent(),
      ...opts,
    });
    cleanups.push(() => reg.stop());
    return reg;
  }

  it('writes the key under a live lease, refreshes heartbeat and agent_count, removes it on stop()', async () => {
    const { etcd, client } = await setup();
    let agents = 0;
    const reg = registration(client, { ttlSeconds: 3, refreshIntervalMs: 200, agentCount: () => agents });
    const registered: unknown[] = [];
    reg.on('registered', (i) => registered.push(i));
    await reg.start();
    assert.equal(reg.registered, true);
    assert.equal(reg.key, 'controllers/area-1/ctl-1');
    assert.equal(registered.length, 1);

    const first = await readKey(etcd, reg.key);
    assert.ok(first, 'key present');
    assert.notEqual(first.lease, '0', 'bound to a lease');
    assert.equal(first.lease, reg.leaseId);
    assert.deepEqual(
      { ...first.value, last_heartbeat: '' },
      {
        id: 'ctl-1',
        area: 'area-1',
        address: '127.0.0.1:9090',
        version: '2.0.0',
        start_time: first.value.start_time,
        last_heartbeat: '',
        agent_count: 0,
        metadata: { zone: 'z1' },
      },
    );
    const ttl = await etcd.etcdctl(['lease', 'timetolive', BigInt(first.lease).toString(16)]);
    assert.match(ttl, /granted with TTL\(3s\)/);

    agents = 7;
    const refreshed = await waitFor(
      async () => {
        const now = await readKey(etcd, reg.key);
        return now && now.value.agent_count === 7 && now.value.last_heartbeat !== first.value.last_heartbeat
          ? now
          : undefined;
      },
      { timeoutMs: 3000, what: 'a refreshed value' },
    );
    assert.equal(refreshed.lease, first.lease, 'refresh keeps the lease');
    assert.equal(refreshed.value.start_time, first.value.start_time);

    // refresh() writes now.
    agents = 9;
    await reg.refresh();
    assert.equal((await readKey(etcd, reg.key))?.value.agent_count, 9);

    // Keepalive holds the lease well past its TTL.
    await sleep(3500);
    assert.ok(await readKey(etcd, reg.key), 'key still present after more than one TTL');

    await reg.stop();
    assert.equal(await readKey(etcd, reg.key), undefined, 'key removed by stop()');
    const after = await etcd.etcdctl(['lease', 'timetolive', BigInt(first.lease).toString(16)]);
    assert.match(after, /already expired/, 'lease revoked');
    assert.equal(reg.registered, false);
    await reg.stop(); // idempotent
  });

  it('registers again when its lease is revoked behind its back', async () => {
    const { etcd, client } = await setup();
    const reg = registration(client, { ttlSeconds: 5, refreshIntervalMs: 300 });
    const events: string[] = [];
    reg.on('registered', () => events.push('registered'));
    reg.on('lost', () => events.push('lost'));
    await reg.start();
    const before = await readKey(etcd, reg.key);
    assert.ok(before);
    await etcd.etcdctl(['lease', 'revoke', BigInt(before.lease).toString(16)]);
    const again = await waitFor(
      async () => {
        const now = await readKey(etcd, reg.key);
        return now && now.lease !== before.lease ? now : undefined;
      },
      { timeoutMs: 8000, what: 'registration under a new lease' },
    );
    assert.equal(again.lease, reg.leaseId);
    assert.deepEqual(events, ['registered', 'lost', 'registered']);
  });

  it('comes back by itself after etcd is down for longer than the TTL; discovery sees it', async () => {
    const { etcd, client } = await setup();
    const reg = registration(client, { ttlSeconds: 2, refreshIntervalMs: 300, maxBackoffMs: 500 });
    const events: string[] = [];
    const errors: Error[] = [];
    reg.on('registered', () => events.push('registered'));
    reg.on('lost', () => events.push('lost'));
    reg.on('error', (e) => errors.push(e));
    await reg.start();

    // Discovery on its own client, as the platform would have it.
    const dclient = new Etcd3({ hosts: etcd.endpoints });
    cleanups.push(() => dclient.close());
    const d = new ControllerDiscovery(dclient, 'controllers/', {
      logger: silent(),
      staleAfterMs: 2000,
      maxBackoffMs: 500,
    });
    cleanups.push(() => d.stop());
    await d.start();
    assert.equal(d.getControllerByArea('area-1').id, 'ctl-1');

    await etcd.kill();
    await sleep(5000); // > 2 × TTL: the client gives the lease up and keeps trying to register
    assert.ok(events.includes('lost'), `events: ${events.join(',')}`);
    assert.equal(reg.registered, false);
    await etcd.restart();
    const restartedAt = Date.now();

    await waitFor(() => reg.registered, { timeoutMs: 15_000, what: 're-registration' });
    const now = await readKey(etcd, reg.key);
    assert.ok(now, 'key is back');
    assert.equal(now.lease, reg.leaseId);
    // Discovery follows: the controller is there and online with a post-restart heartbeat.
    await waitFor(
      () => {
        const c = d.getController('area-1', 'ctl-1');
        return c && c.status === 'online' && Date.parse(c.last_heartbeat) >= restartedAt - 50;
      },
      { timeoutMs: 15_000, what: 'discovery to see the controller again' },
    );
    assert.equal(d.getControllerByArea('area-1').id, 'ctl-1');
    assert.ok(events.filter((e) => e === 'registered').length >= 2, `events: ${events.join(',')}`);
    assert.ok(errors.length > 0, 'registration failures during the outage were reported');
  });

  it('start() gives up waiting (but keeps trying) when etcd is unreachable; stop() ends it', async () => {
    const client = new Etcd3({ hosts: 'http://127.0.0.1:1' });
    cleanups.push(() => client.close());
    const reg = registration(client, { registrationTimeoutMs: 800, maxBackoffMs: 200 });
    const errors: Error[] = [];
    reg.on('error', (e) => errors.push(e));
    await assert.rejects(reg.start(), RequestTimeoutError);
    assert.equal(reg.registered, false);
    // Still retrying in the background, each failure reported.
    await waitFor(() => errors.length >= 2, { timeoutMs: 10_000, what: 'background retries' });
    await reg.stop();
    const stopped = errors.length;
    await sleep(400);
    assert.equal(errors.length, stopped, 'no attempts after stop()');
  });

  it('stop() leaves nothing behind: a registered process exits by itself', async () => {
    const { etcd } = await setup();
    const script = `
      import { Etcd3 } from 'etcd3';
      import { ControllerRegistration } from '@opsplane/platform';
      const client = new Etcd3({ hosts: process.argv[1] });
      const reg = new ControllerRegistration(client, { area: 'a', id: 'c', address: 'h:1', version: '1',
        ttlSeconds: 2, refreshIntervalMs: 100 });
      console.log('loaded');
      await reg.start();
      console.log('registered');
      await new Promise((r) => setTimeout(r, 1000)); // a few refreshes and keepalives
      await reg.stop();
      console.log('stopped');
      client.close();
      const t = Date.now();
      process.on('exit', () => console.log('exited-after-ms', Date.now() - t));
      setTimeout(() => {
        console.log('STILL-ALIVE', JSON.stringify(process.getActiveResourcesInfo()));
        process.exit(3);
      }, 5000).unref();
    `;
    const { code, out } = await new Promise<{ code: number | null; out: string }>((resolve) => {
      const child = spawn(process.execPath, ['--input-type=module', '-e', script, etcd.endpoints[0]!], {
        cwd: fileURLToPath(new URL('../..', import.meta.url)),
        env: { ...process.env, OPSPLANE_LOG_LEVEL: 'silent' },
      });
      let out = '';
      child.stdout.on('data', (b: Buffer) => (out += b.toString()));
      child.stderr.on('data', (b: Buffer) => (out += b.toString()));
      const killer = setTimeout(() => child.kill('SIGKILL'), 30_000);
      child.on('exit', (code) => {
        clearTimeout(killer);
        resolve({ code, out });
      });
    });
    assert.equal(code, 0, out);
    const exitMs = Number(/exited-after-ms (\d+)/.exec(out)?.[1]);
    assert.ok(exitMs < 2000, `exited ${exitMs} ms after stop() + close(): ${out}`);
    assert.equal(await readKey(etcd, 'controllers/a/c'), undefined);
  });

  it('refuses options that break the contract', () => {
    const client = new Etcd3({ hosts: 'http://127.0.0.1:1' });
    cleanups.push(() => client.close());
    const base = { area: 'a', id: 'c', address: 'h:1', version: '1', logger: silent() };
    assert.throws(
      () => new ControllerRegistration(client, { ...base, refreshIntervalMs: 15_000 }),
      ValidationError,
    );
    assert.throws(() => new ControllerRegistration(client, { ...base, ttlSeconds: 0 }), ValidationError);
    assert.throws(() => new ControllerRegistration(client, { ...base, area: 'a/b' }), ValidationError);
    assert.throws(() => new ControllerRegistration(client, { ...base, id: '..' }), ValidationError);
    assert.throws(() => new ControllerRegistration(client, { ...base, address: '' }), ValidationError);
  });
});
