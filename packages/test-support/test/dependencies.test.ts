import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  MissingDependencyError,
  commandAvailable,
  isCi,
  requireDependency,
  skipUnlessAvailable,
  tempDir,
} from '../src/index.js';

/** Runs `fn` with $CI set to `value` (undefined: unset), restoring it afterwards. */
function withCi<T>(value: string | undefined, fn: () => T): T {
  const saved = process.env.CI;
  if (value === undefined) delete process.env.CI;
  else process.env.CI = value;
  try {
    return fn();
  } finally {
    if (saved === undefined) delete process.env.CI;
    else process.env.CI = saved;
  }
}

const INDEX = new URL('../src/index.js', import.meta.url).href;

describe('test dependencies: skipped locally, failed under CI', () => {
  const dirs: { cleanup(): Promise<void> }[] = [];
  after(async () => {
    for (const d of dirs) await d.cleanup();
  });

  it('isCi reads $CI like CI systems set it', () => {
    for (const v of ['true', '1', 'yes', 'TRUE']) assert.equal(withCi(v, isCi), true, v);
    for (const v of [undefined, '', '0', 'false', 'False']) assert.equal(withCi(v, isCi), false, String(v));
  });

  it('skipUnlessAvailable: false when available, else the one-line reason, or a throw under CI', () => {
    withCi(undefined, () => {
      assert.equal(skipUnlessAvailable('root', true, 'creates users'), false);
      assert.equal(skipUnlessAvailable('root', false, 'creates users'), 'needs root: creates users');
      assert.equal(
        skipUnlessAvailable({ name: 'chromium', available: false, reason: 'not installed' }),
        'needs chromium: not installed',
      );
    });
    withCi('true', () => {
      assert.equal(skipUnlessAvailable('root', true, 'creates users'), false);
      assert.throws(
        () => skipUnlessAvailable('root', false, 'creates users'),
        (e: unknown) =>
          e instanceof MissingDependencyError &&
          e.code === 'test_dependency_missing' &&
          /needs root, which is missing here \(creates users\)/.test(e.message),
      );
    });
  });

  it('requireDependency: skips the running test locally, throws under CI', () => {
    const skipped: (string | undefined)[] = [];
    const t = { skip: (m?: string) => skipped.push(m) };
    withCi(undefined, () => {
      assert.equal(requireDependency(t, 'openssl', true, 'makes a certificate'), true);
      assert.equal(requireDependency(t, 'openssl', false, 'makes a certificate'), false);
    });
    assert.deepEqual(skipped, ['needs openssl: makes a certificate']);
    withCi('true', () => {
      assert.throws(() => requireDependency(t, 'openssl', false, 'x'), MissingDependencyError);
    });
    assert.equal(skipped.length, 1);
  });

  it('commandAvailable finds commands on PATH and daemons in sbin', () => {
    assert.equal(commandAvailable('sh'), true);
    assert.equal(commandAvailable('opsplane-no-such-command'), false);
  });

  it('a test file with a missing dependency: passes with # SKIP locally, fails under CI', async () => {
    const dir = await tempDir('opsplane-deps-test-');
    dirs.push(dir);
    const file = join(dir.path, 'needs-nothing-here.test.mjs');
    await writeFile(
      file,
      [
        `import { describe, it } from 'node:test';`,
        `import { requireDependency, skipUnlessAvailable } from ${JSON.stringify(INDEX)};`,
        `describe('suite', { skip: skipUnlessAvailable('a unicorn', false, 'rides it') }, () => {`,
        `  it('runs', () => {});`,
        `});`,
        `it('in-test', (t) => { if (!requireDependency(t, 'a dragon', false, 'flies it')) return; });`,
        `it('plain', () => {});`,
      ].join('\n'),
    );
    const run = (ci: string | undefined) => {
      const env = { ...process.env };
      delete env.CI;
      delete env.NODE_TEST_CONTEXT; // else the nested runner reports to this one, not on stdout
      if (ci !== undefined) env.CI = ci;
      return spawnSync(process.execPath, ['--test', '--test-reporter=tap', file], {
        env,
        encoding: 'utf8',
        timeout: 60_000,
      });
    };
    const local = run(undefined);
    assert.equal(local.status, 0, local.stdout + local.stderr);
    assert.match(local.stdout, /# SKIP needs a unicorn: rides it/);
    assert.match(local.stdout, /# SKIP needs a dragon: flies it/);
    const ci = run('true');
    assert.notEqual(ci.status, 0, ci.stdout + ci.stderr);
    assert.match(ci.stdout + ci.stderr, /needs a unicorn, which is missing here/);
  });
});
