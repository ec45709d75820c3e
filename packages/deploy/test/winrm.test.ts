/**
 * WinRM client and session tests (the installer's are in winrm-installer.test.ts). No Windows
 * host is available here: they run against the recorded-exchange fake (support/winrm-fake.ts, recordings in
 * fixtures/winrm/, hand-built from MS-WSMV — not captured from a real host). The NTLM and MD4
 * code is checked against the published MS-NLMP §4.2.4 and RFC 1320 test vectors.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash, X509Certificate } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { commandDependency, freePort, requireDependency, tempDir } from '@opsplane/test-support';
import { md4 } from '../src/winrm/md4.js';
import * as ntlm from '../src/winrm/ntlm.js';
import {
  cleanClixml,
  composeScript,
  decodePowerShell,
  encodePowerShell,
  psQuote,
} from '../src/winrm/powershell.js';
import { WinRmSession, type WinRmConnectOptions } from '../src/winrm/winrm-session.js';
import { loadRecording, WinRmFake } from './support/winrm-fake.js';
import { PASS, splitPs, USER, withFake } from './support/winrm-helpers.js';

const temps: { cleanup: () => Promise<void> }[] = [];
after(async () => {
  for (const t of temps) await t.cleanup();
});

describe('MD4 and NTLMv2 (published test vectors)', () => {
  it('MD4 matches RFC 1320 appendix A.5', () => {
    const vectors: [string, string][] = [
      ['', '31d6cfe0d16ae931b73c59d7e0c089c0'],
      ['a', 'bde52cb31de33e46245e05fbdbd6fb24'],
      ['abc', 'a448017aaf21d8525fc10ae87aa6729d'],
      ['message digest', 'd9130a8164549fe818874806e1c7014b'],
      ['abcdefghijklmnopqrstuvwxyz', 'd79e1c308aa5bbcdeea8ed63df412da9'],
      ['ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789', '043f8582f241db351ce627e153e7f0e4'],
      ['1234567890'.repeat(8), 'e33b4ddc9c38f2199c3e7b164fcc0536'],
    ];
    for (const [input, hex] of vectors) assert.equal(md4(Buffer.from(input)).toString('hex'), hex, input);
  });

  it('NTLMv2 matches MS-NLMP §4.2.4 (User/Domain/Password)', () => {
    const serverChallenge = Buffer.from('0123456789abcdef', 'hex');
    const clientChallenge = Buffer.alloc(8, 0xaa);
    const av = (id: number, s: string) => {
      const v = Buffer.from(s, 'utf16le');
      const h = Buffer.alloc(4);
      h.writeUInt16LE(id);
      h.writeUInt16LE(v.length, 2);
      return Buffer.concat([h, v]);
    };
    const targetInfo = Buffer.concat([
      av(ntlm.AV_NB_DOMAIN, 'Domain'),
      av(ntlm.AV_NB_COMPUTER, 'Server'),
      Buffer.alloc(4),
    ]);
    const key = ntlm.ntowfv2('Password', 'User', 'Domain');
    assert.equal(key.toString('hex'), '0c868a403bfd7a93a3001ef22ef02e3f'); // §4.2.4.1.1
    assert.equal(
      ntlm.lmv2Response(key, serverChallenge, clientChallenge).toString('hex'), // §4.2.4.2.1
      '86c35097ac9cec102554764a57cccc19aaaaaaaaaaaaaaaa',
    );
    const blob = ntlm.ntlmv2Blob(Buffer.alloc(8), clientChallenge, targetInfo);
    const proof = ntlm.ntProofStr(key, serverChallenge, blob);
    assert.equal(proof.toString('hex'), '68cd0ab851e51c96aabc927bebef6a1c'); // §4.2.4.2.2
    assert.equal(ntlm.sessionBaseKey(key, proof).toString('hex'), '8de40ccadbc14a82f15cb0ad0de95ca3'); // §4.2.4.1.2

    // The same values come out of a full AUTHENTICATE message.
    const challenge = {
      flags: ntlm.CLIENT_FLAGS,
      serverChallenge,
      targetName: 'Domain',
      targetInfo,
      timestamp: undefined,
    };
    const msg = ntlm.authenticateMessage({
      challenge,
      username: 'Domain\\User',
      password: 'Password',
      clientChallenge,
      timestamp: Buffer.alloc(8),
    });
    assert.equal(
      ntlm.readSecBuf(msg, 12).toString('hex'),
      '86c35097ac9cec102554764a57cccc19aaaaaaaaaaaaaaaa',
    );
    assert.deepEqual(ntlm.readSecBuf(msg, 20), Buffer.concat([proof, blob]));
    assert.equal(ntlm.readSecBuf(msg, 28).toString('utf16le'), 'Domain');
    assert.equal(ntlm.readSecBuf(msg, 36).toString('utf16le'), 'User');
  });
});

describe('PowerShell plumbing', () => {
  it('quotes values as inert single-quoted literals (typographic quotes too)', () => {
    assert.equal(psQuote("it's"), "'it''s'");
    assert.equal(psQuote('a\u2019b'), "'a\u2019\u2019b'");
    assert.equal(psQuote('$(calc) `n "x"'), `'$(calc) \`n "x"'`);
    assert.throws(() => psQuote('a\0b'), TypeError);
    const script = composeScript('demo', 'Write-Output $Name', { Name: "x'; Remove-Item C:\\ -Recurse; '" });
    assert.equal(script.split('\n')[0], '# opsplane: demo');
    const { code, literals } = splitPs(script);
    assert.ok(!code.includes('Remove-Item'));
    assert.ok(literals.includes("x'; Remove-Item C:\\ -Recurse; '"));
    assert.equal(decodePowerShell(encodePowerShell(script)), script);
  });

  it('decodes CLIXML stderr', () => {
    const clixml =
      '#< CLIXML\r\n<Objs Version="1.1.0.1" xmlns="http://schemas.microsoft.com/powershell/2004/04">' +
      '<S S="Error">a &lt;b&gt;_x000D__x000A_</S><S S="Error">second_x000D__x000A_</S></Objs>';
    assert.equal(cleanClixml(clixml), 'a <b>\nsecond\n');
    assert.equal(cleanClixml('plain'), 'plain');
  });
});

describe('WinRmSession against the recorded WinRM fake', { timeout: 60_000 }, () => {
  it('creates a shell, runs a command (chunked output, long poll, exit code), deletes the shell', async () => {
    const fake = await withFake('basics', async (_fake, opts) => {
      const s = await WinRmSession.connect(opts);
      const res = await s.runPowerShell("Write-Output 'héllo wörld'; exit 3", { label: 'echo' });
      assert.deepEqual(res, { code: 3, stdout: 'héllo wörld\n', stderr: 'oops: it failed\n' });
      await assert.rejects(s.runPowerShell('throw', { label: 'fail', check: true }), (e: unknown) => {
        const err = e as { code: string; exitCode: number; stderrTail: string };
        return err.code === 'winrm_command_failed' && err.exitCode === 2 && err.stderrTail === 'boom';
      });
      await s.close();
      await s.close(); // idempotent
    });
    assert.deepEqual(fake.remaining, []);
    const [create, command] = fake.received;
    assert.equal(create?.options.WINRS_CODEPAGE, '65001');
    assert.equal(command?.options.WINRS_SKIP_CMD_SHELL, 'TRUE');
    assert.deepEqual(command?.args?.slice(0, 5), [
      '-NoProfile',
      '-NonInteractive',
      '-ExecutionPolicy',
      'Bypass',
      '-EncodedCommand',
    ]);
    assert.match(fake.scripts[0]!, /^# opsplane: echo\n\$ErrorActionPreference = 'Stop'/);
    assert.ok(fake.authLog.every((a) => a === 'basic:ok'));
  });

  it('re-creates a lost shell and maps a SOAP fault to a typed error', async () => {
    await withFake('fault', async (_fake, opts) => {
      const s = await WinRmSession.connect(opts);
      assert.equal((await s.runPowerShell('1', { label: 'first' })).stdout, 'ok\n');
      await assert.rejects(s.runPowerShell('2', { label: 'denied' }), (e: unknown) => {
        const err = e as { code: string; wsmanCode: number; subcode: string; message: string };
        return (
          err.code === 'winrm_fault' &&
          err.wsmanCode === 5 &&
          err.subcode === 'w:AccessDenied' &&
          /Access is denied/.test(err.message)
        );
      });
      await s.close();
    });
  });

  it('rejects a wrong password with winrm_auth_failed (Basic and NTLM), without echoing it', async () => {
    for (const auth of ['basic', 'ntlm'] as const) {
      await withFake(
        'shell',
        async (_fake, opts) => {
          const err = await WinRmSession.connect({ ...opts, password: 'wrong-Pa55' }).then(
            () => assert.fail('connected'),
            (e: unknown) => e as Error & { code: string },
          );
          assert.equal(err.code, 'winrm_auth_failed', auth);
          assert.ok(!err.message.includes('wrong-Pa55') && !JSON.stringify(err).includes('wrong-Pa55'));
        },
        { auth },
      );
    }
  });

  it('authenticates with NTLMv2 once per keep-alive connection', async () => {
    const fake = await withFake(
      'echo',
      async (_fake, opts) => {
        const s = await WinRmSession.connect({ ...opts, username: `WIN-FAKE\\${USER}` });
        for (let i = 0; i < 2; i++)
          assert.equal((await s.runPowerShell('hi', { label: 'echo' })).stdout, 'hi\n');
        await s.close();
      },
      { auth: 'ntlm' },
    );
    assert.deepEqual(fake.authLog, ['ntlm:challenge', 'ntlm:ok']);
    assert.equal(fake.connections, 1);
    assert.deepEqual(fake.remaining, []);
  });

  it('refuses plain HTTP unless allowUnencrypted, naming the way out', async () => {
    for (const auth of ['ntlm', 'basic'] as const) {
      await assert.rejects(
        WinRmSession.connect({ host: '127.0.0.1', username: USER, password: PASS, auth }),
        (e: unknown) =>
          (e as { code: string }).code === 'validation_failed' &&
          /https.*allowUnencrypted/s.test((e as Error).message),
      );
    }
  });

  it('reports a refused port and a silent service as winrm_unreachable', async () => {
    const port = await freePort();
    await assert.rejects(
      WinRmSession.connect({
        host: '127.0.0.1',
        port,
        username: USER,
        password: PASS,
        allowUnencrypted: true,
      }),
      (e: unknown) =>
        (e as { code: string }).code === 'winrm_unreachable' && /ECONNREFUSED/.test((e as Error).message),
    );
    const fake = await WinRmFake.start({
      recording: loadRecording('slow'),
      auth: 'basic',
      username: USER,
      password: PASS,
    });
    try {
      const t0 = Date.now();
      await assert.rejects(
        WinRmSession.connect({
          host: '127.0.0.1',
          port: fake.port,
          username: USER,
          password: PASS,
          auth: 'basic',
          allowUnencrypted: true,
          timeoutMs: 300,
        }),
        (e: unknown) =>
          (e as { code: string }).code === 'winrm_unreachable' &&
          /no response within 300 ms/.test((e as Error).message),
      );
      assert.ok(Date.now() - t0 < 2500);
    } finally {
      await fake.stop();
    }
  });

  it('terminates a command that outlives its timeout', async () => {
    const fake = await withFake('timeout', async (_fake, opts) => {
      const s = await WinRmSession.connect(opts);
      await assert.rejects(
        s.runPowerShell('Start-Sleep 3600', { label: 'sleep', timeoutMs: 1200 }),
        (e: unknown) => {
          const err = e as { code: string; exitCode: number | null; message: string };
          return (
            err.code === 'winrm_command_failed' &&
            err.exitCode === null &&
            /timed out after 1200 ms/.test(err.message)
          );
        },
      );
      await s.close();
    });
    assert.ok(fake.received.some((r) => r.action === 'Signal'));
    assert.deepEqual(fake.remaining, []);
  });

  it('uploads in base64 chunks and verifies Get-FileHash (match and mismatch)', async () => {
    const data = Buffer.from(Array.from({ length: 100_000 }, (_, i) => (i * 31 + (i >> 7)) & 0xff));
    const dir = await tempDir('opsplane-winrm-');
    temps.push(dir);
    const file = join(dir.path, 'payload.bin');
    writeFileSync(file, data.subarray(0, 5000));
    const fake = await withFake('upload', async (_fake, opts) => {
      const s = await WinRmSession.connect(opts);
      const remote = "C:\\Windows\\Temp\\opsplane test\\it's $'x $&.bin";
      const up = await s.upload(data, remote, { chunkBytes: 16_384 });
      assert.deepEqual(up, {
        remotePath: remote,
        sha256: createHash('sha256').update(data).digest('hex'),
        bytes: data.length,
      });
      await assert.rejects(
        s.upload(file, 'C:\\x.bin'),
        (e: unknown) => (e as { code: string }).code === 'winrm_checksum_mismatch',
      );
      await s.close();
    });
    assert.deepEqual(
      fake.uploads.map((u) => [u.script, u.bytes.length]),
      [
        ["C:\\Windows\\Temp\\opsplane test\\it's $'x $&.bin", 100_000],
        ['C:\\x.bin', 5000],
      ],
    );
    assert.deepEqual(fake.uploads[0]!.bytes, data);
    assert.equal(fake.received.filter((r) => r.action === 'Send').length, 7 + 1); // 7 chunks, then 1 (second upload)
  });

  it('detects OS, arch and admin rights', async () => {
    await withFake('detect', async (_fake, opts) => {
      const s = await WinRmSession.connect(opts);
      assert.deepEqual(await s.detect(), {
        os: 'windows',
        arch: 'amd64',
        isAdmin: true,
        osVersion: '10.0.17763',
        caption: 'Microsoft Windows Server 2019 Standard',
        psVersion: '5.1.17763.1432',
        user: 'WIN-FAKE\\Administrator',
      });
      await s.close();
    });
  });

  it('HTTPS: pinned self-signed certificate accepted, another refused before credentials are sent', async (t) => {
    const dir = await tempDir('opsplane-winrm-tls-');
    temps.push(dir);
    const [key, cert] = [join(dir.path, 'key.pem'), join(dir.path, 'cert.pem')];
    if (!requireDependency(t, commandDependency('openssl', 'openssl', 'makes the test certificate'))) return;
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-keyout',
        key,
        '-out',
        cert,
        '-days',
        '1',
        '-subj',
        '/CN=localhost',
        '-addext',
        'subjectAltName=IP:127.0.0.1',
      ],
      { stdio: 'pipe' }, // a failure's message includes openssl's stderr
    );
    const tls = { key: readFileSync(key), cert: readFileSync(cert) };
    const fp = new X509Certificate(tls.cert).fingerprint256;
    const https = (opts: WinRmConnectOptions): WinRmConnectOptions => ({
      ...opts,
      https: true,
      allowUnencrypted: false,
    });
    await withFake(
      'shell',
      async (_f, opts) =>
        (await WinRmSession.connect({ ...https(opts), tls: { fingerprint256: fp } })).close(),
      { tls },
    );
    await withFake(
      'shell',
      async (_f, opts) => (await WinRmSession.connect({ ...https(opts), tls: { ca: tls.cert } })).close(),
      { tls },
    );
    for (const tlsOpt of [{ fingerprint256: 'ab'.repeat(32) }, {}]) {
      const fake = await withFake(
        'shell',
        async (_f, opts) => {
          await assert.rejects(
            WinRmSession.connect({ ...https(opts), tls: tlsOpt }),
            (e: unknown) => (e as { code: string }).code === 'winrm_tls_failed',
          );
        },
        { tls },
      );
      assert.equal(fake.received.length, 0);
    }
  });
});
