/**
 * Agent deployment end to end on real parts: OpenSSH servers in network namespaces (one address
 * each), real etcd and a controller reachable from those namespaces, the platform server, and the
 * real agent bundle unpacked and started on each host. Covers install on several hosts at once
 * with the typical failures next to them (wrong password, unreachable, host key changed, disk
 * full, sudo refused), a system install through sudo, upgrade and downgrade with the atomic
 * `current` switch, restart, uninstall, rolling upgrades with a failure budget, cancel, retry,
 * and the live event stream.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, readlinkSync } from 'node:fs';
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { packAgentBundle } from '@opsplane/agent';
import {
  defaultCliMain,
  spawnTracked,
  startFleet,
  startServerProcess,
  skipUnlessAvailable,
  sshHostsDependency,
  startSshHosts,
  tempDir,
  waitFor,
  type Fleet,
  type SshHost,
  type SshHosts,
} from '@opsplane/test-support';
import type { Deployment, Rollout } from '@opsplane/api';
import { startTestServer, type TestServer } from './helpers.js';

const AREA = 'area-1';
const SECRET = 'deploy-test-area-secret-0123456789';

interface DeviceSpec {
  name: string;
  host: SshHost;
  user: 'password' | 'key' | 'keyWithPassphrase';
  password?: string;
  port?: number;
  metadata?: Record<string, string>;
}

// Root and sshd: skipped without them locally, failed under CI.
const skip = skipUnlessAvailable(sshHostsDependency());

describe('agent deployment over SSH (real sshd hosts)', { timeout: 600_000, skip }, () => {
  let hosts: SshHosts;
  let sudoHosts: SshHosts;
  let fleet: Fleet;
  let t: TestServer;
  let work: { path: string; cleanup(): Promise<void> };
  let tiny: string;
  const ids = new Map<string, string>();

  const op = () => ({ auth: t.users.operator.token });
  const homeOf = (h: SshHost, user: DeviceSpec['user']) => join(h.dir, 'home', h.users[user]!.username);

  async function addDevice(d: DeviceSpec): Promise<void> {
    const u = d.host.users[d.user]!;
    const login: Record<string, unknown> = { username: u.username, port: d.port ?? d.host.port };
    if ('password' in u) login.password = d.password ?? u.password;
    if ('privateKey' in u) login.private_key = u.privateKey;
    if ('passphrase' in u && u.passphrase) login.passphrase = u.passphrase;
    const r = await t.call<{ id: string }>('POST', '/api/v1/devices', {
      auth: t.users.admin.token,
      body: {
        name: d.name,
        ip: d.host.address,
        function_area: AREA,
        os: 'linux',
        login,
        metadata: d.metadata ?? {},
      },
    });
    assert.equal(r.status, 201, r.text);
    ids.set(d.name, r.json.id);
  }

  async function deploy(body: Record<string, unknown>): Promise<Rollout> {
    const r = await t.call<Rollout>('POST', '/api/v1/deployments', { ...op(), body });
    assert.equal(r.status, 202, r.text);
    return r.json;
  }

  async function settled(rolloutId: string, timeoutMs = 180_000): Promise<Rollout> {
    let last: Rollout | undefined;
    await waitFor(
      async () => {
        last = (await t.call<Rollout>('GET', `/api/v1/rollouts/${rolloutId}`, op())).json;
        return last.status !== 'running';
      },
      { timeoutMs, intervalMs: 300, what: `rollout ${rolloutId} to finish` },
    );
    return last!;
  }

  const byDevice = (r: Rollout) => new Map(r.deployments.map((d) => [d.device_name, d]));
  const agentVersion = async (name: string) => {
    const dev = (await t.call<{ agent_code: string }>('GET', `/api/v1/devices/${ids.get(name)}`, op())).json;
    const a = await t.call<{ status: string; version: string; register_time: string }>(
      'GET',
      `/api/v1/agents/by-code/${dev.agent_code}`,
      op(),
    );
    return a.status === 200 ? a.json : undefined;
  };

  before(async () => {
    work = await tempDir('opsplane-deploy-test-');
    await chmod(work.path, 0o755); // the test users reach their install dirs below it
    // A tiny filesystem for the disk-full case, writable by that device's user. Mounted before
    // the hosts start: `ip netns exec` gives each sshd its own mount namespace, copied at start.
    tiny = join(work.path, 'tiny');
    await mkdir(tiny);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=256k,mode=0777', 'tmpfs', tiny]);
    hosts = await startSshHosts(7);
    sudoHosts = await startSshHosts(1, { sudoUser: true, keyWithPassphrase: false });
    fleet = await startFleet({
      areas: [{ name: AREA, controllers: 1, agents: 0 }],
      secrets: { [AREA]: SECRET },
      controllerAddress: hosts.machineAddress,
    });
    const bundlesDir = join(work.path, 'bundles');
    await mkdir(bundlesDir, { recursive: true });
    await packAgentBundle({ version: '1.0.0', outDir: bundlesDir });
    await packAgentBundle({ version: '2.0.0', outDir: bundlesDir });
    t = await startTestServer('pglite', {
      etcd: fleet.etcd.endpoints,
      areas: { [AREA]: { agent_secret: SECRET } },
      server: {
        deploy: {
          bundles_dir: bundlesDir,
          online_timeout: '30s',
          lease_ttl: '5s',
          poll_interval: '300ms',
          // Generous: five handshakes at once on a loaded 2-core machine took over 5 s (nothing here waits on it).
          connect_timeout: '20s',
        },
      },
    });

    // A "node" that is too old for the bundle.
    const oldNode = join(work.path, 'old-node');
    await writeFile(oldNode, '#!/bin/sh\necho v18.19.0\n', { mode: 0o755 });
    const [h0, h1, h2, h3, h4, h5, h6] = hosts.hosts as [
      SshHost,
      SshHost,
      SshHost,
      SshHost,
      SshHost,
      SshHost,
      SshHost,
    ];
    const user = { install_scope: 'user' };
    const specs: DeviceSpec[] = [
      { name: 'ok-0', host: h0, user: 'key', metadata: user },
      { name: 'ok-1', host: h1, user: 'password', metadata: user },
      { name: 'ok-2', host: h2, user: 'keyWithPassphrase', metadata: user },
      { name: 'ok-3', host: h3, user: 'key', metadata: user },
      { name: 'ok-4', host: h4, user: 'password', metadata: user },
      { name: 'bad-password', host: h5, user: 'password', password: 'not-the-password', metadata: user },
      { name: 'unreachable', host: h5, user: 'key', port: 2222, metadata: user },
      {
        name: 'disk-full',
        host: h5,
        user: 'key',
        metadata: { install_scope: 'user', install_dir: `${tiny}/agent` },
      },
      { name: 'sudo-refused', host: h5, user: 'keyWithPassphrase' },
      { name: 'key-changed', host: h6, user: 'key', metadata: user },
      {
        name: 'no-node',
        host: h5,
        user: 'key',
        metadata: { ...user, node_path: '/opt/no-such-node/bin/node' },
      },
      { name: 'old-node', host: h5, user: 'key', metadata: { ...user, node_path: oldNode } },
    ];
    if (sudoHosts.hosts[0]!.sudo) {
      specs.push({
        name: 'via-sudo',
        host: sudoHosts.hosts[0]!,
        user: 'key',
        metadata: { install_dir: join(work.path, 'system-install', 'agent') },
      });
    }
    for (const s of specs) await addDevice(s);
    // The platform saw this device before, with another key: what a man in the middle would look like.
    await t.server.store.hostKeys.record(
      `device:${ids.get('key-changed')}`,
      'SHA256:bm90LXRoZS1yZWFsLWtleS1maW5nZXJwcmludA',
    );
  });

  after(async () => {
    await t?.stop();
    await fleet?.stop();
    await hosts?.stop();
    await sudoHosts?.stop();
    if (tiny) execFileSync('umount', ['-l', tiny], { stdio: 'ignore' });
    await work?.cleanup();
  });

  it('installs on five hosts at once; each failing device fails with its reason and the rest go on', async () => {
    const names = [...ids.keys()];
    const rollout = await deploy({ type: 'install', devices: names, version: '1.0.0', batch_size: 20 });
    assert.equal(rollout.deployments.length, names.length);
    const done = await settled(rollout.id);
    const d = byDevice(done);
    const okNames = ['ok-0', 'ok-1', 'ok-2', 'ok-3', 'ok-4', ...(ids.has('via-sudo') ? ['via-sudo'] : [])];
    for (const n of okNames) {
      const dep = d.get(n)!;
      assert.equal(dep.status, 'succeeded', `${n}: ${dep.error}`);
      assert.ok(dep.duration_ms !== null && dep.duration_ms > 0, `${n} duration`);
      assert.ok(
        dep.steps.every((s) => s.status === 'succeeded' && s.started_at && s.finished_at),
        `${n} steps: ${JSON.stringify(dep.steps)}`,
      );
      const agent = await agentVersion(n);
      assert.equal(agent?.status, 'online', n);
      assert.equal(agent?.version, '1.0.0', n);
      const dev = (
        await t.call<{ status: string; agent_version: string }>('GET', `/api/v1/devices/${ids.get(n)}`, op())
      ).json;
      assert.deepEqual([dev.status, dev.agent_version], ['online', '1.0.0'], n);
    }
    const expectFail: Record<string, string> = {
      'bad-password': 'ssh_auth_failed',
      unreachable: 'ssh_unreachable',
      'disk-full': 'disk_full',
      'sudo-refused': 'ssh_sudo_refused',
      'key-changed': 'ssh_host_key_changed',
      'no-node': 'node_missing',
      'old-node': 'node_missing',
    };
    for (const [n, code] of Object.entries(expectFail)) {
      const dep = d.get(n)!;
      assert.equal(dep.status, 'failed', n);
      assert.equal(dep.error_code, code, `${n}: ${dep.error}`);
      assert.ok(dep.error && dep.error.length > 10, n);
      assert.ok(!dep.error.includes('not-the-password'), 'no secret in errors');
      const dev = (await t.call<{ status: string }>('GET', `/api/v1/devices/${ids.get(n)}`, op())).json;
      assert.equal(dev.status, 'failed', n);
    }
    assert.equal(done.status, 'failed');
    assert.equal(done.counts.succeeded, okNames.length);
    assert.equal(done.counts.failed, Object.keys(expectFail).length);
    assert.match(d.get('old-node')!.error ?? '', /v18\.19\.0/);

    // Every step is in the log with a timestamp.
    const one = (await t.call<Deployment>('GET', `/api/v1/deployments/${d.get('ok-0')!.id}`, op())).json;
    for (const step of [
      'connect',
      'detect',
      'check',
      'upload',
      'configure',
      'activate',
      'service',
      'start',
      'wait_online',
    ]) {
      assert.ok(
        one.log?.some(
          (l) => l.step === step && /succeeded/.test(l.message) && !Number.isNaN(Date.parse(l.at)),
        ),
        step,
      );
    }
    // The agent runs from versions/1.0.0 through the `current` link, as the login user.
    const root = join(homeOf(hosts.hosts[0]!, 'key'), '.opsplane', 'agent');
    assert.equal(readlinkSync(join(root, 'current')), 'versions/1.0.0');
    if (ids.has('via-sudo')) {
      assert.equal(readlinkSync(join(work.path, 'system-install', 'agent', 'current')), 'versions/1.0.0');
    }
  });

  it('installs where the host key changed once the operator accepts the new key', async () => {
    const r = await settled(
      (await deploy({ type: 'install', devices: ['key-changed'], accept_changed_host_key: true })).id,
    );
    assert.equal(r.deployments[0]!.status, 'succeeded', r.deployments[0]!.error ?? '');
    assert.equal(
      await t.server.store.hostKeys.get(`device:${ids.get('key-changed')}`),
      hosts.hosts[6]!.hostKeyFingerprint,
    );
  });

  it('deploys through a jump host (another device) when the target is reachable only from it', async () => {
    const [h0, h6] = [hosts.hosts[0]!, hosts.hosts[6]!];
    if (hosts.mode === 'netns') {
      // A direct link between the two namespaces, with host routes: h0 reaches h6 over it, so
      // h6's sshd sees the session come from h0's address.
      const id = randomBytes(2).toString('hex');
      execFileSync('ip', [
        'link',
        'add',
        `dj${id}a`,
        'netns',
        h0.ns!,
        'type',
        'veth',
        'peer',
        'name',
        `dj${id}b`,
        'netns',
        h6.ns!,
      ]);
      execFileSync('ip', ['-n', h0.ns!, 'link', 'set', `dj${id}a`, 'up']);
      execFileSync('ip', ['-n', h6.ns!, 'link', 'set', `dj${id}b`, 'up']);
      execFileSync('ip', ['-n', h0.ns!, 'route', 'add', `${h6.address}/32`, 'dev', `dj${id}a`]);
      execFileSync('ip', ['-n', h6.ns!, 'route', 'add', `${h0.address}/32`, 'dev', `dj${id}b`]);
    }
    await addDevice({
      name: 'via-jump',
      host: h6,
      user: 'password',
      metadata: { install_scope: 'user', jump_host: 'ok-0' },
    });
    const r = await settled((await deploy({ type: 'install', devices: ['via-jump'] })).id);
    assert.equal(r.deployments[0]!.status, 'succeeded', r.deployments[0]!.error ?? '');
    assert.equal((await agentVersion('via-jump'))?.status, 'online');
    const user = h6.users.password.username;
    if (hosts.mode === 'netns') {
      assert.match(
        h6.output(),
        new RegExp(`Accepted password for ${user} from ${h0.address.replace(/\./g, '\\.')} `),
      );
    }
    const missing = await t.call<{ id: string }>('POST', '/api/v1/devices', {
      auth: t.users.admin.token,
      body: {
        name: 'jump-to-nowhere',
        ip: h6.address,
        function_area: AREA,
        os: 'linux',
        login: { username: user, password: h6.users.password.password },
        metadata: { install_scope: 'user', jump_host: 'no-such-device' },
      },
    });
    assert.equal(missing.status, 201);
    ids.set('jump-to-nowhere', missing.json.id);
    const bad = await settled((await deploy({ type: 'restart', devices: ['jump-to-nowhere'] })).id);
    assert.equal(bad.deployments[0]!.error_code, 'device_not_found');
  });

  it('upgrades to v2 and back to v1, switching `current` atomically and keeping the previous version', async () => {
    const up = await settled(
      (await deploy({ type: 'upgrade', devices: ['ok-0', 'ok-1'], version: '2.0.0' })).id,
    );
    for (const dep of up.deployments)
      assert.equal(dep.status, 'succeeded', `${dep.device_name}: ${dep.error}`);
    assert.equal((await agentVersion('ok-0'))?.version, '2.0.0');
    const root = join(homeOf(hosts.hosts[0]!, 'key'), '.opsplane', 'agent');
    assert.equal(readlinkSync(join(root, 'current')), 'versions/2.0.0');
    assert.equal(readlinkSync(join(root, 'previous')), 'versions/1.0.0');

    const down = await settled((await deploy({ type: 'upgrade', devices: ['ok-0'], version: '1.0.0' })).id);
    assert.equal(down.deployments[0]!.status, 'succeeded', down.deployments[0]!.error ?? '');
    assert.equal((await agentVersion('ok-0'))?.version, '1.0.0');
    assert.equal(readlinkSync(join(root, 'current')), 'versions/1.0.0');
    assert.equal(readlinkSync(join(root, 'previous')), 'versions/2.0.0');
    const dev = (await t.call<{ agent_version: string }>('GET', `/api/v1/devices/${ids.get('ok-0')}`, op()))
      .json;
    assert.equal(dev.agent_version, '1.0.0');
  });

  it('restarts an agent: a new process connects again', async () => {
    const pidFile = join(homeOf(hosts.hosts[3]!, 'key'), '.opsplane', 'agent', 'run', 'supervisor.pid');
    const before = readFileSync(pidFile, 'utf8').trim();
    const r = await settled((await deploy({ type: 'restart', devices: ['ok-3'] })).id);
    assert.equal(r.deployments[0]!.status, 'succeeded', r.deployments[0]!.error ?? '');
    assert.notEqual(readFileSync(pidFile, 'utf8').trim(), before);
    assert.equal((await agentVersion('ok-3'))?.status, 'online');
  });

  it('uninstalls: no service, no files, no agent process, device marked uninstalled', async () => {
    const r = await settled((await deploy({ type: 'uninstall', devices: ['ok-2'] })).id);
    assert.equal(r.deployments[0]!.status, 'succeeded', r.deployments[0]!.error ?? '');
    const h = hosts.hosts[2]!;
    assert.equal(existsSync(join(homeOf(h, 'keyWithPassphrase'), '.opsplane', 'agent')), false);
    let procs = '';
    try {
      procs = execFileSync('ps', ['-U', h.users.keyWithPassphrase!.username, '-o', 'args='], {
        encoding: 'utf8',
      });
    } catch {
      // ps exits 1 when the user has no process at all
    }
    assert.ok(!/agent\.mjs|opsplane-agentctl/.test(procs), procs);
    const dev = (
      await t.call<{ status: string; agent_version: string }>(
        'GET',
        `/api/v1/devices/${ids.get('ok-2')}`,
        op(),
      )
    ).json;
    assert.deepEqual([dev.status, dev.agent_version], ['uninstalled', '']);
  });

  it('stops a rolling upgrade at its failure budget and cancels the rest', async () => {
    const r = await settled(
      (
        await deploy({
          type: 'upgrade',
          devices: ['bad-password', 'ok-3', 'ok-4'],
          version: '2.0.0',
          batch_size: 1,
          max_failures: 1,
        })
      ).id,
    );
    assert.equal(r.status, 'stopped');
    const d = byDevice(r);
    assert.equal(d.get('bad-password')!.status, 'failed');
    assert.equal(d.get('ok-3')!.status, 'cancelled');
    assert.equal(d.get('ok-4')!.status, 'cancelled');
    assert.match(d.get('ok-3')!.error ?? '', /stopped after 1 failure/);
    assert.equal((await agentVersion('ok-3'))?.version, '1.0.0', 'not touched');
  });

  it('refuses a second deployment for a busy device, cancels a queued one, and retries it', async () => {
    const r = await deploy({ type: 'restart', devices: ['ok-3', 'ok-4'], batch_size: 1 });
    const busy = await t.call<{ error: { code: string } }>('POST', '/api/v1/deployments', {
      ...op(),
      body: { type: 'restart', devices: ['ok-4'] },
    });
    assert.equal(busy.status, 409);
    assert.equal(busy.json.error.code, 'deployment_in_progress');
    const second = r.deployments.find((x) => x.device_name === 'ok-4')!;
    const c = await t.call<Deployment>('POST', `/api/v1/deployments/${second.id}/cancel`, op());
    assert.equal(c.status, 200, c.text);
    const done = await settled(r.id);
    assert.equal(byDevice(done).get('ok-4')!.status, 'cancelled');
    assert.equal(byDevice(done).get('ok-3')!.status, 'succeeded');
    const retry = await t.call<Deployment>('POST', `/api/v1/deployments/${second.id}/retry`, op());
    assert.equal(retry.status, 202, retry.text);
    assert.equal(retry.json.retry_of, second.id);
    const again = await settled(retry.json.rollout_id);
    assert.equal(again.deployments[0]!.status, 'succeeded', again.deployments[0]!.error ?? '');
  });

  it('streams a deployment as Server-Sent Events', async () => {
    const r = await deploy({ type: 'restart', devices: ['ok-1'] });
    const id = r.deployments[0]!.id;
    const res = await fetch(`${t.url}/api/v1/deployments/${id}/events`, {
      headers: { authorization: `Bearer ${t.users.viewer.token.token}` },
    });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /text\/event-stream/);
    const text = await res.text(); // the server closes the stream after `end`
    assert.match(text, /^event: deployment$/m);
    assert.match(text, /^event: log$/m);
    assert.match(text, /^id: \d+$/m);
    const end = /event: end\ndata: (.*)\n/.exec(text);
    assert.ok(end, text.slice(-500));
    assert.equal((JSON.parse(end[1]!) as Deployment).status, 'succeeded');
    const unauth = await fetch(`${t.url}/api/v1/deployments/${id}/events`);
    assert.equal(unauth.status, 401);
  });

  it('loses no deployment when the server is SIGKILLed mid-deployment: the next start resumes it', async () => {
    // A server of its own, as a process (opsplane server) on an embedded database, so it can be killed.
    const server = await startServerProcess({
      dir: join(work.path, 'killed-server'),
      etcdEndpoints: fleet.etcd.endpoints,
      areas: { [AREA]: { agent_secret: SECRET } },
      server: { deploy: { online_timeout: '30s', lease_ttl: '5s', poll_interval: '300ms' } },
      adminPassword: 'resume-test-admin-password',
    });
    try {
      const cookie = await server.login();
      const call = <T>(method: string, path: string, body?: unknown) =>
        server.call<T>(cookie, method, path.replace(/^\/api\/v1/, ''), body);
      const targets: [string, SshHost][] = [
        ['resume-a', hosts.hosts[3]!],
        ['resume-b', hosts.hosts[4]!],
      ];
      for (const [name, h] of targets) {
        const u = h.users.keyWithPassphrase!;
        const r = await call('POST', '/api/v1/devices', {
          name,
          ip: h.address,
          function_area: AREA,
          os: 'linux',
          login: { username: u.username, private_key: u.privateKey, passphrase: u.passphrase },
          metadata: { install_scope: 'user' },
        });
        assert.equal(r.status, 201, JSON.stringify(r.json));
      }
      const created = await call<Rollout>('POST', '/api/v1/deployments', {
        type: 'install',
        devices: targets.map(([n]) => n),
      });
      assert.equal(created.status, 202, JSON.stringify(created.json));
      // Kill it once a deployment is past its first steps.
      await waitFor(
        async () => {
          const r = await call<Rollout>('GET', `/api/v1/rollouts/${created.json.id}`);
          return r.json.deployments.some(
            (d) =>
              d.status === 'running' && d.steps.some((x) => x.name === 'upload' && x.status !== 'pending'),
          );
        },
        { timeoutMs: 60_000, intervalMs: 20, what: 'a deployment to reach its upload step' },
      );
      await server.kill();
      await server.restart();
      let last: Rollout | undefined;
      await waitFor(
        async () => {
          last = (await call<Rollout>('GET', `/api/v1/rollouts/${created.json.id}`)).json;
          return last.status !== 'running';
        },
        { timeoutMs: 120_000, intervalMs: 300, what: 'the resumed rollout to finish' },
      );
      assert.equal(last!.deployments.length, 2, 'no deployment lost');
      for (const d of last!.deployments) {
        assert.equal(d.status, 'succeeded', `${d.device_name}: ${d.error}`);
      }
      assert.ok(
        last!.deployments.some((d) => d.attempt >= 2),
        'one was resumed',
      );
      const running = await call<{ total: number }>('GET', '/api/v1/deployments?status=running');
      assert.equal(running.json.total, 0, 'nothing stuck in running');
      const resumed = last!.deployments.find((d) => d.attempt >= 2)!;
      const full = await call<Deployment>('GET', `/api/v1/deployments/${resumed.id}`);
      assert.ok(full.json.log?.some((l) => /resumed after the server/.test(l.message)));
    } finally {
      await server.stop();
    }
  });

  it('is driven from the CLI: opsplane deploy, deployments watch/list', async () => {
    const env = {
      ...process.env,
      OPSPLANE_SERVER: t.url,
      OPSPLANE_TOKEN: t.users.operator.token.token!,
      NO_COLOR: '1',
    };
    const cli = (args: string[]) =>
      new Promise<{ code: number | null; out: string }>((resolve) => {
        const p = spawnTracked('cli', process.execPath, [defaultCliMain(), ...args], { env });
        void p.exited.then((e) => resolve({ code: e.code, out: p.output() }));
      });
    const restart = await cli(['deploy', 'restart', '--devices', 'ok-1,ok-4']);
    assert.equal(restart.code, 0, restart.out);
    assert.match(restart.out, /^ok-1: succeeded 4\/4$/m);
    assert.match(restart.out, /^ok-4: succeeded 4\/4$/m);
    assert.match(restart.out, /succeeded: 2 of 2 device\(s\) succeeded/);
    const list = await cli(['deployments', 'list', '--device', 'ok-1', '--json']);
    assert.equal(list.code, 0, list.out);
    const items = (JSON.parse(list.out) as { items: Deployment[] }).items;
    assert.ok(items.length >= 2 && items.every((d) => d.device_name === 'ok-1'));
    const watch = await cli(['deployments', 'watch', items[0]!.id]);
    assert.equal(watch.code, 0, watch.out);
    assert.match(watch.out, /wait_online: succeeded/);
    const failed = await cli(['deploy', 'install', '--devices', 'bad-password']);
    assert.equal(failed.code, 1, failed.out);
    assert.match(failed.out, /ssh_auth_failed|authentication failed/i);
  });

  it('selects devices by area and by status new', async () => {
    const byArea = await deploy({ type: 'restart', area: AREA, batch_size: 20 });
    assert.deepEqual(byArea.deployments.map((d) => d.device_name).sort(), [...ids.keys()].sort());
    await settled(byArea.id);
    const none = await deploy({ type: 'restart', area: 'area-without-devices' });
    assert.deepEqual([none.status, none.deployments.length], ['succeeded', 0]);
    // A device never deployed, in an area the server has no agent secret for: refused up front.
    const fresh = await t.call('POST', '/api/v1/devices', {
      auth: t.users.admin.token,
      body: {
        name: 'never-deployed',
        ip: '192.0.2.10',
        function_area: 'area-9',
        os: 'linux',
        login: { username: 'x', password: 'y' },
      },
    });
    assert.equal(fresh.status, 201, fresh.text);
    const refused = await t.call<{ error: { code: string; message: string } }>(
      'POST',
      '/api/v1/deployments',
      {
        ...op(),
        body: { type: 'install', all_new: true },
      },
    );
    assert.equal(refused.status, 422, refused.text);
    assert.equal(refused.json.error.code, 'area_not_configured');
    assert.match(refused.json.error.message, /never-deployed/);
    const restartNew = await deploy({ type: 'restart', all_new: true });
    assert.deepEqual(
      restartNew.deployments.map((d) => d.device_name),
      ['never-deployed'],
    );
    await t.call('POST', `/api/v1/rollouts/${restartNew.id}/cancel`, op());
    await settled(restartNew.id);
  });

  it('exports deployment metrics for Prometheus', async () => {
    const m = await t.call('GET', '/metrics', { auth: t.users.viewer.token });
    assert.equal(m.status, 200);
    assert.match(m.text, /^opsplane_deployments\{status="succeeded"\} [1-9]\d*$/m);
    assert.match(m.text, /^opsplane_deployments\{status="failed"\} [1-9]\d*$/m);
    assert.match(
      m.text,
      /^opsplane_deployment_duration_seconds_count\{type="install",status="succeeded"\} [1-9]\d*$/m,
    );
  });

  it('rejects bad requests with clear 4xx errors', async () => {
    const cases: [Record<string, unknown>, number, string][] = [
      [{ type: 'install' }, 400, 'validation_failed'],
      [{ type: 'install', devices: ['ok-0'], area: AREA }, 400, 'validation_failed'],
      [{ type: 'install', devices: ['no-such-device'] }, 404, 'device_not_found'],
      [{ type: 'install', devices: ['ok-0'], version: '9.9.9' }, 404, 'bundle_not_found'],
      [{ type: 'install', devices: ['ok-0'], version: '../../etc' }, 400, 'validation_failed'],
      [{ type: 'restart', devices: ['ok-0'], version: '1.0.0' }, 400, 'validation_failed'],
      [{ type: 'explode', devices: ['ok-0'] }, 400, 'validation_failed'],
    ];
    for (const [body, status, code] of cases) {
      const r = await t.call<{ error: { code: string; message: string } }>('POST', '/api/v1/deployments', {
        ...op(),
        body,
      });
      assert.equal(r.status, status, `${JSON.stringify(body)} → ${r.text}`);
      assert.equal(r.json.error.code, code, JSON.stringify(body));
    }
    const viewer = await t.call('POST', '/api/v1/deployments', {
      auth: t.users.viewer.token,
      body: { type: 'restart', devices: ['ok-0'] },
    });
    assert.equal(viewer.status, 403);
  });
});
