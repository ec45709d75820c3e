import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { Client, type ConnectConfig, type SFTPWrapper } from 'ssh2';
import {
  skipUnlessAvailable,
  sshHostsDependency,
  startSshHosts,
  type SshHost,
  type SshHosts,
} from '../src/index.js';

const sha256Fp = (key: Buffer) =>
  `SHA256:${createHash('sha256').update(key).digest('base64').replace(/=+$/, '')}`;

interface Conn {
  client: Client;
  /** Fingerprint of the host key the server presented. */
  hostFp: string;
}

function connectTo(host: SshHost, auth: Partial<ConnectConfig>): Promise<Conn> {
  return new Promise((resolve, reject) => {
    const client = new Client();
    let hostFp = '';
    client.once('ready', () => resolve({ client, hostFp }));
    client.once('error', (e) => {
      client.end();
      reject(e);
    });
    client.connect({
      host: host.address,
      port: host.port,
      readyTimeout: 15_000,
      hostVerifier: (key: Buffer) => {
        hostFp = sha256Fp(key);
        return true;
      },
      ...auth,
    });
  });
}

function exec(client: Client, command: string): Promise<{ stdout: string; code: number | null }> {
  return new Promise((resolve, reject) => {
    client.exec(command, (err, stream) => {
      if (err) return reject(err);
      let stdout = '';
      let stderr = '';
      stream.on('data', (d: Buffer) => (stdout += d.toString()));
      stream.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      stream.on('close', (code: number | null) => {
        if (code !== 0) reject(new Error(`${command} exited ${code}: ${stderr}`));
        else resolve({ stdout, code });
      });
    });
  });
}

async function sftpRoundTrip(client: Client, path: string, data: Buffer): Promise<Buffer> {
  const sftp = await new Promise<SFTPWrapper>((res, rej) => client.sftp((e, s) => (e ? rej(e) : res(s))));
  await new Promise<void>((res, rej) => sftp.writeFile(path, data, (e) => (e ? rej(e) : res())));
  const back = await new Promise<Buffer>((res, rej) => sftp.readFile(path, (e, b) => (e ? rej(e) : res(b))));
  sftp.end();
  return back;
}

const sh = (cmd: string, args: string[]) => {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8' });
  } catch (e) {
    return String((e as { stdout?: string }).stdout ?? '');
  }
};

// sshd authenticates real system accounts: startSshHosts creates them, which needs root (CI runs
// as root, and fails here without it; on a developer machine run the tests with sudo to include these).
const skip = skipUnlessAvailable(sshHostsDependency());

describe('test-support ssh hosts', { timeout: 90_000, skip }, () => {
  let set: SshHosts | undefined;
  after(async () => {
    await set?.stop();
  });

  it('starts 3 real sshd hosts: password/key/passphrase logins, exec, SFTP, host key change, cleanup', async () => {
    const t0 = Date.now();
    set = await startSshHosts(3, { sudoUser: true });
    const started = Date.now() - t0;
    const { hosts, mode } = set;
    assert.equal(hosts.length, 3);
    if (mode === 'netns') {
      assert.equal(new Set(hosts.map((h) => h.address)).size, 3, 'three different addresses');
      for (const h of hosts) {
        assert.match(h.address, /^10\.213\.\d+\.\d+$/);
        assert.equal(h.port, 22);
        assert.ok(h.ns);
      }
    } else {
      assert.equal(new Set(hosts.map((h) => h.port)).size, 3, 'three different ports');
      for (const h of hosts) assert.notEqual(h.port, 22);
    }
    assert.equal(new Set(hosts.map((h) => h.hostKeyFingerprint)).size, 3, 'three different host keys');

    await Promise.all(
      hosts.map(async (h) => {
        const { password, key, keyWithPassphrase } = h.users;
        assert.ok(keyWithPassphrase);
        const logins: [string, Partial<ConnectConfig>][] = [
          [password.username, { username: password.username, password: password.password }],
          [key.username, { username: key.username, privateKey: key.privateKey }],
          [
            keyWithPassphrase.username,
            {
              username: keyWithPassphrase.username,
              privateKey: keyWithPassphrase.privateKey,
              passphrase: keyWithPassphrase.passphrase,
            },
          ],
        ];
        for (const [user, auth] of logins) {
          const { client, hostFp } = await connectTo(h, auth);
          try {
            assert.equal(hostFp, h.hostKeyFingerprint, `${h.name}: host key as ssh-keygen -lf prints it`);
            assert.equal((await exec(client, 'uname -s')).stdout.trim(), 'Linux');
            assert.equal((await exec(client, 'id -un')).stdout.trim(), user);
          } finally {
            client.end();
          }
        }

        // SFTP round trip (key user, into its home).
        const { client } = await connectTo(h, { username: key.username, privateKey: key.privateKey });
        try {
          const data = randomBytes(256 * 1024);
          const back = await sftpRoundTrip(client, `upload-${h.name}.bin`, data);
          assert.equal(
            createHash('sha256').update(back).digest('hex'),
            createHash('sha256').update(data).digest('hex'),
          );
          const remoteSum = (await exec(client, `sha256sum upload-${h.name}.bin`)).stdout.split(' ')[0];
          assert.equal(remoteSum, createHash('sha256').update(data).digest('hex'));
          if (mode === 'netns') {
            // The host sees its own address (it lives in its own namespace).
            const addrs = (await exec(client, 'cat /proc/net/fib_trie')).stdout;
            assert.ok(addrs.includes(h.address), `${h.name} has ${h.address}`);
          }
        } finally {
          client.end();
        }

        // Wrong password is refused.
        await assert.rejects(
          connectTo(h, { username: password.username, password: 'wrong-password' }),
          (e: Error & { level?: string }) =>
            e.level === 'client-authentication' || /authentication/i.test(e.message),
        );
      }),
    );

    // Host key change: regenerate + restart → clients see a different fingerprint.
    const h0 = hosts[0]!;
    const oldFp = h0.hostKeyFingerprint;
    await h0.regenerateHostKey();
    await h0.restart();
    assert.notEqual(h0.hostKeyFingerprint, oldFp);
    const { client, hostFp } = await connectTo(h0, {
      username: h0.users.key.username,
      privateKey: h0.users.key.privateKey,
    });
    client.end();
    assert.equal(hostFp, h0.hostKeyFingerprint);
    assert.notEqual(hostFp, oldFp);

    // kill → connection refused; restart → back on the same address/port.
    const h1 = hosts[1]!;
    const open = await connectTo(h1, {
      username: h1.users.key.username,
      privateKey: h1.users.key.privateKey,
    });
    const closed = new Promise<void>((res) => open.client.once('close', () => res()));
    open.client.on('error', () => undefined);
    await h1.kill();
    await closed; // established sessions go down with the host too
    assert.equal(h1.running, false);
    await assert.rejects(
      connectTo(h1, { username: h1.users.password.username, password: h1.users.password.password }),
    );
    await h1.restart();
    (
      await connectTo(h1, { username: h1.users.password.username, password: h1.users.password.password })
    ).client.end();

    // sudo only if sudo is installed.
    const hasSudo = existsSync('/usr/bin/sudo');
    for (const h of hosts) assert.equal(h.sudo, hasSudo);

    // stop() leaves nothing behind.
    const users = hosts.flatMap((h) => [
      h.users.password.username,
      h.users.key.username,
      h.users.keyWithPassphrase?.username ?? '',
    ]);
    assert.deepEqual(
      hosts.map((h) => h.running),
      [true, true, true],
    );
    const dirs = hosts.map((h) => h.dir);
    const nss = hosts.map((h) => h.ns).filter((n): n is string => !!n);
    await set.stop();
    for (const h of hosts) assert.equal(h.running, false);
    const ps = sh('ps', ['-eo', 'args']);
    for (const d of dirs) {
      assert.ok(!ps.includes(d), `no sshd left for ${d}`);
      assert.equal(existsSync(d), false);
    }
    const netnsList = sh('ip', ['netns', 'list']);
    for (const n of nss) assert.ok(!netnsList.includes(n), `namespace ${n} removed`);
    for (const u of users) assert.equal(sh('getent', ['passwd', u]), '', `user ${u} removed`);
    await set.stop(); // idempotent
    console.error(`[ssh-hosts] mode=${mode} start(3)=${started} ms total=${Date.now() - t0} ms`);
  });

  it('loopback mode: sshd on distinct free 127.0.0.1 ports, cleaned up by stop()', async () => {
    const t0 = Date.now();
    const lo = await startSshHosts(2, { mode: 'loopback', keyWithPassphrase: false });
    try {
      assert.equal(lo.mode, 'loopback');
      assert.equal(lo.hosts.length, 2);
      assert.equal(new Set(lo.hosts.map((h) => h.port)).size, 2);
      for (const h of lo.hosts) {
        assert.equal(h.address, '127.0.0.1');
        assert.notEqual(h.port, 22);
        assert.equal(h.ns, undefined);
        assert.equal(h.users.keyWithPassphrase, undefined);
        const { client, hostFp } = await connectTo(h, {
          username: h.users.key.username,
          privateKey: h.users.key.privateKey,
        });
        try {
          assert.equal(hostFp, h.hostKeyFingerprint);
          assert.equal((await exec(client, 'id -un')).stdout.trim(), h.users.key.username);
        } finally {
          client.end();
        }
      }
    } finally {
      const users = lo.hosts.flatMap((h) => [h.users.password.username, h.users.key.username]);
      await lo.stop();
      for (const u of users) assert.equal(sh('getent', ['passwd', u]), '', `user ${u} removed`);
    }
    console.error(`[ssh-hosts] loopback start+check(2)=${Date.now() - t0} ms`);
  });
});
