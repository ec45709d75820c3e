/**
 * Devices (guide §4.3), as rows. Login secrets are encrypted here, on the way in, bound to the
 * device id and field, and decrypted only by loginSecrets() (for the code that logs in). They are
 * bound to their target too: a write that changes where or how they would be sent (address,
 * port, user, login method, jump host, WinRM transport) drops the stored ones unless it brings
 * new ones (loginTargetChanges), so nobody can point a device elsewhere and collect them. Writes
 * that match devices by name take a transaction-scoped advisory lock so that two imports (or an
 * import and a create) cannot interleave between "which names exist" and "write".
 */
import { randomUUID } from 'node:crypto';
import { and, asc, count, desc, eq, ilike, inArray, or, sql, type SQL } from 'drizzle-orm';
import { ConflictError, NotFoundError } from '@opsplane/models';
import type { SecretBox } from '../security/crypto.js';
import { newAgentCode } from '../security/tokens.js';
import { sqlConstraint, sqlState, UNIQUE_VIOLATION, type Database } from './database.js';
import { agentCodes, devices, type DeviceRow, type NewDeviceRow } from './schema.js';

const DEVICES_LOCK_ID = 0x6f706476;
const INSERT_CHUNK = 500;
const SELECT_CHUNK = 1000;

export type SecretField = 'password' | 'private_key' | 'passphrase';
const SECRET_COLUMN = {
  password: 'loginPasswordEnc',
  private_key: 'loginPrivateKeyEnc',
  passphrase: 'loginPassphraseEnc',
} as const satisfies Record<SecretField, keyof DeviceRow>;
const SECRET_FIELDS = Object.keys(SECRET_COLUMN) as SecretField[];

export const secretAad = (deviceId: string, field: SecretField) => `device:${deviceId}:${field}`;

/** What a device is written from: the columns, with its login secrets in clear (encrypted here). */
export interface DeviceInput {
  name: string;
  ip: string;
  functionArea: string;
  os: string;
  arch: string;
  loginMethod: string;
  loginPort: number;
  loginUsername: string;
  /** A string sets the secret; absent keeps the stored one (on upsert), null clears it. */
  secrets: Partial<Record<SecretField, string | null>>;
  metadata?: Record<string, string> | undefined;
  agentVersion?: string | undefined;
}

/** Columns an update may change; secrets as in DeviceInput. */
export type DeviceChanges = Partial<Omit<DeviceInput, 'secrets'>> & {
  status?: string;
  secrets?: DeviceInput['secrets'];
};

export interface DeviceFilter {
  page: number;
  pageSize: number;
  /** Free text over name, ip, area, status, os and agent code. */
  q?: string | undefined;
  name?: string | undefined;
  ip?: string | undefined;
  function_area?: string | undefined;
  status?: readonly string[] | undefined;
  os?: string | undefined;
  arch?: string | undefined;
  login_method?: string | undefined;
  agent_code?: string | undefined;
  sort: keyof typeof SORT_COLUMNS;
  order: 'asc' | 'desc';
}

/**
 * Metadata that decides where or how login secrets travel: the jump host they are tunnelled
 * through and the WinRM transport (HTTPS, auth scheme, certificate pin, plain HTTP).
 */
export const TARGET_METADATA_KEYS = [
  'jump_host',
  'winrm_https',
  'winrm_auth',
  'winrm_cert_sha256',
  'winrm_allow_unencrypted',
] as const;

/** What a device's login secrets are bound to. */
export interface LoginTarget {
  ip: string;
  loginMethod: string;
  loginPort: number;
  loginUsername: string;
  metadata: Record<string, string>;
}

/**
 * The fields (API names) in which `next` sends login secrets somewhere else than `cur`:
 * `ip`, `login_method`, `login.port`, `login.username`, `metadata.<key>` of TARGET_METADATA_KEYS.
 * Empty when the secrets may stay.
 */
export function loginTargetChanges(cur: LoginTarget, next: LoginTarget): string[] {
  const out: string[] = [];
  if (cur.ip !== next.ip) out.push('ip');
  if (cur.loginMethod !== next.loginMethod) out.push('login_method');
  if (cur.loginPort !== next.loginPort) out.push('login.port');
  if (cur.loginUsername !== next.loginUsername) out.push('login.username');
  for (const k of TARGET_METADATA_KEYS) {
    if ((cur.metadata[k] ?? '') !== (next.metadata[k] ?? '')) out.push(`metadata.${k}`);
  }
  return out;
}

/** Secrets a write dropped because it re-pointed the device, and which fields did. */
export interface DroppedSecrets {
  name: string;
  fields: SecretField[];
  because: string[];
}

/** The key of a device's SSH host key pin in host_keys: per device, never per address. */
export const deviceHostKeyId = (deviceId: string) => `device:${deviceId}`;

/** Which of a device's secrets are stored (never their values). */
export const hasSecret = (r: DeviceRow, f: SecretField): boolean => r[SECRET_COLUMN[f]] !== null;

/** Decrypted login details, for the code that actually logs in (deployments). */
export interface LoginSecrets {
  method: string;
  host: string;
  port: number;
  username: string;
  password?: string;
  private_key?: string;
  passphrase?: string;
}

const SORT_COLUMNS = {
  name: devices.name,
  ip: devices.ip,
  function_area: devices.functionArea,
  status: devices.status,
  os: devices.os,
  arch: devices.arch,
  agent_code: devices.agentCode,
  created_at: devices.createdAt,
  updated_at: devices.updatedAt,
} as const;

const escapeLike = (s: string) => s.replace(/[\\%_]/g, (c) => '\\' + c);
const contains = (s: string) => `%${escapeLike(s)}%`;

function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

function nameConflict(e: unknown, name: string | undefined): never {
  if (sqlState(e) === UNIQUE_VIOLATION && (sqlConstraint(e) ?? '').includes('name')) {
    throw new ConflictError(`a device named '${name ?? '?'}' already exists`);
  }
  throw e;
}

/** A device as the agent view joins it (by agent code). */
export interface AgentDeviceRef {
  id: string;
  name: string;
  area: string;
  ip: string;
}

export class DevicesRepo {
  constructor(
    private readonly db: Database,
    private readonly box: SecretBox,
  ) {}

  /** Serialises device writes until the surrounding transaction ends. */
  async lock(): Promise<void> {
    await this.db.execute(sql`SELECT pg_advisory_xact_lock(${DEVICES_LOCK_ID})`);
  }

  /** Issues `n` fresh agent codes, recorded in agent_codes so that none is ever issued again. */
  async issueAgentCodes(n: number): Promise<string[]> {
    const issued: string[] = [];
    for (let round = 0; issued.length < n; round++) {
      if (round > 10) throw new Error('could not issue unique agent codes');
      const want = new Set<string>();
      while (want.size < n - issued.length) want.add(newAgentCode());
      for (const part of chunks([...want], INSERT_CHUNK)) {
        const rows = await this.db
          .insert(agentCodes)
          .values(part.map((code) => ({ code })))
          .onConflictDoNothing()
          .returning({ code: agentCodes.code });
        issued.push(...rows.map((r) => r.code));
      }
    }
    return issued;
  }

  private encrypt(id: string, field: SecretField, value: string): string {
    return this.box.encrypt(value, secretAad(id, field));
  }

  /**
   * The row to write for `input`, over `existing` when the device is known: secrets not given
   * are kept — unless the input re-points the device (loginTargetChanges), then they are
   * dropped and reported to `dropped`.
   */
  private rowFor(
    input: DeviceInput,
    id: string,
    agentCode: string,
    existing?: DeviceRow,
    dropped?: DroppedSecrets[],
  ): NewDeviceRow {
    const row: NewDeviceRow = {
      id,
      name: input.name,
      ip: input.ip,
      functionArea: input.functionArea,
      agentCode,
      os: input.os,
      arch: input.arch,
      loginMethod: input.loginMethod,
      loginPort: input.loginPort,
      loginUsername: input.loginUsername,
      metadata: input.metadata ?? existing?.metadata ?? {},
      agentVersion: input.agentVersion ?? existing?.agentVersion ?? '',
    };
    const because = existing
      ? loginTargetChanges(existing, {
          ip: input.ip,
          loginMethod: input.loginMethod,
          loginPort: input.loginPort,
          loginUsername: input.loginUsername,
          metadata: row.metadata ?? {},
        })
      : [];
    const lost: SecretField[] = [];
    for (const f of SECRET_FIELDS) {
      const v = input.secrets[f];
      const kept = existing?.[SECRET_COLUMN[f]] ?? null;
      if (v === undefined && kept !== null && because.length > 0) lost.push(f);
      row[SECRET_COLUMN[f]] =
        typeof v === 'string' ? this.encrypt(id, f, v) : v === null || because.length > 0 ? null : kept;
    }
    if (lost.length > 0) dropped?.push({ name: input.name, fields: lost, because });
    return row;
  }

  async create(input: DeviceInput): Promise<DeviceRow> {
    await this.lock();
    const id = randomUUID();
    const [code] = await this.issueAgentCodes(1);
    try {
      const [row] = await this.db
        .insert(devices)
        .values(this.rowFor(input, id, code as string))
        .returning();
      return row as DeviceRow;
    } catch (e) {
      nameConflict(e, input.name);
    }
  }

  async get(id: string): Promise<DeviceRow | undefined> {
    const [row] = await this.db.select().from(devices).where(eq(devices.id, id));
    return row;
  }

  async getByName(name: string): Promise<DeviceRow | undefined> {
    const [row] = await this.db.select().from(devices).where(eq(devices.name, name));
    return row;
  }

  async getByAgentCode(code: string): Promise<DeviceRow | undefined> {
    const [row] = await this.db.select().from(devices).where(eq(devices.agentCode, code));
    return row;
  }

  /** Area (and id, name) of each known agent code — what cross-area batches group by. */
  async areasOfAgents(
    codes: readonly string[],
  ): Promise<Map<string, { id: string; name: string; area: string }>> {
    const out = new Map<string, { id: string; name: string; area: string }>();
    for (const part of chunks([...new Set(codes)], SELECT_CHUNK)) {
      const rows = await this.db
        .select({ code: devices.agentCode, id: devices.id, name: devices.name, area: devices.functionArea })
        .from(devices)
        .where(inArray(devices.agentCode, part));
      for (const r of rows) out.set(r.code, { id: r.id, name: r.name, area: r.area });
    }
    return out;
  }

  /** Every function_area that has a device (areas the platform expects controllers for). */
  async distinctAreas(): Promise<string[]> {
    const rows = await this.db
      .selectDistinct({ area: devices.functionArea })
      .from(devices)
      .orderBy(asc(devices.functionArea));
    return rows.map((r) => r.area);
  }

  /** Devices per function_area. */
  async countByArea(): Promise<Map<string, number>> {
    const rows = await this.db
      .select({ area: devices.functionArea, n: count() })
      .from(devices)
      .groupBy(devices.functionArea);
    return new Map(rows.map((r) => [r.area, r.n]));
  }

  /**
   * The inventory side of the agent view in one query: per agent code the device's id, name,
   * area and ip. Used to join the aggregated agents with their devices on every refresh.
   */
  async agentDirectory(): Promise<Map<string, AgentDeviceRef>> {
    const rows = await this.db
      .select({
        code: devices.agentCode,
        id: devices.id,
        name: devices.name,
        area: devices.functionArea,
        ip: devices.ip,
      })
      .from(devices);
    return new Map(rows.map((r) => [r.code, { id: r.id, name: r.name, area: r.area, ip: r.ip }]));
  }

  /** Which of `names` exist already. */
  async existingNames(names: readonly string[]): Promise<Set<string>> {
    const out = new Set<string>();
    for (const part of chunks(names, SELECT_CHUNK)) {
      const rows = await this.db
        .select({ name: devices.name })
        .from(devices)
        .where(inArray(devices.name, part));
      for (const r of rows) out.add(r.name);
    }
    return out;
  }

  /** The function_area of each existing device of these names. */
  async areasOfNames(names: readonly string[]): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    for (const part of chunks(names, SELECT_CHUNK)) {
      const rows = await this.db
        .select({ name: devices.name, area: devices.functionArea })
        .from(devices)
        .where(inArray(devices.name, part));
      for (const r of rows) out.set(r.name, r.area);
    }
    return out;
  }

  async count(): Promise<number> {
    const [row] = await this.db.select({ n: count() }).from(devices);
    return row?.n ?? 0;
  }

  async countByStatus(): Promise<Record<string, number>> {
    const rows = await this.db
      .select({ status: devices.status, n: count() })
      .from(devices)
      .groupBy(devices.status);
    return Object.fromEntries(rows.map((r) => [r.status, r.n]));
  }

  async list(q: DeviceFilter): Promise<{ rows: DeviceRow[]; total: number }> {
    const conds: SQL[] = [];
    if (q.q) {
      const p = contains(q.q);
      conds.push(
        or(
          ilike(devices.name, p),
          ilike(devices.ip, p),
          ilike(devices.functionArea, p),
          ilike(devices.status, p),
          ilike(devices.os, p),
          ilike(devices.agentCode, p),
        ) as SQL,
      );
    }
    if (q.name) conds.push(ilike(devices.name, contains(q.name)));
    if (q.ip) conds.push(ilike(devices.ip, contains(q.ip)));
    if (q.function_area) conds.push(eq(devices.functionArea, q.function_area));
    if (q.status) conds.push(inArray(devices.status, q.status));
    if (q.os) conds.push(eq(devices.os, q.os));
    if (q.arch) conds.push(eq(devices.arch, q.arch));
    if (q.login_method) conds.push(eq(devices.loginMethod, q.login_method));
    if (q.agent_code) conds.push(eq(devices.agentCode, q.agent_code));
    const where = conds.length ? and(...conds) : undefined;
    const dir = q.order === 'desc' ? desc : asc;
    const [totalRow] = await this.db.select({ n: count() }).from(devices).where(where);
    const rows = await this.db
      .select()
      .from(devices)
      .where(where)
      // The id tie-break makes pages stable when the sort column has duplicates.
      .orderBy(dir(SORT_COLUMNS[q.sort]), dir(devices.id))
      .limit(q.pageSize)
      .offset((q.page - 1) * q.pageSize);
    return { rows, total: totalRow?.n ?? 0 };
  }

  /** Writes `changes` (the caller checked them against the current row, under lock()). */
  async update(id: string, changes: DeviceChanges): Promise<DeviceRow> {
    const { secrets, ...cols } = changes;
    const set: Partial<NewDeviceRow> = { ...cols };
    for (const [f, v] of Object.entries(secrets ?? {}) as [SecretField, string | null | undefined][]) {
      if (v === undefined) continue;
      set[SECRET_COLUMN[f]] = v === null ? null : this.encrypt(id, f, v);
    }
    try {
      const [row] = await this.db
        .update(devices)
        .set({ ...set, updatedAt: sql`now()` })
        .where(eq(devices.id, id))
        .returning();
      if (!row) throw new NotFoundError(`device ${id} not found`);
      return row;
    } catch (e) {
      nameConflict(e, changes.name);
    }
  }

  /** Status (and agent version) as deployments and discovery see it; no name lock needed. */
  async setStatus(id: string, status: string, agentVersion?: string): Promise<DeviceRow | undefined> {
    const [row] = await this.db
      .update(devices)
      .set({ status, ...(agentVersion !== undefined ? { agentVersion } : {}), updatedAt: sql`now()` })
      .where(eq(devices.id, id))
      .returning();
    return row;
  }

  /** Status only if it is still `expected` (compare-and-set); true when it changed. */
  async setStatusIf(id: string, expected: string, status: string, agentVersion: string): Promise<boolean> {
    const rows = await this.db
      .update(devices)
      .set({ status, agentVersion, updatedAt: sql`now()` })
      .where(and(eq(devices.id, id), eq(devices.status, expected)))
      .returning({ id: devices.id });
    return rows.length > 0;
  }

  /** Device status by agent code, for those of `codes` that have a device. */
  async statusesOf(codes: readonly string[]): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    for (const part of chunks([...new Set(codes)], 500)) {
      const rows = await this.db
        .select({ code: devices.agentCode, status: devices.status })
        .from(devices)
        .where(inArray(devices.agentCode, part));
      for (const r of rows) out.set(r.code, r.status);
    }
    return out;
  }

  /** agent code → id, name, status, agent version of every device (for the status sync). */
  async statusDirectory(): Promise<
    Map<string, { id: string; name: string; status: string; agentVersion: string }>
  > {
    const rows = await this.db
      .select({
        code: devices.agentCode,
        id: devices.id,
        name: devices.name,
        status: devices.status,
        agentVersion: devices.agentVersion,
      })
      .from(devices);
    return new Map(rows.map(({ code, ...r }) => [code, r]));
  }

  /** Deletes the device; its agent code stays reserved in agent_codes. */
  async delete(id: string): Promise<DeviceRow | undefined> {
    await this.lock();
    const [row] = await this.db.delete(devices).where(eq(devices.id, id)).returning();
    return row;
  }

  /** Decrypts the login details of a device; only for code that logs in to it. */
  async loginSecrets(id: string): Promise<LoginSecrets> {
    const r = await this.get(id);
    if (!r) throw new NotFoundError(`device ${id} not found`);
    const out: LoginSecrets = {
      method: r.loginMethod,
      host: r.ip,
      port: r.loginPort,
      username: r.loginUsername,
    };
    for (const f of SECRET_FIELDS) {
      const enc = r[SECRET_COLUMN[f]];
      if (enc !== null) out[f] = this.box.decrypt(enc, secretAad(r.id, f));
    }
    return out;
  }

  /**
   * Creates or updates (matched by name) every row, in batches. Rows must be valid and have
   * unique names; the caller runs this inside a transaction so that it is all or nothing.
   */
  async upsertMany(
    rows: readonly DeviceInput[],
  ): Promise<{ created: number; updated: number; secretsDropped: DroppedSecrets[] }> {
    await this.lock();
    const existing = new Map<string, DeviceRow>();
    for (const part of chunks(
      rows.map((r) => r.name),
      SELECT_CHUNK,
    )) {
      for (const r of await this.db.select().from(devices).where(inArray(devices.name, part)))
        existing.set(r.name, r);
    }
    const fresh = rows.filter((r) => !existing.has(r.name));
    const codes = await this.issueAgentCodes(fresh.length);
    let next = 0;
    const secretsDropped: DroppedSecrets[] = [];
    const values = rows.map((input) => {
      const cur = existing.get(input.name);
      return cur
        ? this.rowFor(input, cur.id, cur.agentCode, cur, secretsDropped)
        : this.rowFor(input, randomUUID(), codes[next++] as string);
    });
    const ex = (col: string) => sql.raw(`excluded.${col}`);
    for (const part of chunks(values, INSERT_CHUNK)) {
      await this.db
        .insert(devices)
        .values(part)
        .onConflictDoUpdate({
          // Existing devices are written under their own id, so the id is the conflict target;
          // status, agent code and created_at are not the file's business and stay as they are.
          target: devices.id,
          set: {
            name: ex('name'),
            ip: ex('ip'),
            functionArea: ex('function_area'),
            os: ex('os'),
            arch: ex('arch'),
            loginMethod: ex('login_method'),
            loginPort: ex('login_port'),
            loginUsername: ex('login_username'),
            loginPasswordEnc: ex('login_password_enc'),
            loginPrivateKeyEnc: ex('login_private_key_enc'),
            loginPassphraseEnc: ex('login_passphrase_enc'),
            metadata: ex('metadata'),
            agentVersion: ex('agent_version'),
            updatedAt: sql`now()`,
          },
        });
    }
    return { created: fresh.length, updated: rows.length - fresh.length, secretsDropped };
  }
}
