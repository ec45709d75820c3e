/**
 * WindowsInstaller tests. No Windows host is available here: the installer runs over a real
 * WinRmSession against the recorded-exchange fake (support/winrm-fake.ts; recordings in
 * fixtures/winrm/, hand-built from MS-WSMV, not captured from a real host). They assert the
 * PowerShell the fake received, and that hostile text in paths and config stays literal data.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from '@opsplane/test-support';
import type { AgentBundleInfo } from '../src/host-installer.js';
import { checkWindowsInstallDir, nodeMinimum, WindowsInstaller } from '../src/winrm/windows-installer.js';
import { WinRmSession } from '../src/winrm/winrm-session.js';
import { splitPs, withFake } from './support/winrm-helpers.js';

const temps: { cleanup: () => Promise<void> }[] = [];
after(async () => {
  for (const t of temps) await t.cleanup();
});

describe('WindowsInstaller against the recorded WinRM fake', { timeout: 60_000 }, () => {
  // Valid Windows path characters only — and an attempt at code in each quoting style.
  const NASTY = "D:\\Apps\\O'p\u2019s $(Stop-Computer -Force); Remove-Item -Recurse -Force ~ $'$& #x";

  const bundleInfo = async (): Promise<AgentBundleInfo> => {
    const dir = await tempDir('opsplane-winrm-bundle-');
    temps.push(dir);
    const bytes = Buffer.from(Array.from({ length: 70_000 }, (_, i) => (i * 7) & 0xff));
    const path = join(dir.path, 'opsplane-agent-1.4.0.tar.gz');
    writeFileSync(path, bytes);
    return {
      version: '1.4.0',
      path,
      fileName: 'opsplane-agent-1.4.0.tar.gz',
      sha256: createHash('sha256').update(bytes).digest('hex'),
      bytes: bytes.length,
      topDir: 'opsplane-agent-1.4.0',
      entry: 'agent.mjs',
      node: '>=20.18',
    };
  };

  it('runs the install sequence; every value reaches PowerShell only as literal data', async () => {
    const bundle = await bundleInfo();
    const yaml = "agent_code: web-01\ntoken: 'tok-secret'; Stop-Computer\n";
    const fake = await withFake('install', async (_fake, opts) => {
      const inst = new WindowsInstaller(await WinRmSession.connect(opts), { installDir: `${NASTY}\\` });
      assert.deepEqual(await inst.detect(), {
        os: 'windows',
        arch: 'amd64',
        serviceManager: 'windows',
        privileged: true,
      });
      const pre = await inst.checkPrerequisites(bundle);
      assert.deepEqual(pre, { node: 'C:\\Program Files\\nodejs\\node.exe', nodeVersion: 'v20.18.1' });
      await inst.uploadBundle(bundle);
      await inst.writeConfig(yaml);
      assert.deepEqual(await inst.activate('1.4.0'), { current: '1.4.0', available: ['1.4.0'] });
      await inst.installService(pre.node);
      await inst.start();
      assert.equal(inst.layout().configFile, `${NASTY}\\etc\\agent.yaml`);
      await inst.session.close();
    });
    assert.deepEqual(fake.remaining, []);
    assert.deepEqual(
      fake.uploads.map((u) => u.script),
      [
        `${NASTY}\\tmp\\opsplane-agent-1.4.0.tar.gz`,
        `${NASTY}\\etc\\agent.yaml.new`,
        `${NASTY}\\bin\\supervisor.cjs`,
      ],
    );
    assert.equal(fake.uploads[0]!.sha256, bundle.sha256);
    assert.equal(fake.uploads[1]!.bytes.toString('utf8'), yaml);
    assert.match(fake.uploads[2]!.bytes.toString('utf8'), /current', 'agent\.mjs'\), '--config'/);
    for (const script of fake.scripts) {
      const { code, literals } = splitPs(script);
      assert.ok(
        !/Stop-Computer|Remove-Item -Recurse -Force ~|tok-secret/.test(code),
        `code part of:\n${script}`,
      );
      assert.ok(!script.includes('tok-secret'), 'the config travels through stdin, not the command line');
      const root = /^\$(?:Root|Path) = /m.test(script);
      if (root)
        assert.ok(
          literals.some((l) => l.startsWith(NASTY)),
          `bound literally in:\n${script.slice(0, 300)}`,
        );
    }
    const service = fake.scripts.find((s) => s.startsWith('# opsplane: windows.service.install'))!;
    assert.match(service, /^\$Node = 'C:\\Program Files\\nodejs\\node\.exe'$/m);
    assert.match(service, /^\$TaskName = 'OpsplaneAgent'$/m);
    assert.ok(
      service.includes(
        `$Root = 'D:\\Apps\\O''p\u2019\u2019s $(Stop-Computer -Force); Remove-Item -Recurse -Force ~ $''$& #x'`,
      ),
    );
  });

  it('reports missing or old Node.js, a full disk and a missing tar.exe as typed errors', async () => {
    const bundle = await bundleInfo();
    await withFake('prerequisites', async (_fake, opts) => {
      const inst = new WindowsInstaller(await WinRmSession.connect(opts), { installDir: 'D:\\Apps' });
      await inst.detect();
      const codeOf = (p: Promise<unknown>) =>
        p.then(
          () => 'ok',
          (e: unknown) => (e as { code: string; status: number }).code,
        );
      assert.equal(await codeOf(inst.checkPrerequisites(bundle)), 'node_missing');
      await assert.rejects(
        inst.checkPrerequisites(bundle),
        (e: unknown) => (e as { status: number }).status === 422 && /v18\.19\.0/.test((e as Error).message),
      );
      assert.equal(await codeOf(inst.checkPrerequisites(bundle)), 'disk_full');
      assert.equal(await codeOf(inst.checkPrerequisites(bundle)), 'unsupported_platform');
      await inst.session.close();
    });
  });

  it('lists versions, stops/restarts, tails the log, prunes and removes', async () => {
    const fake = await withFake('lifecycle', async (_fake, opts) => {
      const inst = new WindowsInstaller(await WinRmSession.connect(opts));
      assert.deepEqual(await inst.versions(), {
        current: '1.4.0',
        previous: '1.3.2',
        available: ['1.2.0', '1.3.2', '1.4.0'],
      });
      assert.equal(await inst.isRunning(), true);
      await inst.stop({ packages: true });
      await inst.restart();
      assert.equal(await inst.logTail(5), 'line 1\nline 2');
      assert.equal(await inst.logTail(5), ''); // a failure to read the log is not an error
      await inst.prune();
      await inst.removeAll();
      await inst.session.close();
    });
    assert.ok(
      fake.scripts.every(
        (s) => !/^\$Root = /m.test(s) || s.includes("$Root = 'C:\\Program Files\\Opsplane\\Agent'"),
      ),
    );
  });

  it('validates install dirs and Node.js ranges', () => {
    for (const bad of [
      'C:\\',
      'C:',
      'relative\\dir',
      'C:\\a\\..\\b',
      'C:\\a"b',
      'C:\\a:b',
      '\\\\server\\share\\x',
      'C:\\a\\b ',
    ]) {
      assert.throws(() => checkWindowsInstallDir(bad), /install_dir/, bad);
    }
    assert.equal(checkWindowsInstallDir('D:\\Ops\\Agent\\'), 'D:\\Ops\\Agent');
    assert.deepEqual(nodeMinimum('>=20.18'), [20, 18, 0]);
    assert.deepEqual(nodeMinimum('^22.1.2 || >=20.18.1 <21'), [20, 18, 1]);
    assert.deepEqual(nodeMinimum('20.x'), [20, 0, 0]);
    assert.equal(nodeMinimum('*'), undefined);
  });
});
