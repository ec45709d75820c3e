/**
 * `opsplane demo`: the whole system on one machine, as real child processes of this one.
 *
 *   etcd (single member, <data>/etcd) → platform server (PGlite in <data>/server, `areas:`
 *   credentials in <data>/platform.yaml) → six devices seeded through the API → controllers
 *   ctrl-1a, ctrl-1b (area-1) and ctrl-2a (area-2) → six agents (three per area, named after
 *   their devices, agent code = the device's), each supervising the sample packages `web` and
 *   `collector` → wait until the server's aggregated view lists all six online → banner.
 *
 * Everything listens on loopback; the server prefers 127.0.0.1:8080 so its URL is stable across
 * runs. Generated credentials persist in <data>/secrets.json. One demo per data dir
 * (<data>/demo.lock). SIGINT/SIGTERM stop agents (which stop their packages), controllers,
 * server and etcd in that order; the data stays for the next run.
 *
 * etcd, the controllers, the agents and their sample packages are launched by @opsplane/fleet
 * (the launcher the tests use too); this file adds what only the demo has: the server and its
 * devices, the data dir with its lock and secrets, the prefixed log, the banner, the signals.
 */
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { delimiter, isAbsolute, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  canListen,
  cleanEnv,
  createFleet,
  DEMO_TIMING,
  exitedCheck,
  FleetError,
  freePort,
  indent,
  killAllProcesses,
  SAMPLE_PACKAGES,
  spawnProcess,
  ETCD_ROLES,
  issueTlsFiles,
  startEtcdProcess,
  terminatePids,
  tlsFetch,
  type TlsFiles,
  waitFor,
  WaitTimeoutError,
  type Fleet,
  type FleetAgent,
  type ManagedProcess,
} from '@opsplane/fleet';
import { initCa } from '@opsplane/pki';
import { cliInvocation } from '../invocation.js';
import { ChildLogs } from './child-logs.js';
import { demoBanner } from './banner.js';
import {
  acquireLock,
  leftoverProcesses,
  loadOrCreateSecrets,
  runningDemo,
  shutdownOrder,
  SECRETS_FILE,
  type DemoSecrets,
  type HeldLock,
  type LockInfo,
} from './demo-state.js';
import { ServerApi, ServerApiError } from './server-api.js';
import {
  agentHeader,
  controllerHeader,
  demoAgentIdentity,
  EXAMPLE_COLLECTOR_CONFIG,
  platformYaml,
} from './configs.js';

// ------------------------------------------------------------------------------------ layout

interface AreaLayout {
  name: string;
  short: string;
  controllers: string[];
  agents: number;
}

/** Two areas: area-1 with two controllers (failover), area-2 with one; three agents each. */
export const DEMO_LAYOUT: readonly AreaLayout[] = [
  { name: 'area-1', short: 'a1', controllers: ['ctrl-1a', 'ctrl-1b'], agents: 3 },
  { name: 'area-2', short: 'a2', controllers: ['ctrl-2a'], agents: 3 },
];

export const DEMO_ADMIN = 'admin';
const PREFERRED_PORT = 8080;

export interface DemoOptions {
  /** Absolute or relative to cwd. */
  dataDir: string;
  fresh: boolean;
  /** Server port; undefined = 8080 when free, else any free port; 0 = any free port. */
  port?: number | undefined;
  /** OPSPLANE_LOG_LEVEL of the children. */
  logLevel: string;
  /** Show per-request HTTP log lines too. */
  verbose: boolean;
  /** How long start-up may take before the demo gives up. */
  readyTimeoutMs: number;
  /** TLS everywhere (default true): a CA in <data>/pki, HTTPS, wss with mutual TLS, etcd over TLS with users. */
  tls?: boolean;
  /** Output (default stdout) and color (default: stdout is a TTY). */
  write?: (text: string) => void;
  color?: boolean;
}

/** A start-up failure the user should read (no stack trace). */
export class DemoError extends Error {
  override name = 'DemoError';
}

class Interrupted extends Error {
  override name = 'Interrupted';
}

// ------------------------------------------------------------------------------------ helpers

/** The CLI's own entry point (this file is dist/src/demo/demo-runner.js); OPSPLANE_CLI_MAIN overrides, as for the test fleet. */
function cliMain(): string {
  return process.env.OPSPLANE_CLI_MAIN || fileURLToPath(new URL('../main.js', import.meta.url));
}

/** A path as the user would type it from the current directory. */
function shown(p: string): string {
  const rel = relative(process.cwd(), p);
  return rel && !rel.startsWith('..') && !isAbsolute(rel) ? rel : p;
}

function findOnPath(cmd: string): string | undefined {
  if (cmd.includes('/')) return existsSync(cmd) ? cmd : undefined;
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    const p = join(dir, cmd);
    try {
      if (statSync(p).isFile()) return p;
    } catch {
      /* not here */
    }
  }
  return undefined;
}

/** Written 0600 from the start: the file holds credentials. */
async function writeSecretFile(path: string, text: string): Promise<void> {
  await writeFile(path, text, { mode: 0o600 });
  await chmod(path, 0o600);
}

// ------------------------------------------------------------------------------------ runner

/** The demo's TLS material (paths). */
interface DemoPki {
  caDir: string;
  /** The trust bundle everyone pins. */
  caFile: string;
  etcd: TlsFiles;
  etcdAdmin: TlsFiles;
  etcdServerClient: TlsFiles;
  etcdControllerClient: TlsFiles;
  server: TlsFiles;
}

export class DemoRunner {
  readonly dataDir: string;
  private readonly logs: ChildLogs;
  private lock: HeldLock | undefined;
  private etcd: ManagedProcess | undefined;
  private server: ManagedProcess | undefined;
  /** Controllers and agents (with their packages); set once the server is up. */
  private fleet: Fleet | undefined;
  private interrupted = false;
  private stopRequested: (() => void) | undefined;
  private readonly stopSignal: Promise<void>;
  /** Aborted by the first signal: every wait of the start-up ends at once. */
  private readonly abort = new AbortController();
  private lastSignalAt = 0;
  private stopping = false;
  private etcdUrl = '';
  private apiUrl = '';
  /** TLS material of this run (undefined with --no-tls). */
  private pki: DemoPki | undefined;
  /** Start-up must be done by then (--timeout). */
  private deadline = Number.POSITIVE_INFINITY;
  /** Leftovers of an earlier run being stopped; start() waits for it. */
  private pendingCleanup: Promise<unknown> | undefined;

  constructor(private readonly opts: DemoOptions) {
    this.dataDir = resolve(opts.dataDir);
    this.logs = new ChildLogs({
      ...(opts.write ? { write: opts.write } : {}),
      ...(opts.color !== undefined ? { color: opts.color } : {}),
      verbose: opts.verbose,
    });
    this.logs.reserve([
      'demo',
      'etcd',
      'server',
      ...DEMO_LAYOUT.flatMap((a) => [...a.controllers, `demo-${a.short}-${a.agents}`]),
    ]);
    this.stopSignal = new Promise((r) => (this.stopRequested = r));
  }

  private path(...p: string[]): string {
    return join(this.dataDir, ...p);
  }

  private check(): void {
    if (this.interrupted) throw new Interrupted('interrupted');
  }

  /** At most `timeoutMs`, and no later than the start-up deadline (--timeout). */
  private budget(timeoutMs: number): number {
    return Math.max(1000, Math.min(timeoutMs, this.deadline - Date.now()));
  }

  /** Polls `probe` until it returns a truthy value; fails after `timeoutMs`, fast if `alive()` exits. */
  private async waitFor<T>(
    what: string,
    timeoutMs: number,
    probe: () => Promise<T | undefined | false>,
    alive?: () => ManagedProcess | undefined,
  ): Promise<T> {
    timeoutMs = this.budget(timeoutMs);
    try {
      return (await waitFor(probe, {
        what,
        timeoutMs,
        intervalMs: 250,
        signal: this.abort.signal,
        check: () => {
          this.check();
          const p = alive?.();
          if (p) exitedCheck(p, what);
        },
      })) as T;
    } catch (e) {
      if (e instanceof WaitTimeoutError)
        throw new DemoError(`timed out after ${Math.round(timeoutMs / 1000)} s waiting for ${what}`);
      throw e;
    }
  }

  // -------------------------------------------------------------------- signals

  private onSignal = (signal: NodeJS.Signals) => {
    const now = Date.now();
    // `npm run demo` delivers one Ctrl-C twice (the terminal's and npm's forward): ignore the echo.
    if (now - this.lastSignalAt < 1500) return;
    const first = this.lastSignalAt === 0;
    this.lastSignalAt = now;
    if (first) {
      this.interrupted = true;
      this.logs.info(`${signal}: stopping the demo… (press Ctrl-C again to kill everything at once)`);
      this.stopRequested?.();
      this.abort.abort(new Interrupted('interrupted'));
    } else {
      this.logs.warn(`${signal} again: killing every process of the demo now`);
      killAllProcesses();
    }
  };

  // -------------------------------------------------------------------- main

  /** Runs the demo until a signal; resolves with the exit code. */
  async run(): Promise<number> {
    const t0 = Date.now();
    process.on('SIGINT', this.onSignal);
    process.on('SIGTERM', this.onSignal);
    process.on('SIGHUP', this.onSignal);
    try {
      const held = this.prepareDataDir();
      if (!held) return 1;
      let ok = false;
      try {
        await this.start(t0);
        ok = true;
      } catch (e) {
        if (e instanceof Interrupted || this.interrupted) {
          this.logs.info('interrupted during start-up');
        } else if (e instanceof DemoError || e instanceof FleetError) {
          this.logs.error(`cannot start the demo: ${e.message}`);
        } else {
          this.logs.error(`cannot start the demo: ${(e as Error).stack ?? String(e)}`);
        }
      }
      if (ok) {
        this.watchChildren();
        await this.stopSignal;
      }
      await this.shutdown(ok);
      return ok || this.interrupted ? 0 : 1;
    } finally {
      process.off('SIGINT', this.onSignal);
      process.off('SIGTERM', this.onSignal);
      process.off('SIGHUP', this.onSignal);
    }
  }

  /** Creates the data dir, takes the lock (or reports the running demo), cleans up, --fresh. */
  private prepareDataDir(): boolean {
    if (this.opts.fresh) {
      const holder = runningDemo(this.dataDir);
      if (holder) {
        this.reportRunning(holder);
        return false;
      }
    }
    mkdirSync(this.dataDir, { recursive: true, mode: 0o700 });
    const r = acquireLock(this.dataDir, { data_dir: this.dataDir });
    if (!r.ok) {
      this.reportRunning(r.holder);
      return false;
    }
    this.lock = r.lock;
    const leftovers = leftoverProcesses(this.dataDir);
    if (leftovers.length) {
      this.logs.warn(
        `${leftovers.length} process(es) of an earlier demo over ${shown(this.dataDir)} are still running (it did not stop cleanly); stopping them (pid ${leftovers
          .slice(0, 8)
          .map((p) => p.pid)
          .join(', ')}${leftovers.length > 8 ? ', …' : ''})`,
      );
      this.pendingCleanup = (async () => {
        for (const group of shutdownOrder(leftovers))
          await terminatePids(
            group.map((p) => p.pid),
            15_000,
          );
      })();
    } else if (r.tookOver) {
      this.logs.info(`took over a stale lock (pid ${r.tookOver.pid} is gone)`);
    }
    return true;
  }

  private reportRunning(holder: LockInfo): void {
    this.logs.error(
      `a demo is already running (pid ${holder.pid}${holder.api_url ? `, API ${holder.api_url}` : ''}); stop it with Ctrl-C in its terminal or kill ${holder.pid}`,
    );
  }

  private async start(t0: number): Promise<void> {
    await this.pendingCleanup;
    this.deadline = Date.now() + this.opts.readyTimeoutMs;
    if (this.opts.fresh) {
      for (const e of readdirSync(this.dataDir)) {
        if (e !== 'demo.lock') rmSync(this.path(e), { recursive: true, force: true });
      }
      this.logs.info(`--fresh: wiped ${shown(this.dataDir)}`);
    }
    const etcdBin = process.env.OPSPLANE_ETCD_BIN ?? 'etcd';
    if (!findOnPath(etcdBin)) {
      throw new DemoError(
        [
          `etcd is not installed (no '${etcdBin}' on PATH).`,
          '  `npm run demo` installs it on Debian/Ubuntu (scripts/ensure-deps.mjs: apt-get install etcd-server);',
          '  or install it yourself: sudo apt-get install etcd-server, or a release from https://etcd.io/docs/latest/install/',
          '  — then make sure `etcd` is on PATH (or set OPSPLANE_ETCD_BIN to its path).',
        ].join('\n'),
      );
    }
    const cmds = (await import('../commands/index.js')).COMMANDS.map((c) => c.name);
    if (!cmds.includes('server') && !process.env.OPSPLANE_CLI_MAIN) {
      throw new DemoError(
        `this build of opsplane has no 'server' command (it has: ${cmds.join(', ')}); rebuild from a complete checkout`,
      );
    }

    const adminFromEnv = process.env.OPSPLANE_ADMIN_PASSWORD;
    const secrets = loadOrCreateSecrets(
      this.dataDir,
      DEMO_LAYOUT.map((a) => a.name),
      { adminFromEnv: adminFromEnv !== undefined && adminFromEnv !== '' },
    );
    const adminPassword = adminFromEnv || (secrets.admin_password as string);
    this.logs.info(`data dir ${shown(this.dataDir)}; starting etcd, the server, 3 controllers and 6 agents`);

    if (this.opts.tls ?? true) this.pki = await this.preparePki();
    await this.startEtcd(etcdBin, secrets);
    const api = await this.startServer(secrets, adminPassword);
    try {
      await api.login(DEMO_ADMIN, adminPassword);
    } catch (e) {
      if (e instanceof ServerApiError && e.status === 401) {
        const kept = shown(this.path(SECRETS_FILE));
        throw new DemoError(
          adminFromEnv
            ? `the server in ${shown(this.path('server'))} refused ${DEMO_ADMIN} with the password in OPSPLANE_ADMIN_PASSWORD: its database was set up with another one` +
                (secrets.admin_password
                  ? ` (the generated one kept in ${kept}: unset OPSPLANE_ADMIN_PASSWORD to use it)`
                  : '') +
                '. Use that password, or start over with --fresh.'
            : `the server in ${shown(this.path('server'))} refused ${DEMO_ADMIN} with the password kept in ${kept}: its database was set up with another one ` +
                '(was OPSPLANE_ADMIN_PASSWORD set on an earlier run?). Set OPSPLANE_ADMIN_PASSWORD to that password, or start over with --fresh.',
        );
      }
      throw e;
    }
    const devices = await this.seedDevices(api);
    // Controllers and agents pin the cluster's artifact keys, as a deployment would write them,
    // so policies and rollouts work in the demo.
    const artifactKeys = (await api.call<{ keys: { key: string }[] }>('GET', '/artifacts/keys')).keys.map(
      (k) => k.key,
    );
    this.fleet = this.createFleet(secrets, artifactKeys);
    await this.startControllers();
    await this.startAgents(devices);
    await this.waitAgentsOnline(api);
    await this.writeExamples();

    this.lock?.update({ api_url: this.apiUrl });
    const text = this.banner(t0, !!adminFromEnv, adminPassword);
    (this.opts.write ?? ((t: string) => void process.stdout.write(t)))(text);
  }

  private banner(t0: number, fromEnv: boolean, password: string): string {
    return demoBanner({
      apiUrl: this.apiUrl,
      username: DEMO_ADMIN,
      password,
      passwordSource: fromEnv ? { env: true } : { file: shown(this.path(SECRETS_FILE)) },
      areas: DEMO_LAYOUT.length,
      controllers: this.controllers.length,
      agents: this.agents.length,
      packages: this.agents.length * SAMPLE_PACKAGES.length,
      cli: cliInvocation(),
      exampleAgent: this.agents[0]?.code ?? '<agent code>',
      exampleConfigFile: shown(this.path('examples', 'collector.yaml')),
      dataDir: shown(this.dataDir),
      ...(this.pki ? { caFile: shown(this.pki.caFile) } : {}),
      startupSeconds: (Date.now() - t0) / 1000,
      color: this.logs.color,
    });
  }

  // -------------------------------------------------------------------- pki

  /**
   * The demo's CA (<data>/pki/ca, kept across runs so that browsers that trust it keep doing so)
   * and fresh leaf certificates: etcd's, the server's, and etcd client certificates for the
   * server, the controllers and the bootstrap. Controllers and agents get theirs from the fleet.
   */
  private async preparePki(): Promise<DemoPki> {
    const caDir = this.path('pki', 'ca');
    const ca = await initCa(caDir);
    if (ca.created) this.logs.info(`created the demo's certificate authority in ${shown(caDir)}`);
    const loopback = ['localhost', '127.0.0.1', '::1'];
    const dir = (...p: string[]) => this.path('pki', ...p);
    return {
      caDir,
      caFile: ca.bundlePath,
      etcd: await issueTlsFiles(caDir, dir('etcd'), 'etcd', { kind: 'server', name: 'etcd', sans: loopback }),
      etcdAdmin: await issueTlsFiles(caDir, dir('etcd'), 'admin', { kind: 'client', name: 'etcd-admin' }),
      etcdServerClient: await issueTlsFiles(caDir, dir('server'), 'etcd-client', {
        kind: 'client',
        name: 'opsplane-server',
      }),
      etcdControllerClient: await issueTlsFiles(caDir, dir('controllers'), 'etcd-client', {
        kind: 'client',
        name: 'opsplane-controller',
      }),
      server: await issueTlsFiles(caDir, dir('server'), 'server', {
        kind: 'server',
        name: 'platform',
        sans: loopback,
      }),
    };
  }

  // -------------------------------------------------------------------- etcd

  private async startEtcd(bin: string, secrets: DemoSecrets): Promise<void> {
    const dataDir = this.path('etcd');
    const pki = this.pki;
    const pw = secrets.etcd;
    const etcd = await startEtcdProcess({
      ...(pki && pw
        ? {
            security: {
              server: pki.etcd,
              admin: pki.etcdAdmin,
              rootPassword: pw.root,
              users: [
                { name: ETCD_ROLES.server.name, password: pw.server, role: ETCD_ROLES.server },
                { name: ETCD_ROLES.controller.name, password: pw.controller, role: ETCD_ROLES.controller },
              ],
            },
          }
        : {}),
      dataDir,
      name: 'demo',
      clusterToken: 'opsplane-demo',
      bin,
      logLevel: this.opts.logLevel === 'debug' || this.opts.logLevel === 'trace' ? 'info' : 'error',
      env: cleanEnv({}),
      onLine: (line) => this.logs.childLine('etcd', line),
      exitSignal: 'SIGTERM',
      timeoutMs: this.budget(20_000),
      signal: this.abort.signal,
    });
    this.etcd = etcd.process;
    this.etcdUrl = etcd.url;
    this.logs.info(
      `etcd is up at ${this.etcdUrl} (data in ${shown(dataDir)}${pki ? '; TLS with client certificates, users and roles' : ''})`,
    );
  }

  // -------------------------------------------------------------------- server

  private async pickServerPort(): Promise<number> {
    if (this.opts.port !== undefined && this.opts.port !== 0) {
      if (!(await canListen(this.opts.port))) {
        throw new DemoError(
          `port ${this.opts.port} is in use; pick another with --port, or --port 0 for any free port`,
        );
      }
      return this.opts.port;
    }
    if (this.opts.port === undefined) {
      if (await canListen(PREFERRED_PORT)) return PREFERRED_PORT;
      const p = await freePort();
      this.logs.warn(`port ${PREFERRED_PORT} is in use; the server takes ${p} instead`);
      return p;
    }
    return freePort();
  }

  private async startServer(secrets: DemoSecrets, adminPassword: string): Promise<ServerApi> {
    const configPath = this.path('platform.yaml');
    for (let attempt = 0; ; attempt++) {
      const port = await this.pickServerPort();
      this.apiUrl = `${this.pki ? 'https' : 'http'}://127.0.0.1:${port}`;
      const areas: Record<string, { agent_secret: string; controller_token: string }> = {};
      for (const a of DEMO_LAYOUT) {
        const sec = secrets.areas[a.name];
        if (sec) areas[a.name] = sec;
      }
      await writeSecretFile(
        configPath,
        platformYaml({
          etcdUrl: this.etcdUrl,
          port,
          serverDataDir: this.path('server'),
          areas,
          ...(this.pki && secrets.etcd
            ? {
                tls: {
                  server: { cert: this.pki.server.cert, key: this.pki.server.key },
                  caDir: this.pki.caDir,
                  etcd: {
                    ...this.pki.etcdServerClient,
                    username: ETCD_ROLES.server.name,
                    password: secrets.etcd.server,
                  },
                },
              }
            : {}),
        }),
      );
      this.server = spawnProcess('server', process.execPath, [cliMain(), 'server', '--config', configPath], {
        env: cleanEnv({ OPSPLANE_LOG_LEVEL: this.opts.logLevel, OPSPLANE_ADMIN_PASSWORD: adminPassword }),
        onLine: (line) => this.logs.childLine('server', line),
        exitSignal: 'SIGTERM',
      });
      const api = new ServerApi(
        this.apiUrl,
        this.pki ? tlsFetch({ ca: readFileSync(this.pki.caFile, 'utf8') }) : undefined,
      );
      if (attempt === 0 && !existsSync(this.path('server', 'db'))) {
        this.logs.info(
          'first start: the server sets up its embedded database (PGlite), which takes a little while…',
        );
      }
      try {
        await this.waitFor(
          'the server to answer /healthz',
          90_000,
          () => api.healthy(),
          () => this.server,
        );
        this.logs.info(`the server is up at ${this.apiUrl} (database in ${shown(this.path('server'))})`);
        return api;
      } catch (e) {
        await this.server.kill();
        if (attempt < 2 && /EADDRINUSE/.test(this.server.tail(100)) && !this.opts.port) {
          this.logs.warn(`port ${port} was taken meanwhile; trying another`);
          this.opts.port = 0;
          continue;
        }
        throw e;
      }
    }
  }

  // -------------------------------------------------------------------- devices

  /** The six devices (created when missing, found by name otherwise): device name → agent code. */
  private async seedDevices(api: ServerApi): Promise<Map<string, { code: string; area: string }>> {
    const out = new Map<string, { code: string; area: string }>();
    const arch = process.arch === 'arm64' ? 'arm64' : 'amd64';
    let created = 0;
    for (const a of DEMO_LAYOUT) {
      for (let i = 1; i <= a.agents; i++) {
        const name = `demo-${a.short}-${i}`;
        const found = await api.call<{
          devices: { name: string; agent_code: string; function_area: string }[];
        }>('GET', `/devices?name=${encodeURIComponent(name)}&pageSize=100`);
        let dev = found.devices.find((d) => d.name === name);
        if (!dev) {
          dev = await api.call('POST', '/devices', {
            name,
            ip: '127.0.0.1',
            function_area: a.name,
            os: 'linux',
            arch,
            login_method: 'ssh',
            login: { username: 'opsplane', port: 22 },
            metadata: { demo: 'true', note: 'seeded by opsplane demo; its agent runs on this machine' },
          });
          created++;
        }
        if (!dev) throw new DemoError(`could not create device ${name}`);
        if (dev.function_area !== a.name) {
          this.logs.warn(
            `device ${name} is in ${dev.function_area}, not ${a.name}; its agent joins ${a.name} anyway`,
          );
        }
        out.set(name, { code: dev.agent_code, area: a.name });
      }
    }
    this.logs.info(
      created
        ? `seeded ${created} device(s); ${out.size - created} already there`
        : `the ${out.size} demo devices are already there`,
    );
    return out;
  }

  // -------------------------------------------------------------------- controllers and agents

  private get controllers() {
    return this.fleet?.controllers ?? [];
  }

  private get agents() {
    return this.fleet?.agents ?? [];
  }

  /** The controllers and agents of DEMO_LAYOUT over this data dir (controllers/<id>, agents/<code>). */
  private createFleet(secrets: DemoSecrets, artifactKeys: readonly string[]): Fleet {
    const areaSecrets = (area: string) => {
      const s = secrets.areas[area];
      if (!s) throw new DemoError(`no secrets for ${area}`);
      return s;
    };
    const pki = this.pki;
    return createFleet({
      etcd: {
        endpoints: [this.etcdUrl],
        ...(pki && secrets.etcd
          ? {
              controllerAccess: {
                tls: pki.etcdControllerClient,
                username: ETCD_ROLES.controller.name,
                password: secrets.etcd.controller,
              },
            }
          : {}),
      },
      ...(pki ? { tls: { caDir: pki.caDir } } : {}),
      root: this.dataDir,
      areas: DEMO_LAYOUT.map((a) => ({ name: a.name, controllers: a.controllers, agents: 0 })),
      secrets: Object.fromEntries(DEMO_LAYOUT.map((a) => [a.name, areaSecrets(a.name).agent_secret])),
      apiToken: Object.fromEntries(DEMO_LAYOUT.map((a) => [a.name, areaSecrets(a.name).controller_token])),
      timing: DEMO_TIMING,
      artifactKeys,
      agentMetrics: false,
      // After Ctrl-C no package of the demo keeps running.
      stopPackagesOnExit: true,
      logLevel: this.opts.logLevel,
      output: (name) => (line) => this.logs.childLine(name, line),
      exitSignal: 'SIGTERM',
      cliMain: cliMain(),
      signal: this.abort.signal,
      configHeader: {
        controller: (c) => controllerHeader({ area: c.area, configPath: shown(c.configPath) }),
        agent: (a) => agentHeader({ code: a.code, name: a.name, area: a.area, tls: pki !== undefined }),
      },
    });
  }

  private async startControllers(): Promise<void> {
    await this.fleet?.startControllers(this.budget(30_000));
    this.logs.info(
      `controllers registered: ${this.controllers.map((c) => `${c.id} (${c.area}, ${c.url})`).join(', ')}`,
    );
  }

  /** One agent per device, named after it; started, not waited for (the server's view is). */
  private async startAgents(devices: Map<string, { code: string; area: string }>): Promise<void> {
    for (const a of DEMO_LAYOUT) {
      for (let i = 1; i <= a.agents; i++) {
        const name = `demo-${a.short}-${i}`;
        const dev = devices.get(name);
        if (!dev) throw new DemoError(`no device ${name}`);
        await this.fleet?.addAgent({
          area: a.name,
          code: dev.code,
          name,
          ...demoAgentIdentity(name, a.name),
          waitOnline: false,
        });
      }
    }
    this.logs.info(`agents started: ${this.agents.map((a) => `${a.name}=${a.code}`).join(', ')}`);
  }

  private async waitAgentsOnline(api: ServerApi): Promise<void> {
    const want = new Map(this.agents.map((a) => [a.code, a]));
    let last: { online: Set<string>; errors: string[]; status: number } = {
      online: new Set(),
      errors: [],
      status: 0,
    };
    const timeoutMs = Math.max(1000, this.deadline - Date.now());
    try {
      await this.waitFor('the agents to be online', timeoutMs, async () => {
        for (const a of this.agents) {
          if (!a.process.running) {
            const info = await a.process.exited;
            throw new DemoError(
              `agent ${a.name} (${a.code}) exited (${info.signal ?? `code ${info.code}`}); its last output:\n${indent(a.process.tail())}`,
            );
          }
        }
        const r = await api.request<{
          agents?: { agent_code?: string; id?: string; status?: string }[];
          errors?: { area: string; controller_id: string; message: string }[];
        }>('GET', '/agents?refresh=true&pageSize=500', undefined, 10_000);
        const online = new Set<string>();
        for (const ag of r.body?.agents ?? []) {
          const code = ag.agent_code ?? ag.id ?? '';
          if (ag.status === 'online' && want.has(code)) online.add(code);
        }
        last = {
          online,
          status: r.status,
          errors: (r.body?.errors ?? []).map((e) => `${e.area}/${e.controller_id || '*'}: ${e.message}`),
        };
        return r.status === 200 && online.size === want.size;
      });
    } catch (e) {
      if (!(e instanceof DemoError) || !/timed out/.test(e.message)) throw e;
      const missing = [...want.values()].filter((a) => !last.online.has(a.code));
      throw new DemoError(
        [
          `after ${Math.round(timeoutMs / 1000)} s the server lists ${last.online.size} of ${want.size} agents online (GET /api/v1/agents → ${last.status || 'no answer'}).`,
          `  not online: ${missing.map((a) => `${a.name} (${a.code}, ${a.area})`).join(', ')}`,
          ...(last.errors.length ? [`  the server reports: ${last.errors.join('; ')}`] : []),
          ...missing.slice(0, 2).map((a) => `  last output of ${a.name}:\n${indent(a.process.tail(15), 4)}`),
        ].join('\n'),
      );
    }
    this.logs.info(`all ${want.size} agents are online in the server's aggregated view`);
    // Let the packages' first health checks land so the banner is not followed by a burst of
    // "health changed" lines. Not fatal: an unhealthy package is something to look at, and a
    // package stopped in an earlier run stays stopped (the agent keeps the operator's decision).
    type Svc = { name: string; status?: string; health_status?: string };
    let notHealthy: string[] = [];
    let stopped: { agent: FleetAgent; pkg: string }[] = [];
    const healthy = await this.waitFor('healthy packages', 20_000, async () => {
      const r = await api.request<{ agents?: { agent_code: string; services?: Svc[] }[] }>(
        'GET',
        '/agents?refresh=true&pageSize=500',
        undefined,
        10_000,
      );
      notHealthy = [];
      stopped = [];
      for (const a of r.body?.agents ?? []) {
        const agent = want.get(a.agent_code);
        if (!agent) continue;
        for (const svc of a.services ?? []) {
          if (svc.status === 'stopped') stopped.push({ agent, pkg: svc.name });
          else if (svc.health_status !== 'healthy')
            notHealthy.push(`${agent.name}/${svc.name} (${svc.status}, ${svc.health_status})`);
        }
      }
      return r.status === 200 && notHealthy.length === 0;
    }).catch((e: unknown) => {
      if (e instanceof Interrupted) throw e;
      return false;
    });
    if (!healthy) this.logs.warn(`not healthy yet: ${notHealthy.join(', ')}`);
    if (stopped.length) {
      const codes = [...new Set(stopped.map((s) => s.agent.code))];
      const pkgs = [...new Set(stopped.map((s) => s.pkg))];
      this.logs.warn(
        `${stopped.length} package(s) stay stopped as an operator left them: ${stopped.map((s) => `${s.agent.name}/${s.pkg}`).join(', ')}\n` +
          `  start them with: ${cliInvocation().command} batch start ${codes.length === this.agents.length ? '--status online' : `--agents ${codes.join(',')}`} --packages ${pkgs.join(',')}   (or run the demo with --fresh)`,
      );
    }
  }

  /** Files the banner's CLI examples use. */
  private async writeExamples(): Promise<void> {
    const dir = this.path('examples');
    await mkdir(dir, { recursive: true });
    const file = join(dir, 'collector.yaml');
    if (!existsSync(file)) await writeFile(file, EXAMPLE_COLLECTOR_CONFIG);
  }

  // -------------------------------------------------------------------- running

  /** Reports children that exit while the demo runs (they are not restarted). */
  private watchChildren(): void {
    const all: ManagedProcess[] = [
      ...(this.etcd ? [this.etcd] : []),
      ...(this.server ? [this.server] : []),
      ...this.controllers.flatMap((c) => (c.process ? [c.process] : [])),
      ...this.agents.flatMap((a) => (a.process ? [a.process] : [])),
    ];
    for (const p of all) {
      void p.exited.then((info) => {
        if (p.stopping || this.stopping) return;
        this.logs.warn(
          `${p.name} exited unexpectedly (${info.signal ?? `code ${info.code}`}); the rest keeps running — Ctrl-C stops the demo`,
        );
      });
    }
  }

  // -------------------------------------------------------------------- stop

  private async shutdown(ranOk: boolean): Promise<void> {
    this.stopping = true;
    const agents = this.agents.flatMap((a) => (a.process ? [a.process] : []));
    const controllers = this.controllers.flatMap((c) => (c.process ? [c.process] : []));
    const step = async (what: string, procs: ManagedProcess[], graceMs: number) => {
      const running = procs.filter((p) => p.running);
      if (!running.length) return;
      this.logs.info(`stopping ${what}…`);
      await Promise.all(running.map((p) => p.stop(graceMs)));
    };
    // Agents first: they stop their packages (stop_packages_on_exit) and say goodbye to the controllers.
    await step(`${agents.length} agents and their packages`, agents, 15_000);
    await step(`${controllers.length} controllers`, controllers, 8_000);
    await step('the server', this.server ? [this.server] : [], 10_000);
    await step('etcd', this.etcd ? [this.etcd] : [], 8_000);
    // Belt and braces: nothing started over this data dir may survive the demo.
    const left = leftoverProcesses(this.dataDir);
    if (left.length) {
      this.logs.warn(
        `stopping ${left.length} leftover process(es): ${left.map((p) => `${p.pid} (${p.cmdline.slice(0, 80)})`).join(', ')}`,
      );
      const survivors = await terminatePids(
        left.map((p) => p.pid),
        3000,
      );
      if (survivors.length) this.logs.error(`could not stop pid ${survivors.join(', ')}`);
    }
    this.lock?.release();
    if (!this.lock) return;
    this.logs.info(
      ranOk
        ? `demo stopped. Data kept in ${shown(this.dataDir)} (admin password in ${shown(this.path(SECRETS_FILE))}); run it again the same way, or with --fresh to start over.`
        : `stopped what had started; data kept in ${shown(this.dataDir)}.`,
    );
  }
}

export async function runDemo(opts: DemoOptions): Promise<number> {
  return new DemoRunner(opts).run();
}
