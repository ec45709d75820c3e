/**
 * Devices: list/search, CRUD and bulk import, every change audited in its own transaction (an
 * import is one transaction: every valid row or — on a file-level or database error — nothing).
 * Also the one place device rows become the API's Device (secrets only as has_*), and API input
 * becomes what storage writes (defaults for login method and port, cross-field rules on updates).
 */
import { formatIssues, NotFoundError, ValidationError } from '@opsplane/models';
import {
  DEFAULT_LOGIN_METHOD,
  DEFAULT_PORT,
  iso,
  loginProblems,
  type Device,
  type DeviceCreate,
  type DeviceListQuery,
  type DeviceListResponse,
  type DeviceOs,
  type DeviceStatus,
  type DeviceUpdate,
  type ImportReport,
  type LoginMethod,
} from '@opsplane/api';
import {
  deviceHostKeyId,
  hasSecret,
  loginTargetChanges,
  type DeviceChanges,
  type DeviceInput,
  type SecretField,
} from '../storage/devices-repo.js';
import type { DeviceRow } from '../storage/schema.js';
import type { Store } from '../storage/store.js';
import { areasWithout, requireInAreas, type AreaActor } from './access.js';
import { changesBetween, secretChange, type AuditTrail } from './audit-trail.js';
import { readCsv, readJson, validateRows } from './device-import.js';

export function toDevice(r: DeviceRow): Device {
  return {
    id: r.id,
    name: r.name,
    ip: r.ip,
    function_area: r.functionArea,
    status: r.status as DeviceStatus,
    agent_code: r.agentCode,
    agent_version: r.agentVersion,
    os: r.os as DeviceOs,
    arch: r.arch as Device['arch'],
    login_method: r.loginMethod as LoginMethod,
    login: {
      port: r.loginPort,
      username: r.loginUsername,
      has_password: hasSecret(r, 'password'),
      has_private_key: hasSecret(r, 'private_key'),
      has_passphrase: hasSecret(r, 'passphrase'),
    },
    metadata: r.metadata,
    created_at: iso(r.createdAt),
    updated_at: iso(r.updatedAt),
  };
}

/** What storage writes for a created (or imported) device: defaults applied, secrets in clear. */
export function deviceInput(d: DeviceCreate): DeviceInput {
  const method = d.login_method ?? DEFAULT_LOGIN_METHOD[d.os];
  const secrets: DeviceInput['secrets'] = {};
  if (d.login.password !== undefined) secrets.password = d.login.password;
  if (d.login.private_key !== undefined) secrets.private_key = d.login.private_key;
  if (d.login.passphrase !== undefined) secrets.passphrase = d.login.passphrase;
  return {
    name: d.name,
    ip: d.ip,
    functionArea: d.function_area,
    os: d.os,
    arch: d.arch,
    loginMethod: method,
    loginPort: d.login.port ?? DEFAULT_PORT[method],
    loginUsername: d.login.username,
    secrets,
    metadata: d.metadata,
    agentVersion: d.agent_version,
  };
}

/** Field names only: values of secret fields never reach the audit log. */
function fieldNames(o: object, prefix = ''): string[] {
  return Object.entries(o).flatMap(([k, v]) =>
    v && typeof v === 'object' && !Array.isArray(v) && k === 'login' ? fieldNames(v, 'login.') : [prefix + k],
  );
}

/**
 * The changes a patch makes to the current row, and the names of the fields that changed
 * (secret fields by name only). Cross-field rules are checked on the merged result. A patch that
 * re-points the device (address, port, user, login method, jump host, WinRM transport: see
 * loginTargetChanges) drops the stored secrets it does not replace: `secretsDropped` names
 * them and `because` the fields that moved the target.
 */
export function deviceChanges(
  cur: DeviceRow,
  patch: DeviceUpdate,
): { changes: DeviceChanges; changed: string[]; secretsDropped: SecretField[]; because: string[] } {
  const os = (patch.os ?? cur.os) as DeviceOs;
  const method = (patch.login_method ?? cur.loginMethod) as LoginMethod;
  const login = patch.login ?? {};
  const has = (f: SecretField) => (login[f] === undefined ? hasSecret(cur, f) : login[f] !== null);
  const problems = loginProblems(os, method, {
    private_key: has('private_key') ? 'set' : null,
    passphrase: has('passphrase') ? 'set' : null,
  });
  if (problems.length) throw new ValidationError(formatIssues(problems), problems);

  const changes: DeviceChanges = {};
  const changed: string[] = [];
  const put = <K extends keyof DeviceChanges>(
    field: string,
    key: K,
    v: DeviceChanges[K] | undefined,
    now: unknown,
  ) => {
    if (v === undefined) return;
    if (JSON.stringify(v) !== JSON.stringify(now)) changed.push(field);
    changes[key] = v;
  };
  put('name', 'name', patch.name, cur.name);
  put('ip', 'ip', patch.ip, cur.ip);
  put('function_area', 'functionArea', patch.function_area, cur.functionArea);
  put('os', 'os', patch.os, cur.os);
  put('arch', 'arch', patch.arch, cur.arch);
  put('login_method', 'loginMethod', patch.login_method, cur.loginMethod);
  put('status', 'status', patch.status, cur.status);
  put('agent_version', 'agentVersion', patch.agent_version, cur.agentVersion);
  put('metadata', 'metadata', patch.metadata, cur.metadata);
  put('login.username', 'loginUsername', login.username, cur.loginUsername);
  // Switching method without a port moves a default port along (22 ⇄ 5985).
  const port =
    login.port ??
    (patch.login_method && cur.loginPort === DEFAULT_PORT[cur.loginMethod as LoginMethod]
      ? DEFAULT_PORT[method]
      : undefined);
  put('login.port', 'loginPort', port, cur.loginPort);
  const because = loginTargetChanges(cur, {
    ip: changes.ip ?? cur.ip,
    loginMethod: changes.loginMethod ?? cur.loginMethod,
    loginPort: changes.loginPort ?? cur.loginPort,
    loginUsername: changes.loginUsername ?? cur.loginUsername,
    metadata: changes.metadata ?? cur.metadata,
  });
  const secretsDropped: SecretField[] = [];
  for (const f of ['password', 'private_key', 'passphrase'] as const) {
    const v = login[f];
    if (v === undefined) {
      // Bound to the old target: never sent to the new one unless this request gives it again.
      if (because.length > 0 && hasSecret(cur, f)) {
        (changes.secrets ??= {})[f] = null;
        secretsDropped.push(f);
      }
      continue;
    }
    (changes.secrets ??= {})[f] = v;
    changed.push(`login.${f}`);
  }
  return { changes, changed, secretsDropped, because };
}

const SECRETS = ['password', 'private_key', 'passphrase'] as const;

export class DeviceService {
  constructor(
    private readonly store: Store,
    private readonly audit: AuditTrail,
  ) {}

  async list(q: DeviceListQuery): Promise<DeviceListResponse> {
    const { rows, total } = await this.store.devices.list(q);
    return { devices: rows.map(toDevice), total, page: q.page, pageSize: q.pageSize };
  }

  async get(id: string): Promise<Device> {
    const row = await this.store.devices.get(id);
    if (!row) throw new NotFoundError(`device ${id} not found`);
    return toDevice(row);
  }

  async create(caller: AreaActor, body: DeviceCreate): Promise<Device> {
    const spec = {
      action: 'device.create',
      targetType: 'device',
      details: { name: body.name, fields: fieldNames(body) },
    };
    const row = await this.audit.run(caller, spec, async (tx, s) => {
      requireInAreas(caller, [body.function_area], 'operator', `creating a device in ${body.function_area}`);
      const d = await tx.devices.create(deviceInput(body));
      s.targetId = d.id;
      s.details = { ...s.details, agent_code: d.agentCode };
      s.changes = [
        ...changesBetween(null, toDevice(d)),
        ...SECRETS.filter((f) => body.login[f] !== undefined).map((f) =>
          secretChange(`login.${f}`, false, 'set'),
        ),
      ];
      return d;
    });
    return toDevice(row);
  }

  async update(caller: AreaActor, id: string, patch: DeviceUpdate): Promise<Device> {
    const spec = {
      action: 'device.update',
      targetType: 'device',
      targetId: id,
      details: { fields: fieldNames(patch) },
    };
    const row = await this.audit.run(caller, spec, async (tx, s) => {
      await tx.devices.lock();
      const cur = await tx.devices.get(id);
      if (!cur) throw new NotFoundError(`device ${id} not found`);
      requireInAreas(
        caller,
        [cur.functionArea, patch.function_area ?? cur.functionArea],
        'operator',
        `changing device ${cur.name}`,
      );
      const { changes, changed, secretsDropped, because } = deviceChanges(cur, patch);
      const d = await tx.devices.update(id, changes);
      s.details = {
        name: d.name,
        changed,
        ...(secretsDropped.length ? { dropped: secretsDropped, because } : {}),
      };
      s.changes = [
        ...changesBetween(toDevice(cur), toDevice(d)),
        ...SECRETS.filter((f) => patch.login?.[f] !== undefined || secretsDropped.includes(f)).map((f) =>
          secretChange(
            `login.${f}`,
            hasSecret(cur, f),
            patch.login?.[f] === null || (patch.login?.[f] === undefined && secretsDropped.includes(f))
              ? 'removed'
              : 'set',
          ),
        ),
      ];
      return d;
    });
    return toDevice(row);
  }

  async delete(caller: AreaActor, id: string): Promise<void> {
    await this.audit.run(
      caller,
      { action: 'device.delete', targetType: 'device', targetId: id },
      async (tx, s) => {
        const cur = await tx.devices.get(id);
        if (!cur) throw new NotFoundError(`device ${id} not found`);
        requireInAreas(caller, [cur.functionArea], 'operator', `deleting device ${cur.name}`);
        const d = await tx.devices.delete(id);
        if (!d) throw new NotFoundError(`device ${id} not found`);
        await tx.hostKeys.forget(deviceHostKeyId(id));
        s.details = { name: d.name, agent_code: d.agentCode };
        s.changes = changesBetween(toDevice(d), null);
      },
    );
  }

  /**
   * CSV text (`csv`) or JSON rows; with `dryRun` nothing is written and the report says what would
   * be. Rows that would create or change a device in an area where the caller is not an operator
   * (its new area, or the area of the device of that name) are rejected, each with the reason.
   */
  async import(caller: AreaActor, body: unknown, dryRun: boolean): Promise<ImportReport> {
    const csv = typeof body === 'string';
    const raw = csv ? readCsv(body) : readJson(body);
    const checked = validateRows(raw, csv);
    const rejected = [...checked.rejected];
    const currentAreas = await this.store.devices.areasOfNames(checked.valid.map((v) => v.name));
    const valid = checked.valid.filter((d, i) => {
      const areas = [
        d.function_area,
        ...(currentAreas.has(d.name) ? [currentAreas.get(d.name) as string] : []),
      ];
      const missing = areasWithout(caller, areas, 'operator');
      if (missing.length === 0) return true;
      const r = raw.find((x) => x.name === d.name) ?? raw[i];
      rejected.push({
        row: r?.row ?? i + 1,
        ...(r?.line !== undefined ? { line: r.line } : {}),
        name: d.name,
        reason: `you are not an operator in area ${missing.join(', ')}`,
      });
      return false;
    });
    rejected.sort((a, b) => a.row - b.row);
    const report = (created: number, updated: number): ImportReport => ({
      total: raw.length,
      created,
      updated,
      rejected,
      dry_run: dryRun,
    });
    if (dryRun) {
      const existing = await this.store.devices.existingNames([...new Set(valid.map((v) => v.name))]);
      return report(valid.length - existing.size, existing.size);
    }
    const spec = {
      action: 'device.import',
      targetType: 'device',
      details: { format: csv ? 'csv' : 'json', rows: raw.length, rejected: rejected.length },
    };
    const { created, updated, secretsDropped } = await this.audit.run(caller, spec, async (tx, s) => {
      const r =
        valid.length > 0
          ? await tx.devices.upsertMany(valid.map(deviceInput))
          : { created: 0, updated: 0, secretsDropped: [] };
      s.details = {
        ...s.details,
        created: r.created,
        updated: r.updated,
        // `dropped`, not `secrets_…`: the audit log redacts the values of secret-looking keys.
        ...(r.secretsDropped.length ? { dropped: r.secretsDropped.slice(0, 100) } : {}),
      };
      return r;
    });
    return {
      ...report(created, updated),
      ...(secretsDropped.length ? { secrets_dropped: secretsDropped } : {}),
    };
  }
}
