/**
 * `opsplane devices list|import` — the device inventory: list with search and filters, and
 * bulk import from CSV or JSON with the server's per-row report.
 */
import { readFile } from 'node:fs/promises';
import { extname } from 'node:path';
import { CliError, EXIT, UsageError, defineCommand } from '../command.js';
import { connect } from '../client/api.js';
import { json, table } from '../client/format.js';
import { jsonOption, serverOption } from '../client/common-options.js';

export default defineCommand({
  name: 'devices',
  summary: 'List devices, or import them from a CSV or JSON file.',
  positionals: '<list|import> [file]',
  options: {
    server: serverOption,
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
    'Examples:',
    '  opsplane devices import devices.csv',
    '  opsplane devices list --area area-1 --q web',
  ].join('\n'),
  async run(v, io) {
    const [action, ...rest] = v._;
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
      action ? `unknown action '${action}' (list or import)` : 'say list or import',
      'devices',
    );
  },
});
