import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  freePort,
  requireDependency,
  skipUnlessAvailable,
  sshHostsDependency,
  startSshHosts,
  tempDir,
  type SshHost,
  type SshHosts,
} from '@opsplane/test-support';
import {
  MemoryHostKeyStore,
  SshAuthError,
  SshCommandError,
  SshHostKeyChangedError,
  SshSession,
  SshSudoError,
  SshUnreachableError,
  hostPortKey,
  shellCommand,
  type SshConnectOptions,
} from '../src/index.js';

// sshd authenticates real system accounts: startSshHosts creates them, which needs root (and sshd).
// Skipped without them locally, failed under CI.
const skip = skipUnlessAvailable(sshHostsDependency());

const expectedArch = process.arch === 'x64' ? 'amd64' : process.arch === 'arm64' ? 'arm64' : undefined;

describe('SshSession (real sshd hosts)', { timeout: 60_000, skip }, () => {
  let set: SshHosts | undefined;
  const sessions: SshSession[] = [];
  const extraLinks: string[] = [];
  let h0: SshHost, h1: SshHost, h2: SshHost;

  before(async () => {
    set = await startSshHosts(3);
    [h0, h1, h2] = set.hosts as [SshHost, SshHost, SshHost];
  });
  after(async () => {
    for (const s of sessions) s.close();
    for (const l of extraLinks) {
      try {
        execFileSync('ip', ['-n', l.split('@')[1]!, 'link', 'del', l.split('@')[0]!], { stdio: 'ignore' });
      } catch {
        /* gone with the namespace */
      }
    }
    await set?.stop();
  });

  const open = async (opts: SshConnectOptions) => {
    const s = await SshSession.connect(opts);
    sessions.push(s);
    return s;
  };
  const pw = (h: SshHost, store = new MemoryHostKeyStore()): SshConnectOptions => ({
    host: h.address,
    port: h.port,
    username: h.users.password.username,
    password: h.users.password.password,
    hostKeys: store,
  });
  const key = (h: SshHost, store = new MemoryHostKeyStore()): SshConnectOptions => ({
    host: h.address,
    port: h.port,
    username: h.users.key.username,
    privateKey: h.users.key.privateKey,
    hostKeys: store,
  });

  it('password login + exec (argv, stdin, exit codes, check, timeout)', async () => {
    const s = await open(pw(h0));
    const who = await s.exec(['id', '-un']);
    assert.deepEqual(who, { code: 0, stdout: `${h0.users.password.username}\n`, stderr: '' });
    assert.equal((await s.exec(['cat'], { stdin: 'hello\nworld' })).stdout, 'hello\nworld');
    const fail = await s.exec(['sh', '-c', 'echo oops >&2; exit 3']);
    assert.equal(fail.code, 3);
    assert.equal(fail.stderr, 'oops\n');
    await assert.rejects(
      s.exec(['sh', '-c', 'echo broken >&2; exit 4'], { check: true }),
      (e: unknown) =>
        e instanceof SshCommandError &&
        e.code === 'ssh_command_failed' &&
        e.exitCode === 4 &&
        e.stderrTail === 'broken',
    );
    const t0 = Date.now();
    await assert.rejects(
      s.exec(['sleep', '10'], { timeoutMs: 300 }),
      (e: unknown) => e instanceof SshCommandError && /timed out/.test(e.message),
    );
    assert.ok(Date.now() - t0 < 5000);
    s.close();
    assert.ok(s.closed);
  });

  it('key login, and key + passphrase login', async () => {
    const s = await open(key(h0));
    assert.equal((await s.exec(['id', '-un'])).stdout.trim(), h0.users.key.username);
    s.close();
    const x = h0.users.keyWithPassphrase!;
    const opts = {
      host: h0.address,
      port: h0.port,
      username: x.username,
      privateKey: x.privateKey,
      hostKeys: new MemoryHostKeyStore(),
    };
    const s2 = await open({ ...opts, passphrase: x.passphrase });
    assert.equal((await s2.exec(['id', '-un'])).stdout.trim(), x.username);
    s2.close();
    await assert.rejects(
      SshSession.connect({ ...opts, passphrase: 'wrong-passphrase' }),
      (e: unknown) => e instanceof SshAuthError && !e.message.includes('wrong-passphrase'),
    );
  });

  it('wrong password → SshAuthError (no secret in the message)', async () => {
    await assert.rejects(
      SshSession.connect({ ...pw(h1), password: 'not-the-password' }),
      (e: unknown) =>
        e instanceof SshAuthError &&
        e.code === 'ssh_auth_failed' &&
        e.message.includes(h1.users.password.username) &&
        !e.message.includes('not-the-password'),
    );
  });

  it('unreachable: closed port on 127.0.0.1 and an address nobody has → SshUnreachableError in time', async () => {
    const port = await freePort();
    const t0 = Date.now();
    await assert.rejects(
      SshSession.connect({ ...pw(h1), host: '127.0.0.1', port, connectTimeoutMs: 2000 }),
      (e: unknown) =>
        e instanceof SshUnreachableError && e.code === 'ssh_unreachable' && /ECONNREFUSED/.test(e.message),
    );
    assert.ok(Date.now() - t0 < 2000);
    // Outside every /30 the hosts use (.0–.11): never configured anywhere.
    const nobody = h1.address.replace(/\.\d+$/, '.250');
    const t1 = Date.now();
    await assert.rejects(
      SshSession.connect({ ...pw(h1), host: nobody, port: 22, connectTimeoutMs: 1500 }),
      (e: unknown) => e instanceof SshUnreachableError && e.message.includes(nobody),
    );
    assert.ok(Date.now() - t1 < 1500 + 1500, `failed within the timeout (${Date.now() - t1} ms)`);
  });

  it('argv quoting: shell metacharacters are passed literally', async () => {
    const s = await open(key(h1));
    const marker = `/tmp/opsplane-inject-${randomBytes(4).toString('hex')}`;
    const args = [
      `$(touch ${marker})`,
      `; rm -rf ${marker}; touch ${marker}`,
      `\`touch ${marker}\``,
      "it's",
      'a b\nc',
      '*',
      '',
      '"$HOME"',
      '|| touch ' + marker,
    ];
    const res = await s.exec(['printf', '%s\\n', ...args]);
    assert.equal(res.code, 0);
    assert.equal(res.stdout, args.map((a) => `${a}\n`).join(''));
    assert.equal((await s.exec(['test', '-e', marker])).code, 1, 'no file created on the device');
    assert.equal(existsSync(marker), false);
    assert.equal(shellCommand(['echo', "it's"]), `'echo' 'it'\\''s'`);
    s.close();
  });

  it('SFTP upload (buffer and local file) with checksum verified and mode set', async () => {
    const s = await open(key(h1));
    const data = randomBytes(300 * 1024);
    const up = await s.upload(data, 'bundle.bin', { mode: 0o750 });
    assert.equal(up.sha256, createHash('sha256').update(data).digest('hex'));
    assert.equal(up.bytes, data.length);
    assert.equal((await s.exec(['stat', '-c', '%a', 'bundle.bin'])).stdout.trim(), '750');
    assert.equal((await s.exec(['sha256sum', 'bundle.bin'])).stdout.split(' ')[0], up.sha256);

    const dir = await tempDir('opsplane-ssh-upload-');
    const local = join(dir.path, 'agent bundle.tgz');
    await writeFile(local, data.subarray(0, 1000));
    const up2 = await s.upload(local, "agent's bundle.tgz", { mode: 0o600 });
    assert.equal(up2.bytes, 1000);
    assert.equal((await s.exec(['stat', '-c', '%a', "agent's bundle.tgz"])).stdout.trim(), '600');
    await dir.cleanup?.();
    s.close();
  });

  it('detect(): linux, arch as process.arch maps it, systemd, not root', async () => {
    const s = await open(pw(h1));
    const d = await s.detect();
    assert.equal(d.os, 'linux');
    if (expectedArch) assert.equal(d.arch, expectedArch);
    assert.equal(d.hasSystemd, existsSync('/run/systemd/system'));
    assert.equal(d.isRoot, false);
    assert.equal(await s.isRoot(), false);
    s.close();
  });

  it('sudo: without sudo on the host → SshSudoError with a clear message', async (t) => {
    // The hosts share this machine's /usr/bin, where sudo is installed (CI installs it): the
    // login user gets a PATH without it instead — Debian's bash reads ~/.bashrc in an sshd
    // session — holding only `id`.
    const user = key(h1).username;
    const home = execFileSync('getent', ['passwd', user], { encoding: 'utf8' }).split(':')[5]!;
    const bin = join(home, 'bin-without-sudo');
    mkdirSync(bin, { recursive: true });
    symlinkSync('/usr/bin/id', join(bin, 'id'));
    writeFileSync(join(home, '.bashrc'), `PATH=${bin}\n`);
    const s = await open(key(h1));
    try {
      const sudoFound = (await s.exec(['command', '-v', 'sudo'])).code === 0;
      const ready = requireDependency(
        t,
        'a login shell that reads ~/.bashrc',
        !sudoFound,
        "the test hides sudo from the login user's PATH in ~/.bashrc, which Debian's bash reads in sshd sessions",
      );
      if (!ready) return;
      await assert.rejects(
        s.exec(['id', '-u'], { sudo: true }),
        (e: unknown) =>
          e instanceof SshSudoError &&
          e.code === 'ssh_sudo_refused' &&
          /sudo is not installed/.test(e.message),
      );
      assert.equal((await s.exec(['true'])).code, 0, 'session still usable');
    } finally {
      s.close();
      rmSync(join(home, '.bashrc'), { force: true });
      rmSync(bin, { recursive: true, force: true });
    }
  });

  it('jump host: B reached through A (both host keys checked)', async () => {
    const store = new MemoryHostKeyStore();
    if (set!.mode === 'netns') {
      // Only A can reach B's address: a direct veth A↔B with host routes (no forwarding in the root ns).
      const id = randomBytes(2).toString('hex');
      const a = `opj${id}a`;
      const b = `opj${id}b`;
      execFileSync('ip', [
        'link',
        'add',
        a,
        'netns',
        h0.ns!,
        'type',
        'veth',
        'peer',
        'name',
        b,
        'netns',
        h2.ns!,
      ]);
      extraLinks.push(`${a}@${h0.ns!}`);
      execFileSync('ip', ['-n', h0.ns!, 'link', 'set', a, 'up']);
      execFileSync('ip', ['-n', h2.ns!, 'link', 'set', b, 'up']);
      execFileSync('ip', ['-n', h0.ns!, 'route', 'add', `${h2.address}/32`, 'dev', a]);
      execFileSync('ip', ['-n', h2.ns!, 'route', 'add', `${h0.address}/32`, 'dev', b]);
    }
    const s = await open({
      ...key(h2, store),
      jump: {
        host: h0.address,
        port: h0.port,
        username: h0.users.key.username,
        privateKey: h0.users.key.privateKey,
      },
    });
    assert.equal((await s.exec(['id', '-un'])).stdout.trim(), h2.users.key.username);
    const conn = (await s.exec(['sh', '-c', 'echo "$SSH_CONNECTION"'])).stdout.trim().split(' ');
    assert.equal(conn[2], h2.address, 'session is on B');
    if (set!.mode === 'netns') assert.equal(conn[0], h0.address, 'B sees the connection coming from A');
    assert.equal(await store.get(hostPortKey(h0.address, h0.port)), h0.hostKeyFingerprint);
    assert.equal(await store.get(hostPortKey(h2.address, h2.port)), h2.hostKeyFingerprint);
    s.close();

    // A changed key on the jump host refuses the whole connection.
    const stale = new MemoryHostKeyStore([[hostPortKey(h0.address, h0.port), 'SHA256:stale']]);
    await assert.rejects(
      SshSession.connect({
        ...key(h2, stale),
        jump: {
          host: h0.address,
          port: h0.port,
          username: h0.users.key.username,
          privateKey: h0.users.key.privateKey,
        },
      }),
      (e: unknown) => e instanceof SshHostKeyChangedError && e.presentedFingerprint === h0.hostKeyFingerprint,
    );
  });

  it('host key: recorded on first use, change refused naming both fingerprints, accepted on request', async () => {
    const store = new MemoryHostKeyStore();
    const hp = hostPortKey(h2.address, h2.port);
    const s = await open(key(h2, store));
    s.close();
    const oldFp = h2.hostKeyFingerprint;
    assert.equal(await store.get(hp), oldFp);
    assert.match(oldFp, /^SHA256:[A-Za-z0-9+/]{43}$/);
    // Same key again: fine.
    (await open(key(h2, store))).close();

    await h2.regenerateHostKey();
    const newFp = h2.hostKeyFingerprint;
    assert.notEqual(newFp, oldFp);
    await assert.rejects(
      SshSession.connect(key(h2, store)),
      (e: unknown) =>
        e instanceof SshHostKeyChangedError &&
        e.code === 'ssh_host_key_changed' &&
        e.expectedFingerprint === oldFp &&
        e.presentedFingerprint === newFp &&
        e.message.includes(oldFp) &&
        e.message.includes(newFp),
    );
    assert.equal(await store.get(hp), oldFp, 'not re-recorded when refused');
    const s2 = await open({ ...key(h2, store), acceptChangedKey: true });
    assert.equal((await s2.exec(['true'])).code, 0);
    s2.close();
    assert.equal(await store.get(hp), newFp, 're-recorded');
    (await open(key(h2, store))).close();
  });
});
