/** The `opsplane` binary's command-line surface: help, exit codes, clear usage errors. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const MAIN = fileURLToPath(new URL('../src/main.js', import.meta.url));

function opsplane(args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, [MAIN, ...args], {
    encoding: 'utf8',
    env: { ...process.env, OPSPLANE_AGENT_SECRET: '', ...env },
    timeout: 15_000,
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

describe('opsplane CLI', () => {
  it('prints help listing the commands', () => {
    const r = opsplane(['--help']);
    assert.equal(r.code, 0);
    assert.match(r.out, /Usage: opsplane <command>/);
    assert.match(r.out, /controller/);
    assert.match(r.out, /agent/);
  });

  it('prints per-command help', () => {
    const r = opsplane(['controller', '--help']);
    assert.equal(r.code, 0);
    for (const flag of ['--area', '--id', '--listen', '--advertise', '--etcd', '--config'])
      assert.match(r.out, new RegExp(flag));
    assert.match(r.out, /OPSPLANE_AGENT_SECRET/);
    assert.equal(opsplane(['agent', '-h']).code, 0);
  });

  it('exits 2 with a clear message for usage errors', () => {
    const none = opsplane([]);
    assert.equal(none.code, 2);
    const unknown = opsplane(['frobnicate']);
    assert.equal(unknown.code, 2);
    assert.match(unknown.err, /unknown command 'frobnicate'/);
    const badFlag = opsplane(['controller', '--area', 'a1', '--bogus']);
    assert.equal(badFlag.code, 2);
    assert.match(badFlag.err, /--bogus/);
    assert.match(badFlag.err, /opsplane controller --help/);
    const noArea = opsplane(['controller'], { OPSPLANE_AGENT_SECRET: 'x'.repeat(20) });
    assert.equal(noArea.code, 2);
    assert.match(noArea.err, /area is required/);
    const noSecret = opsplane(['controller', '--area', 'a1']);
    assert.equal(noSecret.code, 2);
    assert.match(noSecret.err, /agent_secret is required/);
    const badListen = opsplane(['controller', '--area', 'a1', '--listen', 'nowhere'], {
      OPSPLANE_AGENT_SECRET: 'x'.repeat(20),
    });
    assert.equal(badListen.code, 2);
    assert.match(badListen.err, /listen/);
    const noConfig = opsplane(['agent']);
    assert.equal(noConfig.code, 2);
    assert.match(noConfig.err, /--config/);
  });
});
