/**
 * Real SSH hosts for tests: `startSshHosts(n)` runs n real OpenSSH servers (sshd), each a test
 * "host" with its own host key, config, temp dir and system users (password, key, key +
 * passphrase). In `netns` mode (root + `ip netns` works) each host lives in its own network
 * namespace with its own address (10.213.x.y, a veth /30 to the root namespace) and listens on
 * port 22 there; in `loopback` mode every sshd listens on its own free port on 127.0.0.1.
 *
 * Needs root (sshd authenticates real accounts, created with useradd and removed on stop) and
 * OpenSSH (`node scripts/ensure-deps.mjs` installs openssh-server). Everything it creates —
 * processes, users, namespaces, veths, sudoers entries, temp dirs — is removed by stop(), and
 * best-effort on process exit.
 */
import { execFile, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, rmSync } from 'node:fs';
import { readFile, rm, writeFile, mkdir, chmod } from 'node:fs/promises';
import { connect } from 'node:net';
import { join } from 'node:path';
import { isRoot, rootDependency, type Dependency } from './dependencies.js';
import { freePort } from './ports.js';
import { spawnTracked, type TrackedProcess } from './processes.js';
import { sleep, tempDir } from './wait.js';

export type SshHostsMode = 'netns' | 'loopback';

export interface SshHostsOptions {
  /** 'auto' (default): netns when running as root and `ip netns add` works, else loopback. */
  mode?: SshHostsMode | 'auto';
  /** Give the test users passwordless sudo (sudoers.d) if sudo is installed. Default false. */
  sudoUser?: boolean;
  /** Also create a user whose key has a passphrase. Default true. */
  keyWithPassphrase?: boolean;
  /** How long to wait for each sshd to serve its banner. Default 15 s. */
  startTimeoutMs?: number;
  /** sshd binary. Default /usr/sbin/sshd (or $OPSPLANE_SSHD_BIN, or `sshd` on PATH). */
  sshdBin?: string;
}

export interface SshPasswordUser {
  username: string;
  password: string;
}

export interface SshKeyUser {
  username: string;
  /** OpenSSH-format private key (PEM text), as ssh2's `privateKey` accepts it. */
  privateKey: string;
  /** authorized_keys line. */
  publicKey: string;
  /** Set when the private key is encrypted. */
  passphrase?: string;
}

export interface SshHost {
  /** host0, host1, … */
  readonly name: string;
  /** The IP to connect to (10.213.x.y in netns mode, 127.0.0.1 in loopback mode). */
  readonly address: string;
  /** 22 in netns mode, a free port in loopback mode. */
  readonly port: number;
  /** As `ssh-keygen -lf` prints it: `SHA256:<base64 without padding>`. */
  readonly hostKeyFingerprint: string;
  /** The host key's public line (`ssh-ed25519 AAAA… comment`). */
  readonly hostPublicKey: string;
  readonly users: {
    password: SshPasswordUser;
    key: SshKeyUser;
    keyWithPassphrase?: SshKeyUser & { passphrase: string };
  };
  /** Whether the users got passwordless sudo (opts.sudoUser and sudo installed). */
  readonly sudo: boolean;
  /** The network namespace (netns mode). */
  readonly ns?: string;
  /**
   * The address by which programs on this host reach the test machine (the root namespace):
   * the root side of its veth in netns mode (the namespace's default route goes there, so every
   * address of the root namespace is reachable too), 127.0.0.1 in loopback mode.
   */
  readonly gateway: string;
  /** The host's temp dir (config, host key, authorized keys, homes). */
  readonly dir: string;
  /** True while sshd runs. */
  readonly running: boolean;
  /** sshd's output so far. */
  output(): string;
  /** SIGKILL sshd (the host "goes down"); restart() brings it back on the same address/port. */
  kill(): Promise<void>;
  /** (Re)starts sshd with the current config and host key; waits until it serves its banner. */
  restart(): Promise<void>;
  /**
   * Replaces the host key with a new one (new fingerprint) and restarts sshd if it was running,
   * so that clients see the "host key changed" case.
   */
  regenerateHostKey(): Promise<void>;
}

export interface SshHosts {
  readonly hosts: SshHost[];
  readonly mode: SshHostsMode;
  /**
   * An address of the test machine that every host can reach: where to bind a service the hosts
   * must call (e.g. a controller their agents connect to). hosts[0].gateway in netns mode,
   * 127.0.0.1 in loopback mode.
   */
  readonly machineAddress: string;
  /** Kills every sshd and removes users, namespaces, sudoers entries and temp dirs. Idempotent. */
  stop(): Promise<void>;
}

// ---------------------------------------------------------------------------------------------

function run(cmd: string, args: readonly string[], input?: string, timeoutMs = 20_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      cmd,
      args,
      { timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 },
      (err, stdout, stderr) => {
        if (err) reject(new Error(`${cmd} ${args.join(' ')} failed: ${err.message}\n${stderr}`));
        else resolve(stdout);
      },
    );
    // A command that exits without reading its stdin makes the write fail with EPIPE: ignore.
    child.stdin?.on('error', () => undefined);
    if (input !== undefined) child.stdin?.end(input);
    else child.stdin?.end();
  });
}

const tryRun = (cmd: string, args: readonly string[]) => run(cmd, args).catch(() => '');

function trySync(cmd: string, args: readonly string[]): void {
  try {
    execFileSync(cmd, args, { stdio: 'ignore', timeout: 10_000 });
  } catch {
    /* best effort */
  }
}

function findSshd(opts: SshHostsOptions): string {
  const explicit = opts.sshdBin ?? process.env.OPSPLANE_SSHD_BIN;
  if (explicit) return explicit;
  for (const p of ['/usr/sbin/sshd', '/usr/local/sbin/sshd', '/sbin/sshd']) if (existsSync(p)) return p;
  try {
    // sshd re-executes itself and so needs an absolute path.
    const p = execFileSync('sh', ['-c', 'command -v sshd'], { encoding: 'utf8' }).trim();
    if (p.startsWith('/')) return p;
  } catch {
    /* fall through */
  }
  throw new Error('sshd not found: run `node scripts/ensure-deps.mjs` (installs openssh-server)');
}

/**
 * What startSshHosts needs of this machine — root and OpenSSH's sshd — for a test's `skip`
 * option: `{ skip: skipUnlessAvailable(sshHostsDependency()) }`.
 */
export function sshHostsDependency(opts: Pick<SshHostsOptions, 'sshdBin'> = {}): Dependency {
  if (!isRoot()) return rootDependency('startSshHosts creates system users for sshd to authenticate');
  try {
    findSshd(opts);
  } catch (e) {
    return { name: 'sshd', available: false, reason: (e as Error).message };
  }
  return { name: 'root and sshd', available: true, reason: 'startSshHosts runs real sshd hosts' };
}

let netnsUsable: boolean | undefined;
async function netnsWorks(): Promise<boolean> {
  if (netnsUsable !== undefined) return netnsUsable;
  if (!isRoot()) return (netnsUsable = false);
  const probe = `opsp-probe-${process.pid}-${randomBytes(3).toString('hex')}`;
  try {
    await run('ip', ['netns', 'add', probe]);
    await run('ip', ['netns', 'exec', probe, 'true']);
    netnsUsable = true;
  } catch {
    netnsUsable = false;
  } finally {
    await tryRun('ip', ['netns', 'del', probe]);
  }
  return netnsUsable;
}

/** A free 10.213.X.0/24 (no address of it configured on this machine). */
async function pickSubnet(): Promise<number> {
  const addrs = await tryRun('ip', ['-4', '-o', 'addr', 'show']);
  for (let attempt = 0; attempt < 100; attempt++) {
    const x = randomBytes(1)[0]!;
    if (!addrs.includes(`10.213.${x}.`)) return x;
  }
  throw new Error('no free 10.213.x.0/24 test subnet');
}

/** Everything to undo, kept per host so that stop() and the exit hook share it. */
interface Created {
  users: string[];
  sudoers: string[];
  ns?: string;
  vethHost?: string;
  dir?: string;
}

const liveCreated = new Set<Created>();

/** Pids of processes running as `user` (e.g. sessions a test left behind). */
function userPidsSync(user: string): number[] {
  try {
    const out = execFileSync('ps', ['-U', user, '-o', 'pid='], { encoding: 'utf8', timeout: 10_000 });
    return out.split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return []; // ps exits 1 when there is none
  }
}

function killUserProcesses(user: string): void {
  for (const pid of userPidsSync(user)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
}

function cleanupSync(c: Created): void {
  // sshd processes are SIGKILLed by processes.ts' exit hook (registered before this one).
  for (const u of c.users) {
    killUserProcesses(u);
    trySync('userdel', ['-r', '-f', u]);
  }
  for (const f of c.sudoers) rmSync(f, { force: true });
  if (c.ns) {
    try {
      const pids = execFileSync('ip', ['netns', 'pids', c.ns], { encoding: 'utf8', timeout: 10_000 });
      for (const pid of pids.split(/\s+/).filter(Boolean)) {
        try {
          process.kill(Number(pid), 'SIGKILL');
        } catch {
          /* gone */
        }
      }
    } catch {
      /* no such namespace */
    }
    trySync('ip', ['netns', 'del', c.ns]);
  }
  if (c.vethHost) trySync('ip', ['link', 'del', c.vethHost]);
  if (c.dir) rmSync(c.dir, { recursive: true, force: true });
}

process.once('exit', () => {
  for (const c of liveCreated) cleanupSync(c);
});

async function cleanup(c: Created): Promise<void> {
  for (const u of c.users) {
    // Leftover session processes (a shell the test left behind) would make userdel fail.
    killUserProcesses(u);
    await serialized(() => tryRun('userdel', ['-r', '-f', u]));
  }
  await Promise.all(c.sudoers.map((f) => rm(f, { force: true })));
  if (c.ns) await tryRun('ip', ['netns', 'del', c.ns]);
  if (c.vethHost) await tryRun('ip', ['link', 'del', c.vethHost]); // usually gone with the ns
  if (c.dir) await rm(c.dir, { recursive: true, force: true });
}

async function fingerprint(pubFile: string): Promise<string> {
  // "256 SHA256:abc… comment (ED25519)"
  const out = await run('ssh-keygen', ['-l', '-E', 'sha256', '-f', pubFile]);
  const fp = out.trim().split(/\s+/)[1];
  if (!fp?.startsWith('SHA256:')) throw new Error(`unexpected ssh-keygen -lf output: ${out}`);
  return fp;
}

async function genKey(
  file: string,
  comment: string,
  passphrase = '',
): Promise<{ privateKey: string; publicKey: string }> {
  await rm(file, { force: true });
  await rm(`${file}.pub`, { force: true });
  await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', passphrase, '-C', comment, '-f', file]);
  return {
    privateKey: await readFile(file, 'utf8'),
    publicKey: (await readFile(`${file}.pub`, 'utf8')).trim(),
  };
}

/** useradd/chpasswd/userdel lock /etc/passwd and /etc/shadow: run them one at a time here. */
let accountsQueue: Promise<unknown> = Promise.resolve();
function serialized<T>(fn: () => Promise<T>): Promise<T> {
  const next = accountsQueue.then(fn, fn);
  accountsQueue = next.catch(() => undefined);
  return next;
}

async function createUser(c: Created, username: string, home: string, password: string): Promise<void> {
  c.users.push(username); // before useradd: a half-created user is removed too
  await serialized(async () => {
    await run('useradd', ['-m', '-d', home, '-s', '/bin/bash', '-K', 'MAIL_DIR=/dev/null', username]);
    // Every user gets a password: with UsePAM no, sshd refuses even key logins to locked ('!') accounts.
    await run('chpasswd', [], `${username}:${password}\n`);
  });
}

/** Resolves once something on address:port sends an SSH banner. */
function probeBanner(address: string, port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = connect({ host: address, port });
    let buf = '';
    const finish = (ok: boolean) => {
      clearTimeout(timer);
      sock.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => finish(false), timeoutMs);
    sock.on('data', (d) => {
      buf += d.toString('latin1');
      if (buf.includes('SSH-2.0-')) finish(true);
    });
    sock.on('error', () => finish(false));
    sock.on('close', () => finish(buf.includes('SSH-2.0-')));
  });
}

let setCounter = 0;

class Host implements SshHost {
  process: TrackedProcess | undefined;
  hostKeyFingerprint = '';
  hostPublicKey = '';
  port: number;

  constructor(
    readonly name: string,
    readonly address: string,
    port: number,
    readonly dir: string,
    readonly users: SshHost['users'],
    readonly sudo: boolean,
    readonly ns: string | undefined,
    readonly gateway: string,
    private readonly allowUsers: readonly string[],
    private readonly sshd: string,
    private readonly startTimeoutMs: number,
  ) {
    this.port = port;
  }

  get running(): boolean {
    const c = this.process?.child;
    return c !== undefined && c.exitCode === null && c.signalCode === null;
  }

  output(): string {
    return this.process?.output() ?? '';
  }

  private get hostKeyFile() {
    return join(this.dir, 'ssh_host_ed25519_key');
  }
  private get configFile() {
    return join(this.dir, 'sshd_config');
  }

  async generateHostKey(): Promise<void> {
    const { publicKey } = await genKey(this.hostKeyFile, `opsplane-test-${this.name}`);
    this.hostPublicKey = publicKey;
    this.hostKeyFingerprint = await fingerprint(`${this.hostKeyFile}.pub`);
  }

  async writeConfig(): Promise<void> {
    const lines = [
      '# opsplane test-support startSshHosts',
      `Port ${this.port}`,
      `ListenAddress ${this.address}`,
      `HostKey ${this.hostKeyFile}`,
      `PidFile ${join(this.dir, 'sshd.pid')}`,
      'UsePAM no',
      'PasswordAuthentication yes',
      'KbdInteractiveAuthentication no',
      'PubkeyAuthentication yes',
      `AuthorizedKeysFile ${join(this.dir, 'authorized_keys')}/%u`,
      'StrictModes no',
      'PermitRootLogin yes',
      `AllowUsers ${[...this.allowUsers, 'root'].join(' ')}`,
      'Subsystem sftp internal-sftp',
      'UseDNS no',
      'PrintMotd no',
      'PrintLastLog no',
      'X11Forwarding no',
      'MaxStartups 100:30:200',
      'MaxSessions 50',
      'LoginGraceTime 30',
      `LogLevel ${process.env.OPSPLANE_TEST_VERBOSE ? 'VERBOSE' : 'INFO'}`,
    ];
    await writeFile(this.configFile, lines.join('\n') + '\n', { mode: 0o644 });
  }

  private spawnSshd(): TrackedProcess {
    const args = ['-D', '-e', '-f', this.configFile];
    return this.ns
      ? spawnTracked(`sshd:${this.name}`, 'ip', ['netns', 'exec', this.ns, this.sshd, ...args])
      : spawnTracked(`sshd:${this.name}`, this.sshd, args);
  }

  async restart(): Promise<void> {
    if (this.running) await this.process?.stop(3000);
    // Loopback: the free port may have been taken in between; retry on a fresh one.
    for (let attempt = 0; ; attempt++) {
      const p = this.spawnSshd();
      this.process = p;
      try {
        await this.waitServing(p);
        return;
      } catch (e) {
        await p.kill();
        const bindFailed = /Address already in use|Cannot bind any address/i.test(p.output());
        if (this.ns || !bindFailed || attempt >= 3) throw e;
        this.port = await freePort();
        await this.writeConfig();
      }
    }
  }

  private async waitServing(p: TrackedProcess): Promise<void> {
    const deadline = Date.now() + this.startTimeoutMs;
    for (;;) {
      if (p.child.exitCode !== null || p.child.signalCode !== null) {
        throw new Error(
          `sshd for ${this.name} (${this.address}:${this.port}) exited ` +
            `(code ${p.child.exitCode}, signal ${p.child.signalCode}) before serving:\n${p.output().slice(-4000)}`,
        );
      }
      if (await probeBanner(this.address, this.port, 1000)) return;
      if (Date.now() > deadline) {
        throw new Error(
          `sshd for ${this.name} (${this.address}:${this.port}) sent no SSH banner within ` +
            `${this.startTimeoutMs} ms:\n${p.output().slice(-4000)}`,
        );
      }
      await sleep(30);
    }
  }

  /**
   * SIGKILL sshd and its connections: sshd puts each connection in its own session, so killing
   * the listener's process group alone would leave established sessions running.
   */
  async kill(): Promise<void> {
    const p = this.process;
    const pids = new Set<number>();
    if (this.ns) {
      for (const pid of (await tryRun('ip', ['netns', 'pids', this.ns])).split(/\s+/))
        if (pid) pids.add(+pid);
    } else if (p?.child.pid && this.running) {
      const out = await tryRun('ps', ['-o', 'pid=', '--ppid', String(p.child.pid)]);
      for (const pid of out.split(/\s+/)) if (pid) pids.add(+pid);
    }
    if (p?.child.pid) pids.delete(p.child.pid);
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    await p?.kill();
  }

  async regenerateHostKey(): Promise<void> {
    const wasRunning = this.running;
    await this.generateHostKey();
    if (wasRunning) await this.restart();
  }
}

async function buildHost(
  i: number,
  setId: string,
  mode: SshHostsMode,
  subnet: number,
  opts: SshHostsOptions,
  sshd: string,
  sudoAvailable: boolean,
  created: Created,
): Promise<Host> {
  const name = `host${i}`;
  const root = await tempDir(`opsplane-ssh-${name}-`);
  created.dir = root.path;
  // sshd reads authorized_keys as the user, and homes live below: the dir must be traversable.
  await chmod(root.path, 0o755);

  let address = '127.0.0.1';
  let gateway = '127.0.0.1';
  let port = 22;
  let ns: string | undefined;
  if (mode === 'netns') {
    ns = `opsplane-${setId}-${i}`;
    const vh = `op${setId}${i}h`; // interface names: at most 15 characters
    const vn = `op${setId}${i}n`;
    created.ns = ns;
    await run('ip', ['netns', 'add', ns]);
    created.vethHost = vh;
    await run('ip', ['link', 'add', vh, 'type', 'veth', 'peer', 'name', vn]);
    await run('ip', ['link', 'set', vn, 'netns', ns]);
    const outer = `10.213.${subnet}.${4 * i + 1}`;
    address = `10.213.${subnet}.${4 * i + 2}`;
    await run('ip', ['addr', 'add', `${outer}/30`, 'dev', vh]);
    await run('ip', ['link', 'set', vh, 'up']);
    await run('ip', ['-n', ns, 'addr', 'add', `${address}/30`, 'dev', vn]);
    await run('ip', ['-n', ns, 'link', 'set', vn, 'up']);
    await run('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    // Everything else goes to the root namespace, so programs on the host reach any of its addresses.
    await run('ip', ['-n', ns, 'route', 'add', 'default', 'via', outer]);
    gateway = outer;
  } else {
    port = await freePort();
  }

  const akDir = join(root.path, 'authorized_keys');
  const keysDir = join(root.path, 'client-keys');
  await mkdir(akDir, { mode: 0o755 });
  await mkdir(keysDir, { mode: 0o700 });
  const secret = () => randomBytes(12).toString('base64url');
  const base = `opsp${setId}h${i}`; // e.g. opsp1a2b3ch0p — unique, short, valid

  const pwUser = { username: `${base}p`, password: secret() };
  await createUser(created, pwUser.username, join(root.path, 'home', pwUser.username), pwUser.password);

  const keyName = `${base}k`;
  await createUser(created, keyName, join(root.path, 'home', keyName), secret());
  const key = await genKey(join(keysDir, keyName), `${keyName}@opsplane-test`);
  await writeFile(join(akDir, keyName), key.publicKey + '\n', { mode: 0o644 });
  const users: SshHost['users'] = {
    password: pwUser,
    key: { username: keyName, ...key },
  };

  if (opts.keyWithPassphrase ?? true) {
    const xName = `${base}x`;
    const passphrase = secret();
    await createUser(created, xName, join(root.path, 'home', xName), secret());
    const xkey = await genKey(join(keysDir, xName), `${xName}@opsplane-test`, passphrase);
    await writeFile(join(akDir, xName), xkey.publicKey + '\n', { mode: 0o644 });
    users.keyWithPassphrase = { username: xName, ...xkey, passphrase };
  }

  const sudo = !!opts.sudoUser && sudoAvailable;
  if (sudo) {
    for (const u of created.users) {
      const f = `/etc/sudoers.d/${u}`; // no '.' or '~' in the name, or sudo ignores it
      created.sudoers.push(f);
      await writeFile(f, `${u} ALL=(ALL:ALL) NOPASSWD: ALL\n`, { mode: 0o440 });
    }
  }

  const host = new Host(
    name,
    address,
    port,
    root.path,
    users,
    sudo,
    ns,
    gateway,
    [...created.users],
    sshd,
    opts.startTimeoutMs ?? 15_000,
  );
  await host.generateHostKey();
  await host.writeConfig();
  await host.restart();
  return host;
}

/**
 * Starts `count` real sshd hosts (see the module comment); resolves once every one serves its
 * SSH banner. Call stop() when done (an after() hook).
 */
export async function startSshHosts(count: number, opts: SshHostsOptions = {}): Promise<SshHosts> {
  if (!Number.isInteger(count) || count < 1 || count > 63) {
    throw new RangeError(`host count must be 1..63, got ${count}`);
  }
  if (!isRoot()) {
    throw new Error('startSshHosts needs root: it creates system users (useradd) for sshd to authenticate');
  }
  const sshd = findSshd(opts);
  const wanted = opts.mode ?? 'auto';
  let mode: SshHostsMode;
  if (wanted === 'auto') mode = (await netnsWorks()) ? 'netns' : 'loopback';
  else if (wanted === 'netns' && !(await netnsWorks())) {
    throw new Error('netns mode requested but `ip netns add` does not work here (root and iproute2 needed)');
  } else mode = wanted;

  // Privilege separation dir (Debian's init script creates it; no service runs here).
  if (!existsSync('/run/sshd')) {
    mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
    chmodSync('/run/sshd', 0o755);
  }
  const sudoAvailable =
    ['/usr/bin/sudo', '/bin/sudo', '/usr/local/bin/sudo'].some((p) => existsSync(p)) &&
    existsSync('/etc/sudoers.d');

  const setId = `${(++setCounter % 36).toString(36)}${randomBytes(2).toString('hex')}`; // 5 chars
  const subnet = mode === 'netns' ? await pickSubnet() : 0;
  const createdAll: Created[] = [];
  let stopped = false;
  const hosts: Host[] = [];

  const stop = async () => {
    if (stopped) return;
    stopped = true;
    await Promise.all(hosts.map((h) => h.kill()));
    for (const c of createdAll) {
      await cleanup(c);
      liveCreated.delete(c);
    }
  };

  try {
    const results = await Promise.allSettled(
      Array.from({ length: count }, (_, i) => {
        const c: Created = { users: [], sudoers: [] };
        createdAll.push(c);
        liveCreated.add(c);
        return buildHost(i, setId, mode, subnet, opts, sshd, sudoAvailable, c).then((h) => {
          hosts.push(h);
          return h;
        });
      }),
    );
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
    hosts.sort((a, b) => a.name.localeCompare(b.name, 'en', { numeric: true }));
  } catch (e) {
    await stop().catch(() => undefined);
    throw e;
  }
  return { hosts, mode, machineAddress: hosts[0]?.gateway ?? '127.0.0.1', stop };
}
