/**
 * `opsplane alerts list|get|ack|silence|silences|unsilence` — what the server's alert engine
 * raised (firing by default), acknowledging one, and silences: hold back the notifications of
 * the alerts of a rule (--kind), an area and/or an agent for a while (--for 2h). A silenced
 * alert still fires and resolves; `list` marks it.
 */
import { ALERT_KINDS, ALERT_STATUSES, type Alert, type AlertKind, type Silence } from '@opsplane/api';
import { EXIT, UsageError, defineCommand } from '../command.js';
import { connect } from '../client/api.js';
import { ago, json, table } from '../client/format.js';
import { outputOption, serverOption, wantsJson } from '../client/common-options.js';
import { sanitize } from '../client/progress.js';

function oneOf<T extends string>(values: readonly T[], v: string | undefined, flag: string): T | undefined {
  if (v === undefined) return undefined;
  if (!(values as readonly string[]).includes(v))
    throw new UsageError(`--${flag} must be one of ${values.join(', ')} (got '${v}')`, 'alerts');
  return v as T;
}

const silenceScope = (s: Silence) =>
  [s.kind && `kind=${s.kind}`, s.area && `area=${s.area}`, s.agent_code && `agent=${s.agent_code}`]
    .filter(Boolean)
    .join(' ');

function alertRows(items: readonly Alert[]): string[] {
  return table(
    ['ID', 'STATUS', 'SEVERITY', 'KIND', 'AREA', 'TITLE', 'SINCE', 'ACK', 'SILENCED'],
    items.map((a) => [
      a.id,
      a.status,
      a.severity,
      a.kind,
      a.area || '-',
      sanitize(a.title),
      ago(a.first_seen),
      a.acknowledged_by ?? '-',
      a.silenced_by ? 'yes' : '-',
    ]),
  );
}

export default defineCommand({
  name: 'alerts',
  summary: 'List alerts, acknowledge one, or silence them by rule, area or agent for a while.',
  positionals: '<list|get|ack|silence|silences|unsilence> [id]',
  options: {
    server: serverOption,
    status: { type: 'string', value: '<firing|resolved|all>', description: 'list: which (default firing)' },
    kind: {
      type: 'string',
      value: '<kind>',
      description: `list/silence: the rule (${ALERT_KINDS.join(', ')})`,
    },
    area: { type: 'string', value: '<area>', description: 'list/silence: the area' },
    agent: {
      type: 'string',
      value: '<code>',
      description: 'silence: the agent (its own and its packages’ alerts)',
    },
    silenced: {
      type: 'string',
      value: '<true|false>',
      description: 'list: only silenced alerts, or only the others',
    },
    for: { type: 'string', value: '<duration>', description: "silence: how long, e.g. '2h' (default 1h)" },
    comment: { type: 'string', value: '<text>', description: 'silence: why' },
    all: { type: 'boolean', description: 'silences: also the expired ones' },
    page: { type: 'string', value: '<n>', description: 'list: page' },
    output: outputOption,
    json: { type: 'boolean', description: 'same as --output json' },
  },
  details: [
    'Examples:',
    '  opsplane alerts list --status all --area area-1',
    '  opsplane alerts ack 3f2a…',
    "  opsplane alerts silence --agent agt-abcdefgh2345 --for 2h --comment 'disk swap'",
    '  opsplane alerts silence --kind package_unhealthy --area area-2 --for 30m',
    '  opsplane alerts silences',
    '  opsplane alerts unsilence 9c1d…',
  ].join('\n'),
  async run(v, io) {
    const [action, id, ...extra] = v._;
    if (extra.length) throw new UsageError(`unexpected argument '${extra[0]}'`, 'alerts');
    const asJson = wantsJson(v, 'alerts');
    const needId = () => {
      if (!id) throw new UsageError(`${action} needs an id`, 'alerts');
      return id;
    };
    switch (action) {
      case 'list': {
        const status =
          v.status === 'all'
            ? undefined
            : (oneOf(ALERT_STATUSES, v.status ?? 'firing', 'status') ?? 'firing');
        const silenced =
          v.silenced === undefined ? undefined : oneOf(['true', 'false'] as const, v.silenced, 'silenced');
        const api = await connect(v.server);
        const r = await api.call('GET /alerts', {
          query: { status, kind: oneOf(ALERT_KINDS, v.kind, 'kind'), area: v.area, silenced, page: v.page },
        });
        if (asJson) io.out(json(r));
        else {
          for (const l of alertRows(r.items)) io.out(l);
          io.out(`${r.total} ${status ?? ''}${status ? ' ' : ''}alert(s)`);
        }
        return EXIT.ok;
      }
      case 'get': {
        const api = await connect(v.server);
        const a = await api.call('GET /alerts/:id', { params: { id: needId() } });
        if (asJson) io.out(json(a));
        else {
          for (const l of alertRows([a])) io.out(l);
          io.out(sanitize(a.message));
        }
        return EXIT.ok;
      }
      case 'ack': {
        const api = await connect(v.server);
        const a = await api.call('POST /alerts/:id/ack', { params: { id: needId() } });
        if (asJson) io.out(json(a));
        else io.out(`${sanitize(a.title)}: acknowledged by ${a.acknowledged_by ?? '?'}`);
        return EXIT.ok;
      }
      case 'silence': {
        if (id) throw new UsageError(`unexpected argument '${id}'`, 'alerts');
        const kind: AlertKind | undefined = oneOf(ALERT_KINDS, v.kind, 'kind');
        if (!kind && !v.area && !v.agent)
          throw new UsageError('say what to silence: --kind, --area and/or --agent', 'alerts');
        const api = await connect(v.server);
        const s = await api.call('POST /silences', {
          body: {
            ...(kind ? { kind } : {}),
            ...(v.area ? { area: v.area } : {}),
            ...(v.agent ? { agent_code: v.agent } : {}),
            duration: v.for ?? '1h',
            ...(v.comment ? { comment: v.comment } : {}),
          },
        });
        if (asJson) io.out(json(s));
        else io.out(`silence ${s.id}: ${silenceScope(s)} until ${s.expires_at}`);
        return EXIT.ok;
      }
      case 'silences': {
        if (id) throw new UsageError(`unexpected argument '${id}'`, 'alerts');
        const api = await connect(v.server);
        const r = await api.call('GET /silences', { query: { all: v.all ? 'true' : undefined } });
        if (asJson) io.out(json(r));
        else {
          for (const l of table(
            ['ID', 'MATCHES', 'UNTIL', 'ACTIVE', 'BY', 'COMMENT'],
            r.silences.map((s) => [
              s.id,
              silenceScope(s),
              s.expires_at,
              s.active ? 'yes' : 'no',
              s.created_by,
              sanitize(s.comment),
            ]),
          ))
            io.out(l);
          io.out(`${r.total} silence(s)`);
        }
        return EXIT.ok;
      }
      case 'unsilence': {
        const api = await connect(v.server);
        const s = await api.call('DELETE /silences/:id', { params: { id: needId() } });
        if (asJson) io.out(json(s));
        else io.out(`silence ${s.id} ended (${silenceScope(s)})`);
        return EXIT.ok;
      }
      default:
        throw new UsageError(
          action
            ? `unknown action '${action}' (list, get, ack, silence, silences, unsilence)`
            : 'say list, get, ack, silence, silences or unsilence',
          'alerts',
        );
    }
  },
});
