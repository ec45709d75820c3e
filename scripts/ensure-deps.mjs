#!/usr/bin/env node
// Installs what the tests and the demo need when it is missing: npm packages (npm ci) and, on
// Debian, the system packages (etcd-server for now). Idempotent and quiet when all is there.
import { existsSync, statSync } from 'node:fs';
import { execFileSync, spawnSync } from 'node:child_process';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const log = (m) => console.error(`[ensure-deps] ${m}`);

function have(cmd) {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

// System packages: command → Debian package.
const wanted = [
  ['etcd', 'etcd-server'],
  ['etcdctl', 'etcd-client'],
  ['curl', 'curl'], // the e2e tests run the guide's curl commands verbatim
];
const missing = wanted.filter(([cmd]) => !have(cmd)).map(([, pkg]) => pkg);
if (missing.length > 0) {
  if (!have('apt-get')) {
    log(`missing ${missing.join(', ')} and apt-get is not available.`);
    log('Install etcd by hand (https://etcd.io/docs/latest/install/) so that `etcd` and `etcdctl` are on PATH.');
    process.exit(1);
  }
  const sudo = process.getuid && process.getuid() !== 0 ? ['sudo'] : [];
  log(`installing ${missing.join(' ')} with apt-get`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  execFileSync(sudo[0] ?? 'apt-get', [...(sudo.length ? ['apt-get'] : []), 'update', '-qq'], { stdio: 'inherit', env });
  execFileSync(sudo[0] ?? 'apt-get', [...(sudo.length ? ['apt-get'] : []), 'install', '-y', '-qq', '--no-install-recommends', ...missing], { stdio: 'inherit', env });
}

// npm packages: install from the lockfile when node_modules is absent or older than the lockfile.
const marker = join(root, 'node_modules', '.package-lock.json');
const lock = join(root, 'package-lock.json');
if (!existsSync(marker) || statSync(lock).mtimeMs > statSync(marker).mtimeMs + 1000) {
  log('installing npm packages (npm ci)');
  execFileSync('npm', ['ci', '--no-audit', '--no-fund'], { cwd: root, stdio: 'inherit' });
}
