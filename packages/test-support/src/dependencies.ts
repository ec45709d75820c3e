/**
 * Tests that need a real dependency of the machine (root, sshd, Chromium, PostgreSQL, openssl…)
 * say so through these helpers, never with a bare `skip`. Locally a missing dependency skips
 * the test with a one-line reason; under CI (`CI` set, as `.ci/run` does) it fails the test
 * instead, so that CI can never pass by silently skipping what it was meant to run.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

/** A real dependency of a test, and whether this machine has it. */
export interface Dependency {
  /** What is needed, e.g. 'root', 'chromium', 'PostgreSQL'. */
  name: string;
  available: boolean;
  /** Why the test needs it / how to get it; shown when it is missing. */
  reason: string;
}

/** Thrown (under CI) when a test's dependency is missing. */
export class MissingDependencyError extends Error {
  readonly code = 'test_dependency_missing';
  constructor(readonly dependency: Dependency) {
    super(
      `CI: this test needs ${dependency.name}, which is missing here (${dependency.reason}); ` +
        'under CI a missing dependency fails the test instead of skipping it ' +
        '(node scripts/ensure-deps.mjs installs the system packages)',
    );
    this.name = 'MissingDependencyError';
  }
}

/** True when running under CI: $CI set to anything but '', '0' or 'false' (GitHub, GitLab… and .ci/run set CI=true). */
export function isCi(): boolean {
  const v = process.env.CI?.trim().toLowerCase();
  return v !== undefined && v !== '' && v !== '0' && v !== 'false';
}

function asDependency(dep: Dependency | string, available?: boolean, reason?: string): Dependency {
  return typeof dep === 'string' ? { name: dep, available: available ?? false, reason: reason ?? '' } : dep;
}

const skipLine = (d: Dependency) => `needs ${d.name}: ${d.reason}`;

/**
 * The node:test `skip` option of a test or suite that needs `dep`:
 * `describe('…', { skip: skipUnlessAvailable('root', isRoot(), 'creates system users') }, …)`.
 * False when available; else, locally, the one-line reason (node:test prints it as `# SKIP`);
 * under CI it throws MissingDependencyError, which fails the test file.
 */
export function skipUnlessAvailable(dep: Dependency): false | string;
export function skipUnlessAvailable(name: string, available: boolean, reason: string): false | string;
export function skipUnlessAvailable(
  dep: Dependency | string,
  available?: boolean,
  reason?: string,
): false | string {
  const d = asDependency(dep, available, reason);
  if (d.available) return false;
  if (isCi()) throw new MissingDependencyError(d);
  return skipLine(d);
}

/** The part of node:test's TestContext that requireDependency uses. */
export interface SkippableTest {
  skip(message?: string): void;
}

/**
 * Inside a running test: `if (!requireDependency(t, 'openssl', ok, 'makes a test certificate')) return;`.
 * True when available; else, locally, marks the test skipped with the reason and returns false;
 * under CI it throws MissingDependencyError (the test fails).
 */
export function requireDependency(t: SkippableTest, dep: Dependency): boolean;
export function requireDependency(
  t: SkippableTest,
  name: string,
  available: boolean,
  reason: string,
): boolean;
export function requireDependency(
  t: SkippableTest,
  dep: Dependency | string,
  available?: boolean,
  reason?: string,
): boolean {
  const d = asDependency(dep, available, reason);
  if (d.available) return true;
  if (isCi()) throw new MissingDependencyError(d);
  t.skip(skipLine(d));
  return false;
}

// ------------------------------------------------------------------------- common dependencies

/** Whether this process runs as root (uid 0). */
export function isRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

/** Root, for tests that create system users, network namespaces or tmpfs mounts. */
export function rootDependency(why: string): Dependency {
  return { name: 'root', available: isRoot(), reason: `${why} (CI runs as root; locally run with sudo)` };
}

/** Whether `cmd` is on PATH (or in an sbin directory, where daemons such as sshd live). */
export function commandAvailable(cmd: string): boolean {
  if (spawnSync('sh', ['-c', `command -v '${cmd.replace(/'/g, '')}'`], { stdio: 'ignore' }).status === 0) {
    return true;
  }
  return ['/usr/sbin', '/sbin', '/usr/local/sbin'].some((d) => existsSync(join(d, cmd)));
}

/** A command-line tool from a Debian package: `commandDependency('openssl', 'openssl', 'makes a test certificate')`. */
export function commandDependency(cmd: string, debianPackage: string, why: string): Dependency {
  return {
    name: cmd,
    available: commandAvailable(cmd),
    reason: `${why}; not on PATH (Debian package ${debianPackage}; node scripts/ensure-deps.mjs installs it)`,
  };
}
