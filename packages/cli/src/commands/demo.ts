/**
 * `opsplane demo` — the whole system on this machine with embedded defaults: etcd, the platform
 * server (PGlite), two areas with three controllers, six agents with sample packages. Runs until
 * Ctrl-C, then stops everything; state stays in the data dir for the next run.
 */
import { UsageError, defineCommand } from '../command.js';

const LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'silent'];

export default defineCommand({
  name: 'demo',
  summary:
    'Run the whole system on this machine: etcd, the platform server, 2 areas with 3 controllers, 6 agents with sample packages.',
  options: {
    'data-dir': {
      type: 'string',
      value: '<dir>',
      description: 'where etcd, the database, configs, secrets and agents live (default ./data/demo)',
    },
    fresh: { type: 'boolean', description: 'wipe the data dir first (new database, secrets, agent codes)' },
    port: {
      type: 'string',
      value: '<port>',
      description:
        'server port on 127.0.0.1 (default 8080, or a free one when 8080 is busy; 0 = any free port)',
    },
    'log-level': {
      type: 'string',
      value: '<level>',
      description: 'log level of the demo processes: trace, debug, info (default), warn, error, silent',
    },
    verbose: { type: 'boolean', description: "also show the servers' per-request log lines" },
    'no-tls': {
      type: 'boolean',
      description:
        'plain HTTP/ws and etcd without TLS or authentication (default: TLS everywhere, agents by certificate)',
    },
    timeout: {
      type: 'string',
      value: '<seconds>',
      description: 'how long start-up may take before the demo gives up (default 120)',
    },
  },
  details: [
    'Everything listens on 127.0.0.1. Generated credentials (admin password, area secrets) are kept',
    'in <data dir>/secrets.json and reused by the next run. One demo per data dir; a second one says',
    'where the first runs. Ctrl-C stops agents (and their packages), controllers, server and etcd.',
    '',
    'Environment:',
    '  OPSPLANE_ADMIN_PASSWORD  password of the admin user (default: generated and printed)',
    '  OPSPLANE_ETCD_BIN        etcd binary (default: etcd on PATH)',
    '  NO_COLOR / FORCE_COLOR   colors of the prefixed log lines (default: on a terminal only)',
    '',
    'Examples:',
    '  npm run demo                       # from the repository: installs what is missing, builds, runs this',
    '  opsplane demo --fresh              # start over with a new database and new agent codes',
    '  opsplane demo --data-dir /tmp/d --port 0',
  ].join('\n'),
  async run(v) {
    let port: number | undefined;
    if (v.port !== undefined) {
      port = Number(v.port);
      if (!/^\d{1,5}$/.test(v.port) || port > 65535)
        throw new UsageError(`--port: expected 0-65535, got '${v.port}'`, 'demo');
    }
    const logLevel = v['log-level'] ?? 'info';
    if (!LEVELS.includes(logLevel))
      throw new UsageError(`--log-level: expected one of ${LEVELS.join(', ')}`, 'demo');
    let timeoutS = 120;
    if (v.timeout !== undefined) {
      timeoutS = Number(v.timeout);
      if (!Number.isFinite(timeoutS) || timeoutS <= 0)
        throw new UsageError(`--timeout: expected seconds, got '${v.timeout}'`, 'demo');
    }
    const { runDemo } = await import('../demo/demo-runner.js');
    return runDemo({
      dataDir: v['data-dir'] ?? 'data/demo',
      fresh: v.fresh ?? false,
      port,
      logLevel,
      verbose: v.verbose ?? false,
      tls: !v['no-tls'],
      readyTimeoutMs: timeoutS * 1000,
    });
  },
});
