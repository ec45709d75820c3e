/**
 * `opsplane controller` — runs the controller daemon of one area (see @opsplane/controller).
 * Flags override the config file; secrets come from the environment or the file.
 */
import type { ControllerConfig, ControllerFileConfig } from '@opsplane/controller';
import { EXIT, UsageError, defineCommand } from '../command.js';
import { runDaemon } from '../daemon.js';

export default defineCommand({
  name: 'controller',
  summary:
    'Run the controller of an area: holds agent connections, serves the controller API, registers in etcd.',
  options: {
    area: {
      type: 'string',
      value: '<area>',
      description: 'area (network zone) this controller serves (required here or in the config)',
    },
    id: { type: 'string', value: '<id>', description: 'controller id (default: <hostname>-<random>)' },
    listen: {
      type: 'string',
      value: '<host:port>',
      description: 'HTTP listen address (default 127.0.0.1:8081)',
    },
    advertise: {
      type: 'string',
      value: '<host:port>',
      description: 'address written to etcd (default: the listen address)',
    },
    etcd: {
      type: 'string',
      multiple: true,
      value: '<urls>',
      description: 'etcd endpoints, comma-separated (default http://127.0.0.1:2379)',
    },
    prefix: { type: 'string', value: '<prefix>', description: "etcd key prefix (default 'controllers/')" },
    config: {
      type: 'string',
      short: 'c',
      value: '<file>',
      description: 'YAML config file (see packages/controller/examples/controller.yaml)',
    },
    'insecure-no-token': {
      type: 'boolean',
      description:
        'run without an API token: anyone who reaches the controller may operate its agents (logged as a warning, and as a metric)',
    },
    'log-level': {
      type: 'string',
      value: '<level>',
      description: 'trace, debug, info, warn, error, silent (default: $OPSPLANE_LOG_LEVEL or info)',
    },
  },
  details: [
    'Environment:',
    '  OPSPLANE_AGENT_SECRET      secret that agent tokens of the area are derived from (required)',
    '  OPSPLANE_CONTROLLER_TOKEN  /api/v1 requires Authorization: Bearer <token> (required, unless --insecure-no-token)',
    '  OPSPLANE_ETCD_ENDPOINTS    etcd endpoints, comma-separated',
    '',
    'Example:',
    '  OPSPLANE_AGENT_SECRET=... OPSPLANE_CONTROLLER_TOKEN=... opsplane controller --area area-1 --listen 0.0.0.0:8081 --etcd http://10.0.0.2:2379',
  ].join('\n'),
  async run(v, io) {
    if (v['log-level']) process.env.OPSPLANE_LOG_LEVEL = v['log-level'];
    // Loaded here, not at the top: `--help` and usage errors should not pay for etcd/gRPC/Fastify.
    const { ConfigError, loadControllerConfig, startController } = await import('@opsplane/controller');
    const { createLogger } = await import('@opsplane/kit');
    const endpoints = v.etcd
      ?.flatMap((s) => s.split(','))
      .map((s) => s.trim())
      .filter(Boolean);
    if (v.etcd && endpoints?.length === 0)
      throw new UsageError('--etcd needs at least one endpoint', 'controller');
    const overrides: Partial<ControllerFileConfig> = {
      ...(v.area !== undefined ? { area: v.area } : {}),
      ...(v.id !== undefined ? { id: v.id } : {}),
      ...(v.listen !== undefined ? { listen: v.listen } : {}),
      ...(v.advertise !== undefined ? { advertise: v.advertise } : {}),
      ...(v['insecure-no-token'] ? { insecure_no_token: true } : {}),
      ...(endpoints || v.prefix
        ? { etcd: { ...(endpoints ? { endpoints } : {}), ...(v.prefix ? { prefix: v.prefix } : {}) } }
        : {}),
    };
    let config: ControllerConfig;
    try {
      config = await loadControllerConfig({ file: v.config, overrides });
    } catch (e) {
      if (e instanceof ConfigError) throw new UsageError(e.message, 'controller');
      throw e;
    }
    const logger = createLogger('controller');
    try {
      return await runDaemon(() => startController(config, { logger }), io, 'opsplane controller');
    } catch (e) {
      io.err(`opsplane controller: cannot start: ${(e as Error).message}`);
      return EXIT.failure;
    }
  },
});
