/**
 * `opsplane server` — runs the platform server: the API operators, the CLI and the UI use;
 * it watches etcd for controllers, keeps the aggregated agent view warm and runs batches.
 * Flags override the config file, which overrides the defaults.
 */
import { EXIT, UsageError, defineCommand } from '../command.js';
import { runDaemon } from '../daemon.js';
import { listFlag } from '../client/api.js';

export default defineCommand({
  name: 'server',
  summary: 'Run the platform server (API, controller discovery, aggregated agents, batches).',
  options: {
    config: {
      type: 'string',
      short: 'c',
      value: '<file>',
      description: 'platform.yaml (etcd, controller, cache, concurrency, server, areas sections)',
    },
    listen: {
      type: 'string',
      value: '<host:port>',
      description: 'HTTP listen address (default 127.0.0.1:8080)',
    },
    etcd: {
      type: 'string',
      multiple: true,
      value: '<urls>',
      description: 'etcd endpoints, comma-separated (default http://127.0.0.1:2379)',
    },
    'data-dir': {
      type: 'string',
      value: '<dir>',
      description: 'embedded database and generated master key (default ./data)',
    },
    'log-level': {
      type: 'string',
      value: '<level>',
      description: 'trace, debug, info, warn, error, silent (default: $OPSPLANE_LOG_LEVEL or info)',
    },
  },
  details: [
    'The agent this CLI was built with is offered for deployment as an agent bundle of its',
    'version (see GET /api/v1/agent-bundles); upload others with `opsplane deployments bundles --upload`.',
    '',
    'On first start the embedded database is created in <data-dir>/db, a master key in',
    '<data-dir>/master.key, and the password of the first admin user is printed once.',
    '',
    'Environment:',
    '  OPSPLANE_ADMIN_PASSWORD   password of the first admin (default: generated and printed)',
    '  DATABASE_URL              postgres://… instead of the embedded database (needs a master key)',
    '  OPSPLANE_MASTER_KEY(_FILE) the master key that encrypts stored credentials',
    '  OPSPLANE_ETCD_ENDPOINTS   etcd endpoints, comma-separated',
    '  OPSPLANE_AREAS_FILE       YAML with per-area credentials (agent_secret, controller_token)',
    '',
    'Example:',
    '  opsplane server --config platform.yaml --listen 0.0.0.0:8080 --etcd http://10.0.0.2:2379',
  ].join('\n'),
  async run(v, io) {
    if (v._.length > 0) throw new UsageError(`unexpected argument '${v._[0]}'`, 'server');
    if (v['log-level']) process.env.OPSPLANE_LOG_LEVEL = v['log-level'];
    // Loaded here: --help and usage errors should not pay for PGlite, Fastify and gRPC.
    const { loadServerConfig, startServer } = await import('@opsplane/server');
    const { createLogger } = await import('@opsplane/kit');
    const { ValidationError } = await import('@opsplane/models');
    const endpoints = v.etcd ? listFlag(v.etcd) : undefined;
    if (v.etcd && endpoints?.length === 0)
      throw new UsageError('--etcd needs at least one endpoint', 'server');
    let config;
    try {
      config = await loadServerConfig(v.config, {
        server: {
          ...(v.listen !== undefined ? { listen: v.listen } : {}),
          ...(v['data-dir'] !== undefined ? { data_dir: v['data-dir'] } : {}),
        },
        ...(endpoints ? { etcd: { endpoints } } : {}),
      });
    } catch (e) {
      if (e instanceof ValidationError) throw new UsageError(e.message, 'server');
      throw e;
    }
    const logger = createLogger('server');
    try {
      return await runDaemon(
        async () => {
          const bundles = await builtinBundle(logger);
          const s = await startServer(config, { logger, bundles }).finally(() => cleanupBundles(bundles));
          io.out(`opsplane server listening on ${s.url} (API ${s.url}/api/v1, docs ${s.url}/docs)`);
          return s;
        },
        io,
        'opsplane server',
      );
    } catch (e) {
      io.err(`opsplane server: cannot start: ${(e as Error).message}`);
      return EXIT.failure;
    }
  },
});

/**
 * The agent this CLI ships, packed as a bundle in a temp dir for the server to take in (it copies
 * it into its bundle directory). Skipped, with a warning, when the agent bundle was not built.
 */
async function builtinBundle(logger: { warn(o: object, m: string): void }): Promise<string[]> {
  try {
    const { packAgentBundle } = await import('@opsplane/agent');
    const { mkdtemp } = await import('node:fs/promises');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const dir = await mkdtemp(join(tmpdir(), 'opsplane-bundle-'));
    return [(await packAgentBundle({ outDir: dir })).path];
  } catch (err) {
    logger.warn(
      { err },
      'the built-in agent bundle is not available (run npm run build); deployments need an uploaded one',
    );
    return [];
  }
}

async function cleanupBundles(paths: readonly string[]): Promise<void> {
  const { rm } = await import('node:fs/promises');
  const { dirname } = await import('node:path');
  for (const p of paths) await rm(dirname(p), { recursive: true, force: true });
}
