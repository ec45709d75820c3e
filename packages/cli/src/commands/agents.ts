/**
 * `opsplane agents list|get|metrics|revoke|reinstate|revocations` — the aggregated agent view
 * across every area (filter, label selector, search, sort, page), one agent live from its
 * controller joined with its device, its metrics over time (system and per package, kept by
 * the server), and revoking an agent's identity (every controller drops and refuses it).
 */
import { parseSelector, SelectorError, type AgentListResponse, type MetricsHistory } from '@opsplane/api';
import { EXIT, UsageError, defineCommand, type CliIO } from '../command.js';
import { fmtBytes, sparkline } from '../client/spark.js';
import { connect } from '../client/api.js';
import { ago, json, table } from '../client/format.js';
import { jsonOption, serverOption } from '../client/common-options.js';

function warnings(r: AgentListResponse, io: CliIO): void {
  for (const e of r.errors)
    io.err(`warning: ${e.area || 'discovery'}${e.controller_id ? `/${e.controller_id}` : ''}: ${e.message}`);
  if (r.stale)
    io.err(`warning: the view is stale (refreshed ${r.refreshed_at ? ago(r.refreshed_at) : 'never'})`);
}

export default defineCommand({
  name: 'agents',
  summary: 'List the agents of every area (aggregated view), or show one agent.',
  positionals: '<list|get|metrics|revoke|reinstate|revocations> [code]',
  options: {
    server: serverOption,
    area: { type: 'string', value: '<a,…>', description: 'list: only these areas' },
    status: { type: 'string', value: '<s,…>', description: 'list: online, offline, unknown' },
    health: { type: 'string', value: '<h,…>', description: 'list: healthy, degraded, unhealthy, unknown' },
    controller: { type: 'string', value: '<id>', description: 'list: only agents held by this controller' },
    version: { type: 'string', value: '<v>', description: 'list: only this agent version' },
    q: { type: 'string', value: '<text>', description: 'list: search id, hostname, address, device name' },
    selector: {
      type: 'string',
      short: 'l',
      value: '<selector>',
      description: "list: label selector, e.g. 'env=prod,role!=db' or 'tier in (web,api)'",
    },
    window: {
      type: 'string',
      value: '<duration>',
      description: 'metrics: how far back (default 1h, at most 24h)',
    },
    package: { type: 'string', value: '<name>', description: 'metrics: only this package' },
    reason: {
      type: 'string',
      value: '<text>',
      description: 'revoke: why (kept with the revocation and in the audit log)',
    },
    sort: {
      type: 'string',
      value: '<[-]field>',
      description:
        'list: id, area, status, health_status, last_heartbeat, version, hostname, address, controller_id, device_name (- = descending)',
    },
    page: { type: 'string', value: '<n>', description: 'list: page (from 1)' },
    'page-size': { type: 'string', value: '<n>', description: 'list: agents per page (default 50, max 500)' },
    refresh: {
      type: 'boolean',
      description: 'list: rebuild the view from the controllers first (operators)',
    },
    json: jsonOption,
  },
  details: [
    'Examples:',
    '  opsplane agents list --area area-1 --status online',
    '  opsplane agents list --q web --sort -last_heartbeat --page-size 20',
    "  opsplane agents list --selector 'env=prod,role in (web,api)'",
    '  opsplane agents get agt-abcdefgh2345',
    '  opsplane agents metrics agt-abcdefgh2345 --window 6h',
    "  opsplane agents revoke agt-abcdefgh2345 --reason 'host stolen'   (admins)",
    '  opsplane agents reinstate agt-abcdefgh2345',
    '  opsplane agents revocations',
  ].join('\n'),
  async run(v, io) {
    const [action, ...rest] = v._;
    if (action === 'list') {
      if (rest.length) throw new UsageError(`unexpected argument '${rest[0]}'`, 'agents');
      checkSelector(v.selector);
      const api = await connect(v.server);
      const r = await api.call('GET /agents', {
        query: {
          selector: v.selector,
          area: v.area,
          status: v.status,
          health_status: v.health,
          controller_id: v.controller,
          version: v.version,
          q: v.q,
          sort: v.sort,
          page: v.page,
          pageSize: v['page-size'],
          refresh: v.refresh ? 'true' : undefined,
        },
      });
      if (v.json) {
        io.out(json(r));
        return EXIT.ok;
      }
      warnings(r, io);
      for (const l of table(
        [
          'CODE',
          'AREA',
          'CONTROLLER',
          'STATUS',
          'HEALTH',
          'PKGS',
          'VERSION',
          'HOSTNAME',
          'ADDRESS',
          'DEVICE',
          'HEARTBEAT',
        ],
        r.agents.map((a) => [
          a.agent_code,
          a.area,
          a.controller_id,
          a.status,
          a.health_status,
          String(a.service_count),
          a.version || '-',
          a.hostname || '-',
          a.address || '-',
          a.device_name ?? '-',
          ago(a.last_heartbeat),
        ]),
      ))
        io.out(l);
      io.out(
        `${r.total} agent(s); page ${r.page} of ${Math.max(1, Math.ceil(r.total / r.pageSize))}; view refreshed ${r.refreshed_at ? ago(r.refreshed_at) : 'never'}`,
      );
      return EXIT.ok;
    }
    if (action === 'get') {
      const [code, ...extra] = rest;
      if (!code) throw new UsageError('get needs an agent code: opsplane agents get <code>', 'agents');
      if (extra.length) throw new UsageError(`unexpected argument '${extra[0]}'`, 'agents');
      const api = await connect(v.server);
      const a = await api.call('GET /agents/by-code/:code', { params: { code } });
      if (v.json) {
        io.out(json(a));
        return EXIT.ok;
      }
      const rows: [string, string][] = [
        ['code', a.agent_code],
        ['area', a.area],
        ['controller', a.controller_id],
        ['status', a.status],
        ['health', a.health_status],
        ['version', a.version || '-'],
        ['hostname', a.hostname || '-'],
        ['address', a.address || '-'],
        ['os/arch', `${a.os ?? '-'}/${a.arch ?? '-'}`],
        ['last heartbeat', `${a.last_heartbeat} (${ago(a.last_heartbeat)})`],
        [
          'device',
          a.device ? `${a.device.name} (${a.device.ip}, ${a.device.function_area}, id ${a.device.id})` : '-',
        ],
      ];
      const w = Math.max(...rows.map(([k]) => k.length));
      for (const [k, val] of rows) io.out(`${k.padEnd(w)}  ${val}`);
      io.out('');
      for (const l of table(
        ['PACKAGE', 'VERSION', 'STATUS', 'HEALTH', 'PID', 'RESTARTS', 'LAST ERROR'],
        a.services.map((s) => [
          s.name,
          s.version || '-',
          s.status ?? (s.is_running ? 'running' : 'stopped'),
          s.health_status ?? '-',
          s.pid !== undefined ? String(s.pid) : '-',
          s.restarts !== undefined ? String(s.restarts) : '-',
          s.last_error ?? '',
        ]),
      ))
        io.out(l);
      return EXIT.ok;
    }
    if (action === 'metrics') {
      const [code, ...extra] = rest;
      if (!code)
        throw new UsageError('metrics needs an agent code: opsplane agents metrics <code>', 'agents');
      if (extra.length) throw new UsageError(`unexpected argument '${extra[0]}'`, 'agents');
      const api = await connect(v.server);
      const h = await api.call('GET /agents/:code/metrics/history', {
        params: { code },
        query: { window: v.window, package: v.package },
      });
      if (v.json) io.out(json(h));
      else printHistory(h, io);
      return EXIT.ok;
    }
    if (action === 'revoke' || action === 'reinstate') {
      const [code, ...extra] = rest;
      if (!code)
        throw new UsageError(`${action} needs an agent code: opsplane agents ${action} <code>`, 'agents');
      if (extra.length) throw new UsageError(`unexpected argument '${extra[0]}'`, 'agents');
      const api = await connect(v.server);
      if (action === 'revoke') {
        const r = await api.call('POST /agents/:code/revoke', {
          params: { code },
          body: { reason: v.reason ?? '' },
        });
        if (v.json) io.out(json(r));
        else
          io.out(
            `revoked ${r.agent_code}${r.area ? ` (area ${r.area})` : ''}: its controller drops it and every controller refuses it`,
          );
      } else {
        await api.call('DELETE /revocations/agents/:code', { params: { code } });
        if (!v.json) io.out(`reinstated ${code}: it may connect again with a valid certificate or token`);
      }
      return EXIT.ok;
    }
    if (action === 'revocations') {
      if (rest.length) throw new UsageError(`unexpected argument '${rest[0]}'`, 'agents');
      const api = await connect(v.server);
      const r = await api.call('GET /revocations', {});
      if (v.json) {
        io.out(json(r));
        return EXIT.ok;
      }
      for (const l of table(
        ['CODE', 'AREA', 'REVOKED', 'BY', 'REASON'],
        r.revocations.map((x) => [
          x.agent_code,
          x.area ?? '-',
          ago(x.revoked_at),
          x.revoked_by ?? '-',
          x.reason,
        ]),
      ))
        io.out(l);
      io.out(`${r.revocations.length} revoked agent(s)`);
      return EXIT.ok;
    }
    throw new UsageError(
      action
        ? `unknown action '${action}' (list, get, metrics, revoke, reinstate, revocations)`
        : 'say list, get, metrics, revoke, reinstate or revocations',
      'agents',
    );
  },
});

/** A selector checked before it is sent: a typo is a usage error (exit 2) naming the part. */
export function checkSelector(s: string | undefined, command = 'agents'): void {
  if (s === undefined) return;
  try {
    parseSelector(s);
  } catch (e) {
    if (e instanceof SelectorError) throw new UsageError(`--selector: ${e.message}`, command);
    throw e;
  }
}

const last = <T>(xs: readonly T[]): T | undefined => xs[xs.length - 1];

/** One line per series: name, latest value, min–max and a sparkline over the window. */
export function printHistory(h: MetricsHistory, io: CliIO): void {
  const n = h.system.length;
  io.out(
    `${h.agent_code}: ${n} sample(s) from ${h.from} to ${h.to}, one per ${Math.round(h.interval_ms / 1000)} s` +
      (n === 0 ? ' — none yet (is the agent online? the server samples every interval)' : ''),
  );
  const rows: string[][] = [];
  const series = (name: string, values: number[], fmt: (x: number) => string) => {
    if (values.length === 0) return;
    rows.push([
      name,
      fmt(last(values) ?? 0),
      `${fmt(Math.min(...values))}–${fmt(Math.max(...values))}`,
      sparkline(values, 40),
    ]);
  };
  const pct = (x: number) => `${x.toFixed(1)}%`;
  series(
    'cpu',
    h.system.map((p) => p.cpu_percent),
    pct,
  );
  series(
    'memory',
    h.system.map((p) => p.memory_used_percent),
    pct,
  );
  series(
    'load1',
    h.system.map((p) => p.load1),
    (x) => x.toFixed(2),
  );
  for (const p of h.packages) {
    series(
      `${p.name} cpu`,
      p.points.map((x) => x.cpu_percent),
      pct,
    );
    series(
      `${p.name} rss`,
      p.points.map((x) => x.rss_bytes),
      fmtBytes,
    );
    series(
      `${p.name} restarts`,
      p.points.map((x) => x.restarts),
      (x) => String(Math.round(x)),
    );
  }
  if (rows.length) for (const l of table(['SERIES', 'NOW', 'RANGE', 'OVER THE WINDOW'], rows)) io.out(l);
}
