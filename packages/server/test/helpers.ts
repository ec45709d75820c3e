/**
 * Test fixtures for the server: fresh databases on both drivers, a running server on a free
 * port, users/sessions/tokens of each role, and a tiny HTTP client.
 *
 * PGlite's initdb takes seconds, so tests open a copy of a pre-initialised data directory
 * (built once per machine and PGlite version, in the OS temp dir) — exactly what a server sees
 * on its second start.
 */
import { randomBytes } from 'node:crypto';
import { cp, mkdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { pino, type Logger } from 'pino';
import {
  postgresDependency,
  skipUnlessAvailable,
  startPostgresDatabase,
  tempDir,
} from '@opsplane/test-support';
import { DeviceCreateSchema, type Device, type Role } from '@opsplane/api';
import {
  loadServerConfig,
  startServer,
  type RunningServer,
  type ServerConfig,
  type ServerConfigOverrides,
  type ServerSectionInput,
} from '../src/index.js';
import { hashPassword } from '../src/security/passwords.js';
import { deviceInput, toDevice } from '../src/services/devices.js';
import type { Store } from '../src/storage/store.js';
import { newApiToken, newSessionId, sha256Hex } from '../src/security/tokens.js';

export type Driver = 'pglite' | 'postgres';
export const DRIVERS: readonly Driver[] = ['pglite', 'postgres'];

/** PostgreSQL: the server at 127.0.0.1:5432 when one answers, else a private cluster (test-support). */
const postgres = await postgresDependency();

/**
 * The `skip` option of a suite on `driver`: PostgreSQL suites are skipped locally when neither a
 * server answers nor PostgreSQL is installed, and fail under CI.
 */
export function driverSkip(driver: Driver): false | string {
  return driver === 'postgres' ? skipUnlessAvailable(postgres) : false;
}

export const TEST_MASTER_KEY = randomBytes(32).toString('base64');

export function testLogger(): Logger {
  return pino({ level: process.env.OPSPLANE_LOG_LEVEL ?? 'silent' });
}

async function exists(p: string): Promise<boolean> {
  return stat(p).then(
    () => true,
    () => false,
  );
}

async function pgliteVersion(): Promise<string> {
  const require = createRequire(import.meta.url);
  const pkgPath = join(dirname(require.resolve('@electric-sql/pglite')), '..', 'package.json');
  return (JSON.parse(await readFile(pkgPath, 'utf8')) as { version: string }).version;
}

let templateReady: Promise<string> | undefined;

/** A cleanly closed, initdb'd (not migrated) PGlite data directory to copy from. */
export function pgliteTemplate(): Promise<string> {
  templateReady ??= (async () => {
    const dir = join(
      tmpdir(),
      `opsplane-pglite-template-${await pgliteVersion()}-${process.getuid?.() ?? 0}`,
    );
    if (await exists(join(dir, 'PG_VERSION'))) return dir;
    const tmp = `${dir}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
    const db = await PGlite.create(tmp);
    await db.close();
    // Another test process may have won the race; theirs is as good as ours.
    await rename(tmp, dir).catch(async () => rm(tmp, { recursive: true, force: true }));
    return dir;
  })();
  return templateReady;
}

export interface TestEnv {
  driver: Driver;
  dataDir: string;
  databaseUrl?: string;
  config: ServerConfig;
  cleanup(): Promise<void>;
}

/**
 * Where tests' servers look for etcd unless told otherwise: nothing listens on port 1, so
 * discovery just keeps retrying (the server must work without etcd) and a developer's own etcd
 * on 2379 never leaks into a test.
 */
export const NO_ETCD = ['http://127.0.0.1:1'];

export interface TestEnvOptions {
  etcd?: string[];
  areas?: ServerConfigOverrides['areas'];
  /** Extra top-level platform.yaml sections (cache, concurrency, controller …). */
  env?: NodeJS.ProcessEnv;
}

/** A fresh, empty database for `driver` and a server config pointing at it. */
export async function testEnv(
  driver: Driver,
  server: Partial<ServerSectionInput> = {},
  more: TestEnvOptions = {},
): Promise<TestEnv> {
  const dir = await tempDir('opsplane-server-test-');
  const cleanups: (() => Promise<void>)[] = [dir.cleanup];
  let databaseUrl: string | undefined;
  if (driver === 'pglite') {
    await mkdir(dir.path, { recursive: true });
    await cp(await pgliteTemplate(), join(dir.path, 'db'), { recursive: true });
  } else {
    const pg = await startPostgresDatabase();
    databaseUrl = pg.url;
    cleanups.unshift(() => pg.drop());
  }
  const config = await loadServerConfig(
    undefined,
    {
      server: {
        listen: '127.0.0.1:0',
        data_dir: dir.path,
        ...(databaseUrl ? { database_url: databaseUrl } : {}),
        ...server,
      },
      etcd: { endpoints: more.etcd ?? NO_ETCD },
      ...(more.areas ? { areas: more.areas } : {}),
    },
    more.env ?? {},
  );
  return {
    driver,
    dataDir: dir.path,
    ...(databaseUrl ? { databaseUrl } : {}),
    config,
    async cleanup() {
      for (const c of cleanups) await c().catch(() => undefined);
    },
  };
}

export interface HttpResult<T = unknown> {
  status: number;
  headers: Headers;
  text: string;
  json: T;
}

export interface Auth {
  cookie?: string;
  token?: string;
}

/** fetch with auth and JSON conveniences; never throws on HTTP errors. */
export async function http<T = unknown>(
  base: string,
  method: string,
  path: string,
  opts: {
    auth?: Auth | undefined;
    body?: unknown;
    contentType?: string;
    headers?: Record<string, string>;
  } = {},
): Promise<HttpResult<T>> {
  // A session cookie goes with the server's own Origin, as a browser's same-origin request would.
  const headers: Record<string, string> = {
    ...(opts.auth?.cookie ? { origin: new URL(base).origin } : {}),
    ...(opts.headers ?? {}),
  };
  if (opts.auth?.cookie) headers.cookie = opts.auth.cookie;
  if (opts.auth?.token) headers.authorization = `Bearer ${opts.auth.token}`;
  let body: string | Uint8Array | undefined;
  if (opts.body !== undefined) {
    const ct = opts.contentType ?? 'application/json';
    headers['content-type'] = ct;
    body =
      opts.body instanceof Uint8Array
        ? opts.body
        : typeof opts.body === 'string' && ct !== 'application/json'
          ? opts.body
          : JSON.stringify(opts.body);
  }
  const res = await fetch(base + path, { method, headers, ...(body !== undefined ? { body } : {}) });
  const text = await res.text();
  let json: unknown;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, text, json: json as T };
}

export interface RoleUser {
  id: string;
  username: string;
  password: string;
  role: Role;
  session: Auth;
  token: Auth;
}

export interface TestServer {
  env: TestEnv;
  server: RunningServer;
  url: string;
  adminPassword: string;
  /** viewer, operator, admin users, each with a session cookie and an API token of its role. */
  users: Record<Role, RoleUser>;
  call<T = unknown>(method: string, path: string, opts?: Parameters<typeof http>[3]): Promise<HttpResult<T>>;
  stop(): Promise<void>;
}

export const TEST_PASSWORD = 'correct-horse-battery';

/** A session row and its cookie, made directly in the store (no scrypt, no rate limit). */
export async function sessionFor(server: RunningServer, userId: string, ttlMs = 3600_000): Promise<Auth> {
  const sid = newSessionId();
  await server.store.sessions.create({
    idHash: sha256Hex(sid),
    userId,
    expiresAt: new Date(Date.now() + ttlMs),
  });
  return { cookie: `opsplane_session=${sid}` };
}

export async function tokenFor(
  server: RunningServer,
  userId: string,
  role: Role,
  expiresAt: Date | null = null,
): Promise<Auth & { id: string }> {
  const { token, prefix } = newApiToken();
  const row = await server.store.tokens.create({
    userId,
    name: `test-${role}`,
    role,
    tokenHash: sha256Hex(token),
    prefix,
    expiresAt,
  });
  return { token, id: row.id };
}

export async function startTestServer(
  driver: Driver,
  opts: { server?: Partial<ServerSectionInput>; logger?: Logger } & TestEnvOptions = {},
): Promise<TestServer> {
  const env = await testEnv(driver, opts.server, opts);
  const adminPassword = `admin-${randomBytes(6).toString('hex')}`;
  let server: RunningServer;
  try {
    server = await startServer(env.config, {
      logger: opts.logger ?? testLogger(),
      adminPassword,
      masterKey: TEST_MASTER_KEY,
      printSecret: () => undefined,
    });
  } catch (e) {
    await env.cleanup();
    throw e;
  }
  const passwordHash = await hashPassword(TEST_PASSWORD);
  const users = {} as Record<Role, RoleUser>;
  for (const role of ['viewer', 'operator', 'admin'] as const) {
    const username = `${role}-user`;
    const u = await server.store.users.create({ username, role, passwordHash });
    users[role] = {
      id: u.id,
      username,
      password: TEST_PASSWORD,
      role,
      session: await sessionFor(server, u.id),
      token: { token: (await tokenFor(server, u.id, role)).token as string },
    };
  }
  return {
    env,
    server,
    url: server.url,
    adminPassword,
    users,
    call: (method, path, o) => http(server.url, method, path, o),
    async stop() {
      await server.stop();
      await env.cleanup();
    },
  };
}

/** A valid device body; `n` makes names and addresses unique. */
export function deviceBody(n: number, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    name: `dev-${n}`,
    ip: `10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}`,
    function_area: `area-${n % 3}`,
    os: 'linux',
    login: { username: 'root', password: `pw-${n}-secret` },
    ...extra,
  };
}

/** Creates a device straight through storage (no HTTP), answering it in its API shape. */
export async function createDevice(store: Store, body: unknown): Promise<Device> {
  return toDevice(await store.devices.create(deviceInput(DeviceCreateSchema.parse(body))));
}
