/**
 * `opsplane audit [list]` — the audit log, newest first: who did what to which target, when,
 * from where, whether it worked, and what changed (each field before → after; secrets show as
 * [redacted]). Filters: --actor, --action (exact or `device.*`), --target-type, --target,
 * --result, --since/--until (RFC 3339, or a duration back from now such as 2h), --q free text.
 */
import { parseDuration } from '@opsplane/kit';
import type { AuditEntry } from '@opsplane/api';
import { EXIT, UsageError, defineCommand, type CliIO } from '../command.js';
import { connect } from '../client/api.js';
import { json, table } from '../client/format.js';
import { outputOption, serverOption, wantsJson } from '../client/common-options.js';
import { sanitize } from '../client/progress.js';

/** `2h` → the time 2 hours ago; an RFC 3339 time as is. */
export function timeFlag(v: string | undefined, flag: string, now = Date.now()): string | undefined {
  if (v === undefined) return undefined;
  if (/^\d{4}-\d\d-\d\d/.test(v)) return v;
  let ms: number;
  try {
    ms = parseDuration(v);
  } catch {
    throw new UsageError(`--${flag} takes an RFC 3339 time or a duration such as 2h (got '${v}')`, 'audit');
  }
  return new Date(now - ms).toISOString();
}

const show = (x: unknown) =>
  x === null || x === undefined ? '∅' : typeof x === 'string' ? x : JSON.stringify(x);

/** `field: before → after`, one per change, cut to a line. */
export function changeLines(e: AuditEntry, width = 160): string[] {
  return e.changes.map((c) => {
    const line = `${c.field}: ${show(c.before)} → ${show(c.after)}`.replace(/\s*\n\s*/g, '⏎');
    return sanitize(line.length > width ? `${line.slice(0, width - 1)}…` : line);
  });
}

function print(entries: readonly AuditEntry[], io: CliIO): void {
  for (const e of entries) {
    const [head] = table(
      ['AT', 'ACTOR', 'FROM', 'ACTION', 'RESULT', 'TARGET'],
      [
        [
          e.at,
          e.actor,
          e.ip ?? '-',
          e.action,
          e.result,
          `${e.target_type ?? '-'} ${e.target_id ?? ''}`.trim(),
        ],
      ],
    ).slice(1);
    io.out(sanitize(head ?? ''));
    for (const l of changeLines(e)) io.out(`    ${l}`);
    const err = (e.details as { error?: unknown; message?: unknown }).message ?? e.details.error;
    if (e.result === 'failure' && err !== undefined) io.out(`    error: ${sanitize(String(err))}`);
  }
}

export default defineCommand({
  name: 'audit',
  summary: 'Show the audit log: who changed what (before → after), when and from where.',
  positionals: '[list]',
  options: {
    server: serverOption,
    actor: { type: 'string', value: '<username>', description: 'only this actor' },
    action: {
      type: 'string',
      value: '<action>',
      description: 'an action (device.update) or a prefix (device.*)',
    },
    'target-type': {
      type: 'string',
      value: '<type>',
      description: 'device, user, api_token, batch, alert, …',
    },
    target: { type: 'string', value: '<id>', description: 'only this target id' },
    result: { type: 'string', value: '<success|failure>', description: 'only successes or failures' },
    since: { type: 'string', value: '<time|duration>', description: 'from this time (or e.g. 2h ago)' },
    until: { type: 'string', value: '<time|duration>', description: 'up to this time' },
    q: { type: 'string', value: '<text>', description: 'free text over actor, action, target and details' },
    page: { type: 'string', value: '<n>', description: 'page (from 1)' },
    'page-size': { type: 'string', value: '<n>', description: 'entries per page (default 50)' },
    output: outputOption,
    json: { type: 'boolean', description: 'same as --output json' },
  },
  details: [
    'Examples:',
    '  opsplane audit --action device.* --since 24h',
    '  opsplane audit --actor alice --result failure',
    '  opsplane audit --target-type device --target 6d0c…',
  ].join('\n'),
  async run(v, io) {
    const [action, ...rest] = v._;
    if ((action !== undefined && action !== 'list') || rest.length)
      throw new UsageError(`unexpected argument '${action === 'list' ? rest[0] : action}'`, 'audit');
    if (v.result !== undefined && v.result !== 'success' && v.result !== 'failure')
      throw new UsageError('--result must be success or failure', 'audit');
    const asJson = wantsJson(v, 'audit');
    const api = await connect(v.server);
    const r = await api.call('GET /audit', {
      query: {
        actor: v.actor,
        action: v.action,
        target_type: v['target-type'],
        target_id: v.target,
        result: v.result as 'success' | 'failure' | undefined,
        since: timeFlag(v.since, 'since'),
        until: timeFlag(v.until, 'until'),
        q: v.q,
        page: v.page,
        pageSize: v['page-size'],
      },
    });
    if (asJson) io.out(json(r));
    else {
      print(r.entries, io);
      io.out(
        `${r.total} entr${r.total === 1 ? 'y' : 'ies'}; page ${r.page} of ${Math.max(1, Math.ceil(r.total / r.pageSize))}`,
      );
    }
    return EXIT.ok;
  },
});
