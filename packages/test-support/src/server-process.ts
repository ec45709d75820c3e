/**
 * The platform server as a real process (`opsplane server --config …`) for tests that must kill
 * it, restart it on the same data, or drive it from the outside (a browser): writes the config
 * (JSON, which YAML reads as is), starts it, waits for it to listen, and logs in as admin.
 * stop()/kill() end it; restart() starts it again on the same config and data dir.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { tlsFetch } from '@opsplane/fleet';
import { defaultCliMain } from './fleet.js';
import { freePort } from './ports.js';
import { spawnTracked, type TrackedProcess } from './processes.js';

export interface ServerProcessOptions {
  /** Holds platform.yaml and the server's data dir (data/). */
  dir: string;
  etcdEndpoints: readonly string[];
  /** Per-area credentials, as the config file's `areas:` section. */
  areas?: Record<string, { agent_secret?: string; controller_token?: string }>;
  /** More of the `server:` section (snake_case), e.g. `{ deploy: { lease_ttl: '5s' } }`. */
  server?: Record<string, unknown>;
  adminPassword: string;
  /**
   * With `server.tls` in `server`: the CA bundle (PEM) the test's own requests verify the
   * server against (its URL is then https://).
   */
  ca?: string;
  /** More environment (e.g. OPSPLANE_MASTER_KEY, shared by replicas on one database). */
  env?: Readonly<Record<string, string>>;
  /** How long start-up may take. Default 90 s (a first PGlite initdb is slow). */
  startTimeoutMs?: number;
}

export interface ServerProcess {
  /** http://127.0.0.1:<port> (https:// with `server.tls`) */
  readonly url: string;
  readonly configPath: string;
  readonly process: TrackedProcess;
  /** Logs in and returns the session cookie (`name=value`). */
  login(username?: string, password?: string): Promise<string>;
  /** fetch under /api/v1 with a cookie; JSON in and out. */
  call<T = unknown>(
    cookie: string,
    method: string,
    path: string,
    body?: unknown,
  ): Promise<{ status: number; json: T }>;
  restart(): Promise<void>;
  kill(): Promise<void>;
  stop(): Promise<void>;
}

export async function startServerProcess(o: ServerProcessOptions): Promise<ServerProcess> {
  await mkdir(o.dir, { recursive: true });
  const port = await freePort();
  const url = `${o.server?.tls ? 'https' : 'http'}://127.0.0.1:${port}`;
  const fetch = o.ca ? tlsFetch({ ca: o.ca }) : globalThis.fetch;
  const configPath = join(o.dir, 'platform.yaml');
  const config = {
    etcd: { endpoints: [...o.etcdEndpoints] },
    server: { listen: `127.0.0.1:${port}`, data_dir: join(o.dir, 'data'), ...o.server },
    ...(o.areas ? { areas: o.areas } : {}),
  };
  await writeFile(configPath, JSON.stringify(config, null, 2));
  let proc: TrackedProcess;
  const start = async () => {
    proc = spawnTracked('server', process.execPath, [defaultCliMain(), 'server', '--config', configPath], {
      env: {
        ...process.env,
        ...o.env,
        OPSPLANE_ADMIN_PASSWORD: o.adminPassword,
        OPSPLANE_LOG_LEVEL: process.env.OPSPLANE_LOG_LEVEL ?? 'warn',
      },
    });
    try {
      await proc.waitForOutput('opsplane server listening', o.startTimeoutMs ?? 90_000);
    } catch (e) {
      await proc.kill();
      throw new Error(
        `opsplane server did not start: ${(e as Error).message}\n${proc.output().slice(-3000)}`,
      );
    }
  };
  await start();
  const call = async <T>(cookie: string, method: string, path: string, body?: unknown) => {
    const r = await fetch(`${url}/api/v1${path}`, {
      method,
      // The server's own Origin with the cookie, as the web UI's requests carry it (CSRF check).
      headers: {
        cookie,
        origin: url,
        ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
      },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    const text = await r.text();
    return { status: r.status, json: (text ? JSON.parse(text) : undefined) as T };
  };
  return {
    url,
    configPath,
    get process() {
      return proc;
    },
    async login(username = 'admin', password = o.adminPassword) {
      const r = await fetch(`${url}/api/v1/auth/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ username, password }),
      });
      if (r.status !== 200) throw new Error(`login as ${username}: HTTP ${r.status} ${await r.text()}`);
      return (r.headers.get('set-cookie') ?? '').split(';')[0] ?? '';
    },
    call,
    restart: start,
    kill: () => proc.kill(),
    stop: () => proc.stop(),
  };
}
