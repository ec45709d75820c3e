/**
 * `opsplane devices list|get|create|update|delete|import` — the device inventory: list with
 * search and filters, one device, create/update/delete one, and bulk import from CSV or JSON with
 * the server's per-row report. Login secrets are write-only: they go in (--password, or
 * $OPSPLANE_DEVICE_PASSWORD, or --ask-password; --private-key-file) and never come out — the
 * device shows only whether each is set.
 */
import { readFile } from 'node:fs/promises';
import { extname } from 'node:path';
import type { Device, DeviceCreateInput, DeviceUpdate } from '@opsplane/api';
import { CliError, EXIT, UsageError, defineCommand, type CliIO } from '../command.js';
import { connect, listFlag, type ApiClient } from '../client/api.js';
import { json, table } from '../client/format.js';
import { jsonOption, serverOption } from '../client/common-options.js';
import { prompt } from '../client/prompt.js';

/** A device by name or id. */
export async function findDevice(api: ApiClient, ref: string): Promise<Device> {
  if (/^[0-9a-f-]{36}$/i.test(ref)) return api.call('GET /devices/:id', { params: { id: ref } });
  const r = await api.call('GET /devices', { query: { name: ref, pageSize: 500 } });
  const d = r.devices.find((x) => x.name === ref);
  if (!d) throw new CliError(`no device named '${ref}'`);
  return d;
}

/** `--metadata rack=r1 --metadata role=web,env=prod` → {rack: 'r1', role: 'web', env: 'prod'}. */
export function metadataFlags(values: string[] | undefined): Record<string, string> | undefined {
  const items = listFlag(values);
  if (items.length === 0) return undefined;
  const out: Record<string, string> = {};
  for (const item of items) {
    const i = item.indexOf('=');
    if (i <= 0) throw new UsageError(`--metadata takes key=value (got '${item}')`, 'devices');
    out[item.slice(0, i)] = item.slice(i + 1);
  }
  return out;
}

const secretsOf = (d: Device) =>
  [
    d.login.has_password && 'password',
    d.login.has_private_key && 'private key',
    d.login.has_passphrase && 'passphrase',
  ]
    .filter(Boolean)
    .join(', ') || 'none';

function printDevice(d: Device, io: CliIO): void {
  const rows: [string, string][] = [
    ['id', d.id],
    ['name', d.name],
    ['ip', d.ip],
    ['area', d.function_area],
    ['os/arch', `${d.os}/${d.arch}`],
    ['status', d.status],
    ['agent code', d.agent_code],
    ['agent version', d.agent_version || '-'],
    ['login', `${d.login_method} ${d.login.username}@${d.ip}:${d.login.port}`],
    ['secrets set', secretsOf(d)],
    [
      'metadata',
      Object.entries(d.metadata)
        .map(([k, x]) => `${k}=${x}`)
        .join(', ') || '-',
    ],
    ['updated', d.updated_at],
  ];
  for (const [k, x] of rows) io.out(`${k.padEnd(13)}  ${x}`);
}

export default defineCommand({
  name: 'devices',
  summary: 'List, show, create, update or delete devices, or import them from a CSV or JSON file.',
  positionals: '<list|get|create|update|delete|import> [name|id|file]',
  options: {
    server: serverOption,
    ip: { type: 'string', value: '<address>', description: 'create/update: IPv4 or IPv6 address' },
    'function-area': { type: 'string', value: '<area>', description: 'create/update: the area' },
    os: { type: 'string', value: '<linux|windows>', description: 'create/update: operating system' },
    arch: { type: 'string', value: '<amd64|arm64>', description: 'create/update: architecture' },
    'login-method': { type: 'string', value: '<ssh|winrm>', description: 'create/update: how to log in' },
    port: { type: 'string', value: '<n>', description: 'create/update: login port (default 22 / 5985)' },
    username: { type: 'string', value: '<user>', description: 'create/update: login user' },
    password: {
      type: 'string',
      value: '<password>',
      description: 'create/update: login password (better: $OPSPLANE_DEVICE_PASSWORD or --ask-password)',
    },
    'ask-password': { type: 'boolean', description: 'create/update: ask for the login password (no echo)' },
    'private-key-file': {
      type: 'string',
      value: '<path>',
      description: 'create/update: SSH private key file',
    },
    'clear-password': { type: 'boolean', description: 'update: remove the stored password' },
    'clear-private-key': {
      type: 'boolean',
      description: 'update: remove the stored private key (and passphrase)',
    },
    metadata: {
      type: 'string',
      multiple: true,
      value: '<k=v,…>',
      description: 'create/update: metadata (its labels for deployment selectors); update replaces it',
    },
    'agent-version': { type: 'string', value: '<x.y.z>', description: 'create/update: the agent version' },
    q: { type: 'string', value: '<text>', description: 'list: free-text search' },
    area: { type: 'string', value: '<area>', description: 'list: only this function_area' },
    status: {
      type: 'string',
      value: '<s,…>',
      description: 'list: new, deploying, online, offline, failed, uninstalled',
    },
    page: { type: 'string', value: '<n>', description: 'list: page (from 1)' },
    'page-size': {
      type: 'string',
      value: '<n>',
      description: 'list: devices per page (default 50, max 500)',
    },
    'dry-run': { type: 'boolean', description: 'import: check every row, change nothing' },
    format: {
      type: 'string',
      value: '<csv|json>',
      description: 'import: file format (default: from the extension)',
    },
    json: jsonOption,
  },
  details: [
    'CSV columns: name, ip, function_area, os, username (required); arch, login_method, port, password,',
    'private_key, passphrase, agent_version, metadata (JSON), metadata.<key>. Rows are matched by name.',
    'import exits 1 when a row was rejected.',
    '',
    'Secrets are write-only: create/update take them, get and list show only which are set.',
    '',
    'Examples:',
    '  opsplane devices import devices.csv',
    '  opsplane devices list --area area-1 --q web',
    '  opsplane devices create web-04 --ip 10.0.0.14 --function-area area-1 --os linux --username deploy --ask-password --metadata role=web',
    '  opsplane devices update web-04 --ip 10.0.0.15 --metadata role=web,env=prod',
    '  opsplane devices delete web-04',
  ].join('\n'),
  async run(v, io) {
    const [action, ...rest] = v._;
    if (action === 'get' || action === 'delete' || action === 'create' || action === 'update') {
      const [ref, ...extra] = rest;
      if (!ref)
        throw new UsageError(
          `${action} needs a device name${action === 'create' ? '' : ' or id'}`,
          'devices',
        );
      if (extra.length) throw new UsageError(`unexpected argument '${extra[0]}'`, 'devices');
      const api = await connect(v.server);
      if (action === 'get') {
        const d = await findDevice(api, ref);
        if (v.json) io.out(json(d));
        else printDevice(d, io);
        return EXIT.ok;
      }
      if (action === 'delete') {
        const d = await findDevice(api, ref);
        await api.call('DELETE /devices/:id', { params: { id: d.id } });
        io.out(`deleted device ${d.name} (agent code ${d.agent_code} is never issued again)`);
        return EXIT.ok;
      }
      let password = v.password ?? process.env.OPSPLANE_DEVICE_PASSWORD;
      if (v['ask-password']) password = await prompt(`Login password for ${ref}: `, true);
      let privateKey: string | undefined;
      if (v['private-key-file']) {
        try {
          privateKey = await readFile(v['private-key-file'], 'utf8');
        } catch (e) {
          throw new CliError(`cannot read ${v['private-key-file']}: ${(e as Error).message}`);
        }
      }
      const port = v.port !== undefined ? Number(v.port) : undefined;
      if (port !== undefined && (!Number.isInteger(port) || port < 1 || port > 65535))
        throw new UsageError('--port must be a port number', 'devices');
      const metadata = metadataFlags(v.metadata);
      if (action === 'create') {
        for (const f of ['ip', 'function-area', 'os', 'username'] as const)
          if (!v[f]) throw new UsageError(`create needs --${f}`, 'devices');
        const body = {
          name: ref,
          ip: v.ip,
          function_area: v['function-area'],
          os: v.os,
          ...(v.arch ? { arch: v.arch } : {}),
          ...(v['login-method'] ? { login_method: v['login-method'] } : {}),
          login: {
            username: v.username,
            ...(port !== undefined ? { port } : {}),
            ...(password ? { password } : {}),
            ...(privateKey ? { private_key: privateKey } : {}),
          },
          ...(metadata ? { metadata } : {}),
          ...(v['agent-version'] ? { agent_version: v['agent-version'] } : {}),
        } as DeviceCreateInput;
        const d = await api.call('POST /devices', { body });
        if (v.json) io.out(json(d));
        else
          io.out(
            `created device ${d.name} in ${d.function_area}; agent code ${d.agent_code}; secrets set: ${secretsOf(d)}`,
          );
        return EXIT.ok;
      }
      const cur = await findDevice(api, ref);
      const login: NonNullable<DeviceUpdate['login']> = {
        ...(v.username ? { username: v.username } : {}),
        ...(port !== undefined ? { port } : {}),
        ...(password ? { password } : v['clear-password'] ? { password: null } : {}),
        ...(privateKey
          ? { private_key: privateKey }
          : v['clear-private-key']
            ? { private_key: null, passphrase: null }
            : {}),
      };
      const body = {
        ...(v.ip ? { ip: v.ip } : {}),
        ...(v['function-area'] ? { function_area: v['function-area'] } : {}),
        ...(v.os ? { os: v.os } : {}),
        ...(v.arch ? { arch: v.arch } : {}),
        ...(v['login-method'] ? { login_method: v['login-method'] } : {}),
        ...(Object.keys(login).length ? { login } : {}),
        ...(metadata ? { metadata } : {}),
        ...(v['agent-version'] ? { agent_version: v['agent-version'] } : {}),
      } as DeviceUpdate;
      if (Object.keys(body).length === 0) throw new UsageError('update: nothing to change', 'devices');
      const d = await api.call('PATCH /devices/:id', { params: { id: cur.id }, body });
      if (v.json) io.out(json(d));
      else io.out(`updated device ${d.name}; secrets set: ${secretsOf(d)}`);
      return EXIT.ok;
    }
    if (action === 'list') {
      if (rest.length) throw new UsageError(`unexpected argument '${rest[0]}'`, 'devices');
      const api = await connect(v.server);
      const r = await api.call('GET /devices', {
        query: {
          q: v.q,
          function_area: v.area,
          status: v.status,
          page: v.page,
          pageSize: v['page-size'],
        },
      });
      if (v.json) {
        io.out(json(r));
        return EXIT.ok;
      }
      for (const l of table(
        ['NAME', 'IP', 'AREA', 'OS', 'STATUS', 'AGENT CODE'],
        r.devices.map((d) => [d.name, d.ip, d.function_area, `${d.os}/${d.arch}`, d.status, d.agent_code]),
      ))
        io.out(l);
      io.out(`${r.total} device(s); page ${r.page} of ${Math.max(1, Math.ceil(r.total / r.pageSize))}`);
      return EXIT.ok;
    }
    if (action === 'import') {
      const [file, ...extra] = rest;
      if (!file)
        throw new UsageError('import needs a file: opsplane devices import <file.csv|file.json>', 'devices');
      if (extra.length) throw new UsageError(`unexpected argument '${extra[0]}'`, 'devices');
      const format = v.format ?? (extname(file).toLowerCase() === '.json' ? 'json' : 'csv');
      if (format !== 'csv' && format !== 'json')
        throw new UsageError('--format must be csv or json', 'devices');
      let text: string;
      try {
        text = await readFile(file, 'utf8');
      } catch (e) {
        throw new CliError(`cannot read ${file}: ${(e as Error).message}`);
      }
      let body: string | unknown[] | { devices: unknown[] } = text;
      if (format === 'json') {
        try {
          body = JSON.parse(text) as unknown[] | { devices: unknown[] };
        } catch (e) {
          throw new CliError(`${file} is not valid JSON: ${(e as Error).message}`);
        }
      }
      const api = await connect(v.server);
      const rep = await api.call(
        'POST /devices/import',
        { body, query: { dry_run: v['dry-run'] ? 'true' : undefined } },
        format === 'csv' ? { contentType: 'text/csv' } : {},
      );
      if (v.json) io.out(json(rep));
      else {
        io.out(
          `${rep.dry_run ? 'dry run: ' : ''}${rep.total} row(s): ${rep.created} ${rep.dry_run ? 'to create' : 'created'}, ` +
            `${rep.updated} ${rep.dry_run ? 'to update' : 'updated'}, ${rep.rejected.length} rejected`,
        );
        for (const x of rep.rejected)
          io.out(
            `  row ${x.row}${x.line !== undefined ? ` (line ${x.line})` : ''}${x.name ? ` ${x.name}` : ''}: ${x.reason}`,
          );
      }
      return rep.rejected.length > 0 ? EXIT.failure : EXIT.ok;
    }
    throw new UsageError(
      action
        ? `unknown action '${action}' (list, get, create, update, delete, import)`
        : 'say list, get, create, update, delete or import',
      'devices',
    );
  },
});
