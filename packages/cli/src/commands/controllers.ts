/**
 * `opsplane controllers list|history` — the controllers registered in etcd now (as the
 * platform server's discovery sees them), and when each came and went.
 */
import { EXIT, UsageError, defineCommand } from '../command.js';
import { connect } from '../client/api.js';
import { ago, json, table } from '../client/format.js';
import { jsonOption, serverOption } from '../client/common-options.js';

export default defineCommand({
  name: 'controllers',
  summary: 'List the controllers of every area, or their history.',
  positionals: '<list|history>',
  options: {
    server: serverOption,
    area: { type: 'string', value: '<area>', description: 'only this area' },
    limit: { type: 'string', value: '<n>', description: 'history: rows (default 500)' },
    json: jsonOption,
  },
  async run(v, io) {
    const [action = 'list', ...rest] = v._;
    if (rest.length) throw new UsageError(`unexpected argument '${rest[0]}'`, 'controllers');
    const api = await connect(v.server);
    if (action === 'list') {
      const r = await api.call('GET /controllers', { query: { area: v.area } });
      if (v.json) {
        io.out(json(r));
        return EXIT.ok;
      }
      if (!r.discovery.synced)
        io.err(
          `warning: discovery has not synced with etcd${r.discovery.last_error ? `: ${r.discovery.last_error}` : ''}`,
        );
      for (const l of table(
        ['AREA', 'ID', 'ADDRESS', 'STATUS', 'VERSION', 'AGENTS', 'HEARTBEAT', 'LAST REFRESH'],
        r.controllers.map((c) => [
          c.area,
          c.id,
          c.address,
          c.status,
          c.version || '-',
          String(c.agent_count),
          ago(c.last_heartbeat),
          c.last_error
            ? `error: ${c.last_error.message}`
            : c.listed_agents !== null
              ? `listed ${c.listed_agents}`
              : '-',
        ]),
      ))
        io.out(l);
      io.out(`${r.total} controller(s)`);
      return EXIT.ok;
    }
    if (action === 'history') {
      const r = await api.call('GET /controllers/history', { query: { area: v.area, limit: v.limit } });
      if (v.json) {
        io.out(json(r));
        return EXIT.ok;
      }
      for (const l of table(
        ['AREA', 'ID', 'ADDRESS', 'VERSION', 'CAME', 'WENT'],
        r.history.map((h) => [
          h.area,
          h.controller_id,
          h.address,
          h.version || '-',
          h.came_at,
          h.went_at ?? '(present)',
        ]),
      ))
        io.out(l);
      return EXIT.ok;
    }
    throw new UsageError(`unknown action '${action}' (list or history)`, 'controllers');
  },
});
