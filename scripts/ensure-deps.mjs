#!/usr/bin/env node
// Installs what the tests and the demo need when it is missing: npm packages (npm ci) and, on
// Debian, the system packages (etcd-server, openssh-server, postgresql, …). Idempotent and quiet
// when all is there. `--demo`: only what the demo runs (etcd), not the tests' sshd, sudo,
// browser and PostgreSQL.
import { existsSync, readdirSync, statSync, writeFileSync, rmSync } from 'node:fs';
import { execFileSync, spawnSync } from 'node:child_process';
import { connect } from 'node:net';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const log = (m) => console.error(`[ensure-deps] ${m}`);

function have(cmd) {
  if (spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0) return true;
  // sbin daemons (sshd) are often not on a non-root user's PATH.
  return ['/usr/sbin', '/sbin', '/usr/local/sbin'].some((d) => existsSync(join(d, cmd)));
}

// System packages: command → Debian package.
const wanted = [
  ['etcd', 'etcd-server'],
  ['etcdctl', 'etcd-client'],
  ['curl', 'curl'], // the e2e tests run the guide's curl commands verbatim
  ['sshd', 'openssh-server'], // test-support startSshHosts (the SSH deployer's tests); /usr/sbin/sshd
  ['ssh-keygen', 'openssh-client'],
  ['ip', 'iproute2'], // startSshHosts' netns mode (one network namespace per test host)
  ['ps', 'procps'], // startSshHosts' cleanup of the test users' processes
  ['sudo', 'sudo'], // the deployer's tests: a login user that installs the agent as root through sudo -n
  ['chromium', 'chromium'], // the web UI's end-to-end tests (headless, driven by playwright-core)
  ['openssl', 'openssl'], // the WinRM tests' self-signed HTTPS certificate
];
const DEMO = new Set(['etcd', 'etcdctl']);
const forDemo = process.argv.includes('--demo');
const missing = wanted.filter(([cmd]) => (!forDemo || DEMO.has(cmd)) && !have(cmd)).map(([, pkg]) => pkg);

// PostgreSQL for the tests (test-support's startPostgresDatabase): the server at
// $OPSPLANE_TEST_POSTGRES_URL (default 127.0.0.1:5432) when one answers, else a private cluster
// per test process, started from the server binaries of Debian's postgresql — installed here
// when neither is there. No system cluster is started (policy-rc.d below).
function havePostgresBinaries() {
  if (process.env.OPSPLANE_TEST_PG_BINDIR)
    return existsSync(join(process.env.OPSPLANE_TEST_PG_BINDIR, 'initdb'));
  try {
    if (
      readdirSync('/usr/lib/postgresql').some((v) =>
        existsSync(join('/usr/lib/postgresql', v, 'bin', 'initdb')),
      )
    )
      return true;
  } catch {
    /* not installed the Debian way */
  }
  return have('initdb');
}
function postgresAnswers() {
  let host = '127.0.0.1';
  let port = 5432;
  try {
    const u = new URL(process.env.OPSPLANE_TEST_POSTGRES_URL ?? 'postgres://127.0.0.1:5432/');
    host = u.hostname || host;
    port = Number(u.port || 5432);
  } catch {
    /* keep the default */
  }
  return new Promise((resolve) => {
    const s = connect({ host, port });
    const done = (ok) => {
      s.destroy();
      resolve(ok);
    };
    s.setTimeout(1000, () => done(false));
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}
if (!forDemo && !havePostgresBinaries() && !(await postgresAnswers())) missing.push('postgresql');
if (missing.length > 0) {
  if (!have('apt-get')) {
    log(`missing ${missing.join(', ')} and apt-get is not available.`);
    log(
      'Install them with your package manager; for etcd see https://etcd.io/docs/latest/install/ ' +
        '(`etcd` and `etcdctl` must be on PATH); for PostgreSQL, a server at 127.0.0.1:5432 ' +
        '(trust auth) or its initdb/postgres binaries (OPSPLANE_TEST_PG_BINDIR).',
    );
    process.exit(1);
  }
  const sudo = process.getuid && process.getuid() !== 0 ? ['sudo'] : [];
  log(`installing ${missing.join(' ')} with apt-get`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  execFileSync(sudo[0] ?? 'apt-get', [...(sudo.length ? ['apt-get'] : []), 'update', '-qq'], {
    stdio: 'inherit',
    env,
  });
  // Keep package scripts from starting services (openssh-server would start a system sshd on
  // port 22, postgresql its cluster on 5432): the standard Debian policy-rc.d hook, only when
  // none is there and we are root.
  const policy = '/usr/sbin/policy-rc.d';
  const ownPolicy = sudo.length === 0 && !existsSync(policy);
  if (ownPolicy)
    writeFileSync(policy, '#!/bin/sh\n# opsplane ensure-deps: no service starts during install\nexit 101\n', {
      mode: 0o755,
    });
  try {
    execFileSync(
      sudo[0] ?? 'apt-get',
      [...(sudo.length ? ['apt-get'] : []), 'install', '-y', '-qq', '--no-install-recommends', ...missing],
      { stdio: 'inherit', env },
    );
  } finally {
    if (ownPolicy) rmSync(policy, { force: true });
  }
}

// npm packages: install from the lockfile when node_modules is absent or older than the lockfile.
const marker = join(root, 'node_modules', '.package-lock.json');
const lock = join(root, 'package-lock.json');
if (!existsSync(marker) || statSync(lock).mtimeMs > statSync(marker).mtimeMs + 1000) {
  log('installing npm packages (npm ci)');
  execFileSync('npm', ['ci', '--no-audit', '--no-fund'], { cwd: root, stdio: 'inherit' });
}
