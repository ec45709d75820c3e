/**
 * An Opsplane system as real processes: the controllers of each area as `opsplane controller`
 * processes (registered in an etcd the caller gives), and agents as `opsplane agent`
 * processes, each with its own directory (agent.yaml, packages/, data/) holding the sample
 * packages (sample-packages.ts). `opsplane demo` and the tests (through @opsplane/test-support)
 * both launch their fleets with this.
 *
 * Layout under `root`: controllers/<id>/controller.yaml, agents/<code>/{agent.yaml, packages/,
 * data/}. Agent tokens are computed with `agentToken` of @opsplane/models — the function the
 * server issues them with and the controllers check them against.
 *
 * The CLI is run by path (`node <cli>/dist/src/main.js`, the sibling package of this one, or
 * `cliMain` / $OPSPLANE_CLI_MAIN), never imported: a fleet runs exactly what operators run, and
 * this package imports no daemon code.
 *
 * Cleanup: every process is spawned by processes.ts (own process group, killed with the parent
 * on a normal exit). stop() kills controllers and agents, the packages too when guarded, the
 * etcd when `ownsEtcd`, and removes a root it created. With `guard` (the tests), nothing
 * outlives a parent killed by a signal by more than about a second (guard.ts). Without it (the
 * demo), the caller stops the processes in its own order through the handles.
 *
 * The options and handle types are in fleet-types.ts.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { agentToken } from '@opsplane/models';
import {
  agentConfig,
  controllerConfig,
  FAST_TIMING,
  mergeConfig,
  type FleetTiming,
  type Plain,
} from './configs.js';
import { exitedCheck, FleetError } from './errors.js';
import {
  killTagged,
  packageGuardEnv,
  pidsTagged,
  startReaper,
  watchdogNodeArgs,
  type ReaperTargets,
} from './guard.js';
import { stablePort } from './ports.js';
import { cleanEnv, spawnProcess, type ManagedProcess } from './processes.js';
import {
  installSamplePackage,
  packageConfigText,
  sampleConfigFileName,
  type SamplePackageKind,
} from './sample-packages.js';
import { sleep, waitFor, WaitTimeoutError } from '@opsplane/kit';
import { toYaml } from './yaml.js';
import { issueTlsFiles, tlsFetch } from './security.js';
import type {
  AddAgentOptions,
  Fleet,
  FleetAgent,
  FleetApiResponse,
  FleetController,
  FleetEtcd,
  FleetOptions,
  FleetPackage,
  SamplePackageSpec,
} from './fleet-types.js';

// ------------------------------------------------------------------------------------ internals

/** The CLI's main.js: $OPSPLANE_CLI_MAIN, else the sibling package's (<cli>/dist/src/main.js). */
export function defaultCliMain(): string {
  return (
    process.env.OPSPLANE_CLI_MAIN || fileURLToPath(new URL('../../../cli/dist/src/main.js', import.meta.url))
  );
}

/** Guarded fleets not stopped yet: their packages are killed when this process exits. */
const liveFleets = new Set<FleetImpl<FleetEtcd>>();
process.once('exit', () => {
  for (const f of liveFleets) f.exitCleanup();
});

class PackageImpl implements FleetPackage {
  constructor(
    readonly name: string,
    readonly kind: SamplePackageKind,
    readonly dir: string,
    readonly port: number | undefined,
    private readonly logPath: string,
  ) {}
  log() {
    return readFile(this.logPath, 'utf8').catch(() => '');
  }
  get configDir() {
    return join(this.dir, 'config');
  }
  get configFileName() {
    return sampleConfigFileName(this.kind);
  }
  get configPath() {
    return join(this.configDir, this.configFileName);
  }
  get healthUrl() {
    return this.port === undefined ? undefined : `http://127.0.0.1:${this.port}/health`;
  }
  readConfig() {
    return readFile(this.configPath, 'utf8');
  }
  writeConfig(content: string | Record<string, unknown>) {
    return writeFile(this.configPath, packageConfigText(content));
  }
}

class ControllerImpl implements FleetController {
  process!: ManagedProcess;
  constructor(
    private readonly fleet: FleetImpl<FleetEtcd>,
    readonly id: string,
    readonly area: string,
    public port: number,
    readonly configPath: string,
  ) {}
  get url() {
    return `${this.fleet.scheme}://${this.address}`;
  }
  get address() {
    return `${this.fleet.controllerHost}:${this.port}`;
  }
  get etcdKey() {
    return `${this.fleet.prefix}${this.area}/${this.id}`;
  }
  get running() {
    return this.process?.running ?? false;
  }
  kill() {
    return this.process.kill();
  }
  stop(graceMs = 5000) {
    return this.process.stop(graceMs);
  }
  async start(): Promise<void> {
    if (this.running) return;
    await this.fleet.launchController(this);
  }
}

interface AgentIdentity {
  hostname: string;
  labels: Readonly<Record<string, string>>;
  zone: string;
  group: string;
}

class AgentImpl implements FleetAgent {
  process!: ManagedProcess;
  constructor(
    private readonly fleet: FleetImpl<FleetEtcd>,
    readonly code: string,
    readonly area: string,
    readonly name: string,
    readonly token: string,
    readonly controllerUrls: readonly string[],
    readonly dir: string,
    public metricsPort: number | undefined,
    readonly packages: readonly PackageImpl[],
    readonly identity: AgentIdentity,
    readonly extraConfig: Record<string, unknown> | undefined,
  ) {}
  get packagesDir() {
    return join(this.dir, 'packages');
  }
  get dataDir() {
    return join(this.dir, 'data');
  }
  get configPath() {
    return join(this.dir, 'agent.yaml');
  }
  get metricsUrl() {
    return this.metricsPort === undefined ? undefined : `http://127.0.0.1:${this.metricsPort}`;
  }
  get running() {
    return this.process?.running ?? false;
  }
  package(name: string): FleetPackage {
    const p = this.packages.find((x) => x.name === name);
    if (!p) throw new Error(`fleet: agent ${this.code} has no package '${name}'`);
    return p;
  }
  kill() {
    return this.process.kill();
  }
  stop(graceMs = 10_000) {
    return this.process.stop(graceMs);
  }
  async start(opts: { waitOnline?: boolean } = {}): Promise<void> {
    if (this.running) return;
    await this.fleet.launchAgent(this);
    if (opts.waitOnline ?? true) await this.fleet.waitOnline(this);
  }
  private endpoint(path: string): string {
    if (this.metricsUrl === undefined) throw new Error(`fleet: agent ${this.code} has no metrics endpoint`);
    return `${this.metricsUrl}${path}`;
  }
  async healthz() {
    const res = await fetch(this.endpoint('/healthz'), { signal: AbortSignal.timeout(2000) });
    return (await res.json()) as { connected: boolean; controller: string | null; overall_health: string };
  }
  async connectedController(): Promise<string | undefined> {
    const h = await this.healthz();
    return h.connected && h.controller ? h.controller : undefined;
  }
  async metricsText(): Promise<string> {
    const res = await fetch(this.endpoint('/metrics'), { signal: AbortSignal.timeout(2000) });
    return res.text();
  }
}

class FleetImpl<E extends FleetEtcd> implements Fleet<E> {
  readonly controllers: ControllerImpl[] = [];
  readonly agents: AgentImpl[] = [];
  readonly areas: string[];
  readonly prefix: string;
  readonly etcd: E;
  readonly tag = `${process.pid}-${randomBytes(6).toString('hex')}`;
  readonly controllerHost: string;
  root: string;
  private readonly ownsRoot: boolean;
  private readonly timing: FleetTiming;
  private readonly secrets = new Map<string, string>();
  private readonly cliMain: string;
  private readonly guard: ReaperTargets | undefined;
  private prepared: Promise<void> | undefined;
  private stopped: Promise<void> | undefined;
  private reaper: ManagedProcess | undefined;
  readonly scheme: 'http' | 'https';
  readonly caBundle: string | undefined;
  readonly fetch: typeof fetch;

  constructor(readonly opts: FleetOptions<E>) {
    this.scheme = opts.tls ? 'https' : 'http';
    const bundlePath = opts.tls ? join(opts.tls.caDir, 'ca-bundle.crt') : undefined;
    this.caBundle = bundlePath ? readFileSync(bundlePath, 'utf8') : undefined;
    // Re-read at each request: after a CA rotation the bundle holds both CAs.
    this.fetch = bundlePath ? tlsFetch({ ca: () => readFileSync(bundlePath, 'utf8') }) : fetch;
    const areas = opts.areas ?? [{ name: 'area-1' }];
    this.areas = areas.map((a) => a.name);
    if (new Set(this.areas).size !== this.areas.length) throw new Error('fleet: area names must be unique');
    this.etcd = opts.etcd;
    this.prefix = opts.prefix ?? 'controllers/';
    this.controllerHost = opts.controllerAddress ?? '127.0.0.1';
    this.timing = opts.timing ?? FAST_TIMING;
    this.root = opts.root ?? '';
    this.ownsRoot = opts.root === undefined;
    for (const a of this.areas) {
      const s = opts.secrets?.[a] ?? `fleet-secret-${a}-${randomBytes(12).toString('hex')}`;
      if (s.length < 16) throw new Error(`fleet: the secret of area ${a} must be at least 16 characters`);
      this.secrets.set(a, s);
    }
    this.cliMain = opts.cliMain ?? defaultCliMain();
    this.guard = opts.guard === true ? {} : opts.guard || undefined;
  }

  secret(area: string): string {
    const s = this.secrets.get(area);
    if (s === undefined) throw new Error(`fleet: unknown area '${area}'`);
    return s;
  }

  apiToken(area: string): string | undefined {
    const t = this.opts.apiToken;
    return typeof t === 'string' ? t : t?.[area];
  }

  controllersOf(area: string) {
    return this.controllers.filter((c) => c.area === area);
  }
  agentsOf(area: string) {
    return this.agents.filter((a) => a.area === area);
  }
  controller(id: string): FleetController {
    const c = this.controllers.find((x) => x.id === id);
    if (!c) throw new Error(`fleet: no controller '${id}'`);
    return c;
  }
  agent(code: string): FleetAgent {
    const a = this.agents.find((x) => x.code === code);
    if (!a) throw new Error(`fleet: no agent '${code}'`);
    return a;
  }

  apiHeaders(area?: string): Record<string, string> {
    const token =
      area !== undefined
        ? this.apiToken(area)
        : typeof this.opts.apiToken === 'string'
          ? this.opts.apiToken
          : undefined;
    return token ? { authorization: `Bearer ${token}` } : {};
  }

  async api<T = unknown>(
    controller: FleetController | string,
    method: 'GET' | 'POST',
    path: string,
    body?: unknown,
  ): Promise<FleetApiResponse<T>> {
    const ctrl =
      typeof controller === 'string' ? this.controllers.find((c) => c.url === controller) : controller;
    const base = typeof controller === 'string' ? controller : controller.url;
    const res = await this.fetch(`${base}${path}`, {
      method,
      headers: {
        accept: 'application/json',
        ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
        ...this.apiHeaders(ctrl?.area),
      },
      ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
      signal: AbortSignal.timeout(60_000),
    });
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      /* not JSON: keep the text */
    }
    return { status: res.status, body: parsed as T, headers: res.headers };
  }

  async holderOf(code: string): Promise<FleetController | undefined> {
    const area = this.agents.find((a) => a.code === code)?.area;
    const candidates = area ? this.controllersOf(area) : this.controllers;
    for (const c of candidates.filter((x) => x.running)) {
      try {
        const r = await this.api<{ agents: { id: string; status: string; controller_id?: string }[] }>(
          c,
          'GET',
          `/api/v1/agents?id=${encodeURIComponent(code)}`,
        );
        // A controller lists its whole area; the record says which controller holds the agent.
        const held = (a: { id: string; status: string; controller_id?: string }) =>
          a.id === code && a.status === 'online' && (a.controller_id ?? c.id) === c.id;
        if (r.status === 200 && r.body.agents.some(held)) return c;
      } catch {
        /* not reachable right now */
      }
    }
    return undefined;
  }

  async waitOnline(agent: FleetAgent | string, timeoutMs = 20_000): Promise<FleetController> {
    const a = typeof agent === 'string' ? this.agent(agent) : agent;
    try {
      return await waitFor(() => this.holderOf(a.code), {
        timeoutMs,
        intervalMs: 100,
        what: `agent ${a.code} listed online`,
        check: () => exitedCheck(a.process, `agent ${a.code} to be listed online`),
        ...this.abortable(),
      });
    } catch (e) {
      if (e instanceof WaitTimeoutError) {
        throw new FleetError(
          `${e.message}\n--- agent ${a.code} output ---\n${a.process.output().slice(-4000)}`,
        );
      }
      throw e;
    }
  }

  packagePids(): number[] {
    return pidsTagged(this.tag);
  }

  private abortable(): { signal?: AbortSignal } {
    return this.opts.signal ? { signal: this.opts.signal } : {};
  }

  private defaultDeadline(timeoutMs = this.opts.startTimeoutMs ?? 60_000): number {
    return Date.now() + timeoutMs;
  }

  private get pidDir(): string {
    return join(this.root, 'pids');
  }

  // -------------------------------------------------------------------- start-up

  /** Root dir, guard; once. */
  private prepare(): Promise<void> {
    this.prepared ??= (async () => {
      if (!existsSync(this.cliMain)) {
        throw new FleetError(`fleet: ${this.cliMain} does not exist; build first (npm run build)`);
      }
      if (this.ownsRoot) this.root = await mkdtemp(join(tmpdir(), 'opsplane-fleet-'));
      await mkdir(this.root, { recursive: true });
      if (this.guard) {
        liveFleets.add(this);
        await mkdir(this.pidDir, { recursive: true });
        this.reaper = startReaper(this.tag, {
          pids: this.guard.pids ?? [],
          dirs: [...(this.ownsRoot ? [this.root] : []), ...(this.guard.dirs ?? [])],
        });
      }
    })();
    return this.prepared;
  }

  async startControllers(timeoutMs?: number): Promise<void> {
    await this.prepare();
    const deadline = this.defaultDeadline(timeoutMs);
    for (const a of this.opts.areas ?? [{ name: 'area-1' }]) {
      const spec = a.controllers ?? 1;
      const ids =
        typeof spec === 'number'
          ? Array.from(
              { length: spec },
              (_, i) =>
                this.opts.controllerId?.(a.name, i) ??
                `${a.name}-ctrl-${String.fromCharCode(97 + (i % 26))}${i >= 26 ? i : ''}`,
            )
          : spec;
      for (const id of ids) {
        if (this.controllers.some((c) => c.id === id)) continue;
        const dir = join(this.root, 'controllers', id);
        await mkdir(dir, { recursive: true });
        this.controllers.push(
          new ControllerImpl(this, id, a.name, await stablePort(), join(dir, 'controller.yaml')),
        );
      }
    }
    await Promise.all(
      this.controllers.filter((c) => !c.running).map((c) => this.launchController(c, deadline)),
    );
  }

  async start(timeoutMs?: number): Promise<void> {
    const deadline = this.defaultDeadline(timeoutMs);
    await this.startControllers(deadline - Date.now());
    // Created one by one so that `agents` lists them in a stable order (area by area, by index).
    const created: AgentImpl[] = [];
    for (const a of this.opts.areas ?? [{ name: 'area-1' }]) {
      for (let i = 0; i < (a.agents ?? 1); i++) {
        created.push(await this.createAgent({ area: a.name }));
      }
    }
    await Promise.all(created.map((a) => this.launchAgent(a, deadline)));
    await Promise.all(created.map((a) => this.waitOnline(a, Math.max(1000, deadline - Date.now()))));
  }

  private spawnDaemon(name: string, args: string[], env: Record<string, string | undefined>): ManagedProcess {
    const onLine = this.opts.output?.(name);
    return spawnProcess(
      name,
      process.execPath,
      [...(this.guard ? watchdogNodeArgs() : []), this.cliMain, ...args],
      {
        env: cleanEnv({
          OPSPLANE_LOG_LEVEL: this.opts.logLevel ?? 'info',
          ...(this.guard ? { FLEET_OWNER_PID: String(process.pid) } : {}),
          ...env,
        }),
        ...(onLine ? { onLine } : {}),
        ...(this.opts.exitSignal ? { exitSignal: this.opts.exitSignal } : {}),
      },
    );
  }

  /** Spawns the controller and waits until it serves and is registered; retries on a port clash. */
  /** Security settings of a controller's config: its certificate, agent auth, etcd access. */
  private async controllerSecurity(c: ControllerImpl): Promise<Plain> {
    const out: Plain = {};
    const tls = this.opts.tls;
    if (tls) {
      const files = await issueTlsFiles(tls.caDir, join(c.configPath, '..', 'tls'), 'controller', {
        kind: 'controller',
        name: c.id,
        area: c.area,
        sans: ['localhost', '127.0.0.1', '::1', this.controllerHost],
      });
      out.tls = { cert: files.cert, key: files.key, ca: files.ca };
      out.agents = { auth: tls.agentAuth ?? 'mtls' };
    }
    const access = this.etcd.controllerAccess;
    if (access) {
      out.etcd = {
        ...(access.tls ? { tls: access.tls } : {}),
        ...(access.username ? { username: access.username } : {}),
      };
    }
    return out;
  }

  async launchController(c: ControllerImpl, deadline = this.defaultDeadline()): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      const doc = controllerConfig({
        id: c.id,
        area: c.area,
        listen: c.address,
        etcdEndpoints: this.etcd.endpoints,
        prefix: this.prefix,
        timing: this.timing,
        // The cache lives with the controller's files (removed with the fleet), not in the temp dir.
        artifactDir: join(c.configPath, '..', 'artifacts'),
        ...(this.opts.artifactKeys ? { artifactKeys: this.opts.artifactKeys } : {}),
        // An area without a token runs open controllers, which must be said explicitly (and they warn).
        extra: mergeConfig(await this.controllerSecurity(c), {
          ...(this.apiToken(c.area) === undefined ? { insecure_no_token: true } : {}),
          ...this.opts.controllerConfig,
        }),
      });
      await writeFile(c.configPath, toYaml(doc, this.opts.configHeader?.controller?.(c)));
      c.process = this.spawnDaemon(c.id, ['controller', '--config', c.configPath], {
        OPSPLANE_AGENT_SECRET: this.secret(c.area),
        OPSPLANE_CONTROLLER_TOKEN: this.apiToken(c.area),
        OPSPLANE_ETCD_PASSWORD: this.etcd.controllerAccess?.password,
      });
      try {
        await waitFor(
          async () => {
            const res = await this.fetch(`${c.url}/healthz`, { signal: AbortSignal.timeout(1000) });
            const h = (await res.json()) as { id?: string; registered?: boolean };
            return res.ok && h.id === c.id && h.registered === true;
          },
          {
            timeoutMs: Math.max(1000, deadline - Date.now()),
            intervalMs: 50,
            what: `controller ${c.id} to register in etcd`,
            check: () => exitedCheck(c.process, `controller ${c.id} to register in etcd`),
            ...this.abortable(),
          },
        );
        return;
      } catch (e) {
        await c.process.kill();
        // Only the process we spawned failing to bind is worth a retry on another port; an
        // agent config names the port, so never once agents exist.
        if (attempt < 2 && /EADDRINUSE/.test(c.process.output()) && this.agents.length === 0) {
          c.port = await stablePort();
          continue;
        }
        if (e instanceof WaitTimeoutError) {
          throw new FleetError(`${e.message}\n--- ${c.id} output ---\n${c.process.tail()}`);
        }
        throw e;
      }
    }
  }

  private async createAgent(o: AddAgentOptions): Promise<AgentImpl> {
    const { area } = o;
    if (!this.areas.includes(area)) throw new Error(`fleet: unknown area '${area}'`);
    const index = this.agentsOf(area).length;
    const code = o.code ?? this.opts.agentCode?.(area, index) ?? `${area}-agent-${index + 1}`;
    if (this.agents.some((a) => a.code === code)) throw new Error(`fleet: agent '${code}' exists already`);
    const urls = this.controllersOf(area).map((c) => c.url);
    // Rotated, so that the agents of an area spread over its controllers.
    const rotated = urls.map((_, i) => urls[(i + index) % urls.length] as string);
    const specs =
      o.packages ??
      (typeof this.opts.packages === 'function'
        ? this.opts.packages({ area, code, index })
        : (this.opts.packages ?? [{ kind: 'web' }, { kind: 'collector' }]));
    const dir = join(this.root, 'agents', code);
    const packagesDir = join(dir, 'packages');
    await mkdir(packagesDir, { recursive: true });
    await mkdir(join(dir, 'data'), { recursive: true, mode: 0o700 });
    const packages: PackageImpl[] = [];
    for (const spec of specs) {
      const name = spec.name ?? spec.kind;
      if (packages.some((p) => p.name === name))
        throw new Error(`fleet: agent ${code} has two packages named '${name}'`);
      const port = spec.kind === 'web' ? await stablePort() : undefined;
      const pkgDir = await installSamplePackage(
        spec.kind,
        packagesDir,
        { NODE: process.execPath, WEB_PORT: port ?? 0 },
        {
          name,
          ...(spec.config !== undefined ? { config: spec.config } : {}),
          manifest: this.manifestOverrides(spec),
        },
      );
      packages.push(new PackageImpl(name, spec.kind, pkgDir, port, join(dir, 'data', 'logs', `${name}.log`)));
    }
    const agent = new AgentImpl(
      this,
      code,
      area,
      o.name ?? code,
      o.token ?? agentToken(this.secret(area), area, code),
      o.controllerUrls ?? rotated,
      dir,
      (this.opts.agentMetrics ?? true) ? await stablePort() : undefined,
      packages,
      {
        hostname: o.hostname ?? `host-${code}`,
        labels: o.labels ?? { fleet: 'true' },
        zone: o.zone ?? `${area}-z${(index % 2) + 1}`,
        group: o.group ?? 'fleet',
      },
      o.agentConfig,
    );
    this.agents.push(agent);
    return agent;
  }

  /** package.yaml overrides of a spec: the timing profile's, the spec's own, the guard's env. */
  private manifestOverrides(spec: SamplePackageSpec): Plain {
    const base = this.timing.packages?.[spec.kind] ?? {};
    const baseCheck = (base.health_check ?? {}) as Plain;
    const check =
      spec.healthCheck?.type !== undefined && spec.healthCheck.type !== baseCheck.type
        ? spec.healthCheck
        : mergeConfig(baseCheck, spec.healthCheck);
    return mergeConfig(base, {
      autostart: spec.autostart,
      health_check: Object.keys(check).length ? check : undefined,
      restart_policy: spec.restartPolicy,
      env: this.guard ? packageGuardEnv(this.tag, this.pidDir) : undefined,
    });
  }

  /** Spawns the agent; with a metrics endpoint, waits until it answers (not until it is online). */
  async launchAgent(a: AgentImpl, deadline = this.defaultDeadline()): Promise<void> {
    const tls = this.opts.tls;
    let tlsConfig: Plain | undefined;
    if (tls) {
      // Issued once: a restarted agent keeps its identity (and any renewal in data/tls/).
      const dir = join(a.dir, 'tls');
      const files = existsSync(join(dir, 'agent.crt'))
        ? { ca: join(dir, 'ca.crt'), cert: join(dir, 'agent.crt'), key: join(dir, 'agent.key') }
        : await issueTlsFiles(tls.caDir, dir, 'agent', { kind: 'agent', name: a.code, area: a.area });
      tlsConfig = { tls: { ca: files.ca, cert: files.cert, key: files.key } };
    }
    const certOnly = tls !== undefined && (tls.agentAuth ?? 'mtls') === 'mtls';
    for (let attempt = 0; ; attempt++) {
      const doc = agentConfig({
        code: a.code,
        area: a.area,
        controllerUrls: a.controllerUrls,
        ...a.identity,
        timing: this.timing,
        ...(a.metricsPort !== undefined ? { metricsListen: `127.0.0.1:${a.metricsPort}` } : {}),
        stopPackagesOnExit: this.opts.stopPackagesOnExit ?? false,
        ...(this.opts.artifactKeys ? { artifactKeys: this.opts.artifactKeys } : {}),
        extra: mergeConfig(mergeConfig(tlsConfig ?? {}, this.opts.agentConfig), a.extraConfig),
      });
      await writeFile(a.configPath, toYaml(doc, this.opts.configHeader?.agent?.(a)));
      // The token goes through the environment, as recommended for real hosts.
      a.process = this.spawnDaemon(a.name, ['agent', '--config', a.configPath], {
        // With certificates only, the agent has no token at all.
        OPSPLANE_AGENT_TOKEN: certOnly ? undefined : a.token,
      });
      const metricsUrl = a.metricsUrl;
      if (metricsUrl === undefined) return;
      try {
        await waitFor(
          async () => {
            const res = await fetch(`${metricsUrl}/healthz`, { signal: AbortSignal.timeout(1000) });
            const h = (await res.json()) as { agent_code?: string };
            return res.ok && h.agent_code === a.code;
          },
          {
            timeoutMs: Math.max(1000, deadline - Date.now()),
            intervalMs: 50,
            what: `agent ${a.code} to start`,
            check: () => exitedCheck(a.process, `agent ${a.code} to start`),
            ...this.abortable(),
          },
        );
        return;
      } catch (e) {
        await a.process.kill();
        // The metrics endpoint is the only thing an agent binds.
        if (attempt < 2 && /EADDRINUSE/.test(a.process.output())) {
          a.metricsPort = await stablePort();
          continue;
        }
        if (e instanceof WaitTimeoutError) {
          throw new FleetError(`${e.message}\n--- ${a.name} output ---\n${a.process.tail()}`);
        }
        throw e;
      }
    }
  }

  async addAgent(o: AddAgentOptions): Promise<FleetAgent> {
    await this.prepare();
    const a = await this.createAgent(o);
    await this.launchAgent(a);
    if (o.waitOnline ?? true) await this.waitOnline(a);
    return a;
  }

  // -------------------------------------------------------------------- stop

  /** Synchronous last resort on process exit (guarded fleets): packages killed, root removed. */
  exitCleanup(): void {
    killTagged(this.tag, this.pidDir);
    if (this.ownsRoot && this.root) {
      try {
        rmSync(this.root, { recursive: true, force: true });
      } catch {
        /* best effort */
      }
    }
  }

  stop(opts: { graceful?: boolean } = {}): Promise<void> {
    this.stopped ??= (async () => {
      await this.prepared?.catch(() => undefined);
      await this.reaper?.kill();
      const procs = [...this.agents, ...this.controllers].flatMap((x) => (x.process ? [x.process] : []));
      if (opts.graceful) await Promise.all(procs.map((p) => p.stop(5000)));
      else await Promise.all(procs.map((p) => p.kill()));
      if (this.guard) {
        // Agents are gone, so nothing spawns packages any more; a package spawned at the last
        // moment may still be exec'ing, hence a second pass.
        killTagged(this.tag, this.pidDir);
        await sleep(100);
        killTagged(this.tag, this.pidDir);
      }
      if (this.opts.ownsEtcd) await this.etcd.stop?.();
      liveFleets.delete(this);
      if (this.ownsRoot && this.root) await rm(this.root, { recursive: true, force: true });
    })();
    return this.stopped;
  }
}

/** A fleet over `opts.etcd`, nothing started yet (see Fleet.start / startControllers / addAgent). */
export function createFleet<E extends FleetEtcd>(opts: FleetOptions<E>): Fleet<E> {
  return new FleetImpl(opts);
}

/**
 * Creates and starts a fleet: the controllers of every area (registered in etcd), then the
 * agents (each listed online by a controller of its area). On failure everything started so far
 * is stopped before the error is thrown.
 */
export async function launchFleet<E extends FleetEtcd>(opts: FleetOptions<E>): Promise<Fleet<E>> {
  const fleet = createFleet(opts);
  try {
    await fleet.start();
  } catch (e) {
    await fleet.stop().catch(() => undefined);
    throw e;
  }
  return fleet;
}
