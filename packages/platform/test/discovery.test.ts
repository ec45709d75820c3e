/**
 * ControllerDiscovery against a REAL etcd (test-support starts it): callbacks, lease expiry,
 * convergence under random operations, etcd kill/restart, compaction (also while the watch is
 * behind), online/offline status, bad values, a 3-member cluster with a member down, and a
 * clean exit after stop().
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { isDeepStrictEqual } from 'node:util';
import { Etcd3 } from 'etcd3';
import { pino, type Logger } from 'pino';
import {
  ControllerRegistrationSchema,
  ControllerUnavailableError,
  parseControllerKey,
  type Controller,
  type ControllerRegistration,
} from '@opsplane/models';
import { sleep, startEtcd, startEtcdCluster, waitFor, type EtcdHandle } from '@opsplane/test-support';
import { ControllerDiscovery, type ControllerDiscoveryOptions, type ResyncInfo } from '../src/index.js';

// ------------------------------------------------------------------ helpers

function captureLogs(): { logger: Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString().split('\n'))
        if (l.trim()) lines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  return { logger: pino({ level: 'debug' }, stream), lines };
}

function value(
  area: string,
  id: string,
  over: Partial<Record<keyof ControllerRegistration, unknown>> = {},
): string {
  return JSON.stringify({
    id,
    address: `10.0.0.1:${8000 + id.length}`,
    area,
    start_time: '2024-01-15T10:30:00Z',
    version: '1.2.3',
    last_heartbeat: new Date().toISOString(),
    agent_count: 0,
    metadata: { zone: 'z1' },
    ...over,
  });
}

/** Records callbacks and checks the invariants on the fly: no update for an unchanged value, no delete for an unknown key. */
function record(d: ControllerDiscovery) {
  const r = {
    updates: [] as Controller[],
    deletes: [] as string[],
    resyncs: [] as ResyncInfo[],
    shadow: new Map<string, Controller>(),
    violations: [] as string[],
  };
  d.onControllerUpdate((c) => {
    const k = `${c.area}/${c.id}`;
    const prev = r.shadow.get(k);
    if (prev && isDeepStrictEqual(prev, c)) r.violations.push(`update for unchanged ${k}`);
    r.shadow.set(k, c);
    r.updates.push(c);
  });
  d.onControllerDelete((k) => {
    if (!r.shadow.delete(k)) r.violations.push(`delete for unknown ${k}`);
    r.deletes.push(k);
  });
  d.on('resync', (info) => r.resyncs.push(info));
  return r;
}

/** What etcd holds under `prefix`, parsed the way discovery must parse it. */
async function etcdTruth(client: Etcd3, prefix: string): Promise<Map<string, ControllerRegistration>> {
  const res = await client.getAll().prefix(prefix).exec();
  const out = new Map<string, ControllerRegistration>();
  for (const kv of res.kvs) {
    const ref = parseControllerKey(prefix, kv.key.toString());
    if (!ref) continue;
    let json: unknown;
    try {
      json = JSON.parse(kv.value.toString());
    } catch {
      continue;
    }
    const p = ControllerRegistrationSchema.safeParse(json);
    if (!p.success || p.data.area !== ref.area || p.data.id !== ref.id) continue;
    out.set(`${ref.area}/${ref.id}`, p.data);
  }
  return out;
}

function listAsMap(d: ControllerDiscovery): Map<string, ControllerRegistration> {
  return new Map(
    d.listControllers().map((c) => {
      const { status: _s, ...reg } = c;
      return [`${c.area}/${c.id}`, reg] as const;
    }),
  );
}

async function assertConverged(
  d: ControllerDiscovery,
  client: Etcd3,
  prefix: string,
  r?: ReturnType<typeof record>,
) {
  await waitFor(async () => isDeepStrictEqual(listAsMap(d), await etcdTruth(client, prefix)), {
    timeoutMs: 20_000,
    what: 'discovery to equal etcd',
  });
  if (r) {
    const list = new Map(d.listControllers().map((c) => [`${c.area}/${c.id}`, c] as const));
    assert.deepEqual(
      new Map([...r.shadow].sort()),
      new Map([...list].sort()),
      'callbacks reproduce the list',
    );
    assert.deepEqual(r.violations, []);
  }
}

/** A small seeded PRNG so that a failing sequence can be replayed. */
function rng(seed: number) {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

async function retrying<T>(fn: () => Promise<T>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await fn();
    } catch (e) {
      if (Date.now() > deadline) throw e;
      await sleep(100);
    }
  }
}

/**
 * Random operations on a key space of 3 areas × 12 ids: new keys, changed values, puts of the
 * same value (identical bytes, or reordered JSON), deletes, invalid values, and transactions
 * writing two keys at one revision. Keeps a model and counts the callbacks discovery owes.
 */
class RandomOps {
  readonly model = new Map<string, string>(); // rel -> canonical parsed value
  expectedUpdates = 0;
  expectedDeletes = 0;
  private readonly rand: () => number;
  private readonly bytes = new Map<string, string>();

  constructor(
    private readonly client: Etcd3,
    private readonly prefix: string,
    seed: number,
  ) {
    this.rand = rng(seed);
  }

  private pick<T>(xs: readonly T[]): T {
    return xs[Math.floor(this.rand() * xs.length)]!;
  }

  private relOf(): string {
    return `a${Math.floor(this.rand() * 3)}/c${Math.floor(this.rand() * 12)}`;
  }

  private expectPut(rel: string, raw: string): void {
    const [area, id] = rel.split('/') as [string, string];
    let canonical: string | undefined;
    try {
      const p = ControllerRegistrationSchema.safeParse(JSON.parse(raw));
      if (p.success && p.data.area === area && p.data.id === id) canonical = JSON.stringify(p.data);
    } catch {
      canonical = undefined;
    }
    const prev = this.model.get(rel);
    if (canonical === undefined) {
      if (prev !== undefined) {
        this.expectedDeletes++;
        this.model.delete(rel);
      }
    } else {
      if (prev !== canonical) this.expectedUpdates++;
      this.model.set(rel, canonical);
    }
    this.bytes.set(rel, raw);
  }

  private expectDelete(rel: string): void {
    if (this.model.delete(rel)) this.expectedDeletes++;
    this.bytes.delete(rel);
  }

  /** Picks the next operation, applies it to the model and returns the etcd write. */
  next(): () => Promise<unknown> {
    const rel = this.relOf();
    const [area, id] = rel.split('/') as [string, string];
    const key = this.prefix + rel;
    const kind = this.pick([
      'put',
      'put',
      'put',
      'same',
      'reorder',
      'delete',
      'delete',
      'invalid',
      'txn',
    ] as const);
    const existing = this.bytes.get(rel);
    switch (kind) {
      case 'same':
        if (existing !== undefined) {
          this.expectPut(rel, existing);
          return () => this.client.put(key).value(existing).exec();
        }
        return this.next();
      case 'put': {
        const v = value(area, id, {
          agent_count: Math.floor(this.rand() * 5),
          version: this.pick(['1.0', '1.1']),
        });
        this.expectPut(rel, v);
        return () => this.client.put(key).value(v).exec();
      }
      case 'reorder': {
        if (existing === undefined) return this.next();
        let parsed: Record<string, unknown>;
        try {
          parsed = JSON.parse(existing) as Record<string, unknown>;
        } catch {
          return this.next();
        }
        const reordered = JSON.stringify(Object.fromEntries(Object.entries(parsed).reverse()), null, 1);
        this.expectPut(rel, reordered);
        return () => this.client.put(key).value(reordered).exec();
      }
      case 'delete':
        this.expectDelete(rel);
        return () => this.client.delete().key(key).exec();
      case 'invalid': {
        const v = this.pick(['not json', '{"id":"x"}', value(area, 'someone-else')]);
        this.expectPut(rel, v);
        return () => this.client.put(key).value(v).exec();
      }
      case 'txn': {
        let rel2 = this.relOf();
        while (rel2 === rel) rel2 = this.relOf();
        const [area2, id2] = rel2.split('/') as [string, string];
        const v1 = value(area, id, { agent_count: 7 });
        this.expectPut(rel, v1);
        const del = this.rand() < 0.5;
        const v2 = value(area2, id2, { agent_count: 9 });
        if (del) this.expectDelete(rel2);
        else this.expectPut(rel2, v2);
        return () =>
          this.client
            .if(`${this.prefix}__never__`, 'Version', '==', 0)
            .then(
              this.client.put(key).value(v1),
              del
                ? this.client.delete().key(this.prefix + rel2)
                : this.client.put(this.prefix + rel2).value(v2),
            )
            .commit();
      }
    }
  }
}

// ------------------------------------------------------------------ tests

describe('ControllerDiscovery (real etcd)', { timeout: 60_000 }, () => {
  let etcd: EtcdHandle;
  let client: Etcd3;
  const cleanups: Array<() => Promise<unknown> | unknown> = [];
  let prefixN = 0;
  const nextPrefix = () => `ctl${++prefixN}/`;

  const discovery = (prefix: string, opts: ControllerDiscoveryOptions = {}, c: Etcd3 = client) => {
    const d = new ControllerDiscovery(c, prefix, { logger: captureLogs().logger, ...opts });
    cleanups.push(() => d.stop());
    return d;
  };

  before(async () => {
    etcd = await startEtcd();
    client = new Etcd3({ hosts: etcd.endpoints });
  });

  after(async () => {
    for (const c of cleanups.reverse()) await c();
    client?.close();
    await etcd?.stop();
  });

  it('sees an etcdctl put once, its delete, and a lease expiry; survives a throwing listener', async () => {
    const prefix = nextPrefix();
    const d = discovery(prefix);
    const r = record(d);
    const thrown: string[] = [];
    d.onControllerUpdate(() => {
      thrown.push('x');
      throw new Error('listener bug');
    });
    await d.start();
    assert.deepEqual(d.listControllers(), []);

    const v = value('area-1', 'ctl-a');
    await etcd.etcdctl(['put', `${prefix}area-1/ctl-a`, v]);
    await waitFor(() => d.getController('area-1', 'ctl-a'), { what: 'controller to appear' });
    const listed = d.listControllers();
    assert.equal(listed.length, 1);
    assert.equal(listed[0]!.status, 'online');
    assert.deepEqual({ ...listed[0], status: undefined }, { ...JSON.parse(v), status: undefined });
    assert.equal(d.getControllerByArea('area-1').id, 'ctl-a');

    // A put of identical bytes is a write but not a change: no callback.
    const before = d.stats().watchEvents;
    await etcd.etcdctl(['put', `${prefix}area-1/ctl-a`, v]);
    await waitFor(() => d.stats().watchEvents > before, { what: 'second put to be seen' });
    await sleep(100);
    assert.equal(r.updates.length, 1, 'exactly one update');
    assert.equal(thrown.length, 1, 'the throwing listener ran once and did not stop delivery');

    await etcd.etcdctl(['del', `${prefix}area-1/ctl-a`]);
    await waitFor(() => r.deletes.length === 1, { what: 'delete callback' });
    assert.deepEqual(r.deletes, ['area-1/ctl-a']);
    assert.equal(d.getController('area-1', 'ctl-a'), undefined);

    // A key bound to a lease that is not kept alive: gone within TTL + 1 s of the grant.
    const grant = await etcd.etcdctl(['lease', 'grant', '2']);
    const leaseId = /lease ([0-9a-f]+) granted/.exec(grant)?.[1];
    assert.ok(leaseId, grant);
    const granted = Date.now();
    await etcd.etcdctl(['put', `--lease=${leaseId}`, `${prefix}area-1/ctl-l`, value('area-1', 'ctl-l')]);
    await waitFor(() => d.getController('area-1', 'ctl-l'), { what: 'leased controller' });
    await waitFor(() => r.deletes.includes('area-1/ctl-l'), { timeoutMs: 5000, what: 'lease expiry delete' });
    const elapsed = Date.now() - granted;
    assert.ok(elapsed <= 3000, `deleted ${elapsed} ms after the grant (TTL 2 s)`);
    assert.deepEqual(d.listControllers(), []);
    assert.deepEqual(r.violations, []);
    assert.equal(r.updates.length, 2);
    await d.stop();
  });

  it('converges after 200 random operations with exactly one callback per real change', async () => {
    const prefix = nextPrefix();
    const d = discovery(prefix);
    const r = record(d);
    await d.start();
    const seed = Number(process.env.DISCOVERY_SEED ?? Date.now() % 100_000);
    const ops = new RandomOps(client, prefix, seed);
    for (let i = 0; i < 200; i++) await ops.next()();
    await waitFor(() => r.updates.length >= ops.expectedUpdates && r.deletes.length >= ops.expectedDeletes, {
      timeoutMs: 10_000,
      what: `callbacks (seed ${seed})`,
    });
    await sleep(200);
    await assertConverged(d, client, prefix, r);
    assert.equal(r.updates.length, ops.expectedUpdates, `updates (seed ${seed})`);
    assert.equal(r.deletes.length, ops.expectedDeletes, `deletes (seed ${seed})`);
    assert.equal(d.listControllers().length, ops.model.size);
    assert.deepEqual(
      r.resyncs.map((x) => x.reason),
      ['initial'],
    );
  });

  it('converges after a compaction while running, and after one while its watch is behind', async () => {
    // (a) compaction while the watch is caught up: etcd keeps the watch, nothing is lost.
    const prefix = nextPrefix();
    const d = discovery(prefix);
    const r = record(d);
    await d.start();
    const ops = new RandomOps(client, prefix, 42);
    for (let i = 0; i < 60; i++) await ops.next()();
    await etcd.compact();
    for (let i = 0; i < 60; i++) await ops.next()();
    await assertConverged(d, client, prefix, r);
    if (r.resyncs.length === 1) {
      assert.equal(r.updates.length, ops.expectedUpdates);
      assert.equal(r.deletes.length, ops.expectedDeletes);
    }

    // (b) the watch starts behind a compaction: changes land between the snapshot and the watch,
    // then etcd compacts past the snapshot. The watch is cancelled; discovery must resync and
    // call back only for what really changed.
    const p2 = nextPrefix();
    const put = (rel: string, v: string) => client.put(p2 + rel).value(v);
    const vA = value('x', 'A');
    const vD = value('x', 'D');
    const vE = value('x', 'E');
    await put('x/A', vA);
    await put('x/B', value('x', 'B'));
    await put('x/D', vD);
    await put('x/E', vE);
    await put('x/F', 'garbage');
    let hookCalls = 0;
    const d2 = discovery(p2, {
      afterSnapshot: async () => {
        if (hookCalls++ > 0) return;
        await put('x/A', value('x', 'A', { agent_count: 5 })); // changed
        await client.delete().key(`${p2}x/B`); // deleted
        await put('x/C', value('x', 'C')); // new
        await put('x/D', vD); // identical bytes
        await put('x/E', JSON.stringify(JSON.parse(vE), null, 2)); // same value, other bytes
        await put('x/F', 'still garbage');
        await etcd.compact();
      },
    });
    const r2 = record(d2);
    await d2.start();
    await waitFor(() => r2.resyncs.length >= 2, { what: 'resync after compaction' });
    await assertConverged(d2, client, p2, r2);
    assert.deepEqual(
      r2.resyncs.map((x) => x.reason),
      ['initial', 'canceled'],
    );
    // Initial snapshot: A, B, D, E. The resync: only A (changed), C (new) and B (deleted).
    const changedAt = r2.resyncs[0]!.updated;
    assert.deepEqual(
      r2.updates
        .slice(0, changedAt)
        .map((c) => c.id)
        .sort(),
      ['A', 'B', 'D', 'E'],
    );
    assert.deepEqual(
      r2.updates
        .slice(changedAt)
        .map((c) => c.id)
        .sort(),
      ['A', 'C'],
    );
    assert.deepEqual(r2.deletes, ['x/B']);
    assert.equal(r2.resyncs[1]!.updated, 2);
    assert.equal(r2.resyncs[1]!.deleted, 1);
    assert.equal(d2.getController('x', 'A')!.agent_count, 5);
  });

  it('reports only online controllers; stale heartbeats go offline (and back)', async () => {
    const prefix = nextPrefix();
    const minuteAgo = new Date(Date.now() - 60_000).toISOString();
    // Written before start: the snapshot cannot tell when, so only the heartbeat counts.
    await client.put(`${prefix}old/c1`).value(value('old', 'c1', { last_heartbeat: minuteAgo }));
    await client
      .put(`${prefix}multi/c1`)
      .value(value('multi', 'c1', { last_heartbeat: new Date(Date.now() - 500).toISOString() }));
    await client.put(`${prefix}multi/c2`).value(value('multi', 'c2'));
    const d = discovery(prefix, { staleAfterMs: 1500, statusCheckIntervalMs: 50 });
    const r = record(d);
    await d.start();

    assert.equal(d.getController('old', 'c1')!.status, 'offline');
    assert.throws(() => d.getControllerByArea('old'), ControllerUnavailableError);
    assert.throws(
      () => d.getControllerByArea('nowhere'),
      (e: unknown) => e instanceof ControllerUnavailableError && e.area === 'nowhere',
    );
    assert.equal(d.getControllerByArea('multi').id, 'c2', 'the freshest heartbeat wins');

    // Written while watching with a stale heartbeat (controller clock behind): online for
    // staleAfterMs after the put was seen, then offline with an update callback.
    await client.put(`${prefix}skew/c1`).value(value('skew', 'c1', { last_heartbeat: minuteAgo }));
    await waitFor(() => d.getController('skew', 'c1'));
    assert.equal(d.getControllerByArea('skew').id, 'c1');
    await waitFor(() => r.updates.some((c) => c.area === 'skew' && c.status === 'offline'), {
      timeoutMs: 4000,
      what: 'offline flip',
    });
    assert.throws(() => d.getControllerByArea('skew'), ControllerUnavailableError);

    // Every controller goes stale without refreshes; a refresh brings one back.
    await waitFor(() => d.listControllers().every((c) => c.status === 'offline'), { timeoutMs: 4000 });
    assert.throws(() => d.getControllerByArea('multi'), ControllerUnavailableError);
    await client.put(`${prefix}multi/c1`).value(value('multi', 'c1'));
    await waitFor(() => d.getController('multi', 'c1')?.status === 'online');
    assert.equal(d.getControllerByArea('multi').id, 'c1');
    const flips = r.updates.filter((c) => c.area === 'multi' && c.id === 'c1').map((c) => c.status);
    assert.deepEqual(flips, ['online', 'offline', 'online']);
    assert.deepEqual(r.violations, []);
  });

  it('skips bad values with a logged warning and never crashes', async () => {
    const prefix = nextPrefix();
    const { logger, lines } = captureLogs();
    await client.put(`${prefix}pre/bad`).value('{{{');
    const d = discovery(prefix, { logger });
    const r = record(d);
    await d.start();
    const bad: Array<[string, string]> = [
      [`${prefix}a/notjson`, 'not json'],
      [`${prefix}a/missing`, JSON.stringify({ id: 'missing', area: 'a' })],
      [`${prefix}a/b/c`, value('a', 'b')],
      [`${prefix}x`, value('x', 'x')],
      [`${prefix}a/mismatch`, value('a', 'other')],
      [`${prefix}a/..`, value('a', '..')],
      [`${prefix}a/neg`, value('a', 'neg', { agent_count: -1 })],
    ];
    for (const [k, v] of bad) await client.put(k).value(v);
    await client.put(`${prefix}a/good`).value(value('a', 'good'));
    await waitFor(() => d.getController('a', 'good'), { what: 'the good controller' });
    assert.deepEqual(
      d.listControllers().map((c) => c.id),
      ['good'],
    );
    const warned = lines
      .filter((l) => l.level === 40 && typeof l.key === 'string')
      .map((l) => l.key as string);
    for (const k of [`${prefix}pre/bad`, ...bad.map(([k]) => k)])
      assert.ok(warned.includes(k), `warned about ${k}`);
    assert.ok(lines.some((l) => String(l.reason).includes('not JSON')));
    assert.ok(lines.some((l) => String(l.reason).includes("names 'a/other'")));

    // A valid key that turns invalid is a delete; back to valid is an update.
    await client.put(`${prefix}a/good`).value('oops');
    await waitFor(() => r.deletes.includes('a/good'), { what: 'delete on invalid value' });
    await client.put(`${prefix}a/good`).value(value('a', 'good'));
    await waitFor(() => d.getController('a', 'good'));
    // Deleting bad keys is silent.
    for (const [k] of bad) await client.delete().key(k);
    await sleep(100);
    assert.deepEqual(r.deletes, ['a/good']);
    assert.deepEqual(r.violations, []);
    assert.equal(d.stats().running, true);
  });

  it('stop() leaves nothing behind: a process using discovery exits by itself', async () => {
    const platformDir = fileURLToPath(new URL('../..', import.meta.url));
    const script = `
      import { Etcd3 } from 'etcd3';
      import { ControllerDiscovery } from '@opsplane/platform';
      const [endpoint, mode] = process.argv.slice(1);
      const client = new Etcd3({ hosts: endpoint });
      const d = new ControllerDiscovery(client, 'noexit/', { startTimeoutMs: 0 });
      let seen = false;
      d.onControllerUpdate(() => { seen = true; });
      console.log('loaded');
      if (mode === 'live') {
        await d.start();
        console.log('started');
        await client.put('noexit/a/c1').value(JSON.stringify({ id: 'c1', area: 'a', address: 'h:1',
          start_time: '2024-01-15T10:30:00Z', last_heartbeat: new Date().toISOString() }));
        while (!seen) await new Promise((r) => setTimeout(r, 10));
      } else {
        void d.start().catch(() => {});
        await new Promise((r) => setTimeout(r, 800)); // retrying against nothing
      }
      await d.stop();
      console.log('stopped');
      client.close();
      const t = Date.now();
      process.on('exit', () => console.log('exited-after-ms', Date.now() - t));
      setTimeout(() => {
        console.log('STILL-ALIVE', JSON.stringify(process.getActiveResourcesInfo()));
        process.exit(3);
      }, 5000).unref();
    `;
    const run = (endpoint: string, mode: string) =>
      new Promise<{ code: number | null; out: string }>((resolve) => {
        const child = spawn(process.execPath, ['--input-type=module', '-e', script, endpoint, mode], {
          cwd: platformDir,
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
    const live = await run(etcd.endpoints[0]!, 'live');
    assert.equal(live.code, 0, live.out);
    const exitMs = Number(/exited-after-ms (\d+)/.exec(live.out)?.[1]);
    assert.ok(exitMs < 2000, `exited ${exitMs} ms after stop() + close(): ${live.out}`);
    const dead = await run('http://127.0.0.1:1', 'dead');
    assert.equal(dead.code, 0, dead.out);
  });
});

describe('ControllerDiscovery across etcd outages', { timeout: 60_000 }, () => {
  const cleanups: Array<() => Promise<unknown> | unknown> = [];
  after(async () => {
    for (const c of cleanups.reverse()) await c();
  });

  it('converges when etcd is killed and restarted in the middle of 200 operations', async () => {
    const etcd = await startEtcd();
    cleanups.push(() => etcd.stop());
    const client = new Etcd3({ hosts: etcd.endpoints });
    cleanups.push(() => client.close());
    const prefix = 'controllers/';
    const d = new ControllerDiscovery(client, prefix, { logger: captureLogs().logger, maxBackoffMs: 500 });
    cleanups.push(() => d.stop());
    const r = record(d);
    const errors: Error[] = [];
    d.on('error', (e) => errors.push(e));
    await d.start();
    const ops = new RandomOps(client, prefix, 7);
    for (let i = 0; i < 100; i++) await ops.next()();
    await waitFor(() => d.listControllers().length === ops.model.size);

    await etcd.kill();
    await sleep(700); // discovery notices and retries against a dead etcd
    await etcd.restart();
    // Writes right after the restart, while discovery may still be reconnecting: its resync
    // has to find them in the diff. etcdctl, not the client, so that the client's breaker
    // state cannot delay them.
    for (let i = 0; i < 10; i++) {
      const rel = `a${i % 3}/c${i}`;
      const v = value(rel.split('/')[0]!, `c${i}`, { agent_count: 100 + i });
      await etcd.etcdctl(['put', prefix + rel, v]);
    }
    await etcd.etcdctl(['del', `${prefix}a1/c1`]);
    for (let i = 0; i < 80; i++) await retrying(ops.next());
    await assertConverged(d, client, prefix, r);
    assert.ok(
      r.resyncs.some((x) => x.reason === 'disconnected'),
      `resyncs: ${JSON.stringify(r.resyncs.map((x) => x.reason))}`,
    );
    assert.ok(errors.length > 0, 'etcd failures were reported as error events');
  });

  it('keeps working in a 3-member cluster while members are killed one at a time', async () => {
    const cluster = await startEtcdCluster(3);
    cleanups.push(() => cluster.stop());
    const client = new Etcd3({ hosts: cluster.endpoints });
    cleanups.push(() => client.close());
    const prefix = 'controllers/';
    const d = new ControllerDiscovery(client, prefix, { logger: captureLogs().logger, maxBackoffMs: 500 });
    cleanups.push(() => d.stop());
    const r = record(d);
    await d.start();
    for (let i = 0; i < cluster.members.length; i++) {
      const m = cluster.members[i]!;
      await m.kill();
      await cluster.waitHealthy();
      const live = cluster.members.filter((x) => x.running).map((x) => x.clientUrl);
      await cluster.etcdctl(['put', `${prefix}area-${i}/ctl`, value(`area-${i}`, 'ctl')], {
        endpoints: live,
      });
      if (i > 0) await cluster.etcdctl(['del', `${prefix}area-${i - 1}/ctl`], { endpoints: live });
      await waitFor(() => d.getController(`area-${i}`, 'ctl') && !d.getController(`area-${i - 1}`, 'ctl'), {
        timeoutMs: 15_000,
        what: `discovery to follow writes with member ${m.name} down`,
      });
      await m.restart();
      await cluster.waitHealthy();
    }
    await assertConverged(d, client, prefix, r);
    // Each member was down once, so the watch's member was among them: at least one resync.
    assert.ok(
      r.resyncs.some((x) => x.reason === 'disconnected'),
      JSON.stringify(r.resyncs),
    );
    assert.deepEqual(
      d.listControllers().map((c) => c.area),
      ['area-2'],
    );
  });
});
