/**
 * Entry of the bundled agent (`agent.mjs` in `opsplane-agent-<version>/`, built from this file by
 * scripts/build-bundle.mjs): `node agent.mjs --config <file> [--log-level <level>]` runs the agent
 * until SIGTERM/SIGINT, `--version` prints the version. It does what `opsplane agent` does
 * without the CLI package, so a device needs nothing but Node.js and the bundle.
 * `--launch --root <root>` is the launcher (see launcher.ts) that hosts run: it runs
 * `<root>/current/agent.mjs` and rolls a failed self-upgrade back.
 * Exit codes: 0 clean stop, 1 failure, 2 usage, UPGRADE_EXIT_CODE (75) handed over to a new version.
 */
import { existsSync } from 'node:fs';
import { parseArgs } from 'node:util';
import type { RunningAgent } from './agent.js';
import type { AgentConfig } from './config.js';
import { UPGRADE_EXIT_CODE } from './distribution/upgrade-trial.js';
import { runLauncher } from './launcher.js';

const EXIT = { ok: 0, failure: 1, usage: 2 } as const;
const NAME = 'opsplane-agent';
const USAGE = `usage: node agent.mjs --config <file> [--log-level <level>]
       node agent.mjs --launch --root <dir> --config <file> [--log-level <level>]
       node agent.mjs --version

  -c, --config <file>      agent config file (required)
      --log-level <level>  trace, debug, info, warn, error, silent (default info)
      --launch             run <root>/current/agent.mjs and keep it running (self-upgrades)
      --root <dir>         the install root (versions/, current) for --launch
  -v, --version            print the agent version
  -h, --help               print this help`;

const err = (line: string) => process.stderr.write(`${line}\n`);

function usage(message: string): number {
  err(`${NAME}: ${message}`);
  err(USAGE);
  return EXIT.usage;
}

/**
 * Runs the agent until a signal. Handlers go in before start-up, so a signal while connecting
 * still stops cleanly; a second signal exits at once, so an operator is never stuck on a hung stop.
 */
async function runAgent(config: AgentConfig): Promise<number> {
  const { startAgent } = await import('./agent.js');
  const { createLogger } = await import('./log.js');
  let agent: RunningAgent | undefined;
  let signalled = false;
  let finish: (code: number) => void = () => undefined;
  const finished = new Promise<number>((resolve) => (finish = resolve));
  const stop = (a: RunningAgent) =>
    a.stop().then(
      () => finish(EXIT.ok),
      (e: Error) => {
        err(`${NAME}: shutdown failed: ${e.message}`);
        finish(EXIT.failure);
      },
    );
  const onSignal = (signal: NodeJS.Signals) => {
    if (signalled) {
      err(`${NAME}: ${signal} again; exiting without waiting`);
      process.exit(EXIT.failure);
    }
    signalled = true;
    err(`${NAME}: ${signal} received; shutting down`);
    if (agent) void stop(agent);
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  try {
    agent = await startAgent(config, {
      logger: createLogger('agent'),
      // Self-upgrade: `current` points at the new version; hand over to it through the launcher.
      onUpgradeExit: () => {
        if (signalled || !agent) return;
        signalled = true;
        void agent.stop({ stopPackages: false }).then(
          () => finish(UPGRADE_EXIT_CODE),
          () => finish(UPGRADE_EXIT_CODE),
        );
      },
    });
  } catch (e) {
    err(`${NAME}: cannot start: ${(e as Error).message}`);
    return EXIT.failure;
  }
  if (signalled) void stop(agent);
  return finished;
}

async function main(argv: string[]): Promise<number> {
  let values: {
    config?: string;
    'log-level'?: string;
    version?: boolean;
    help?: boolean;
    launch?: boolean;
    root?: string;
  };
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        config: { type: 'string', short: 'c' },
        'log-level': { type: 'string' },
        version: { type: 'boolean', short: 'v' },
        help: { type: 'boolean', short: 'h' },
        launch: { type: 'boolean' },
        root: { type: 'string' },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (e) {
    return usage((e as Error).message);
  }
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return EXIT.ok;
  }
  if (values.version) {
    const { AGENT_VERSION } = await import('./version.js');
    process.stdout.write(`${AGENT_VERSION}\n`);
    return EXIT.ok;
  }
  if (!values.config) return usage('--config <file> is required');
  if (!existsSync(values.config)) return usage(`config file '${values.config}' does not exist`);
  // Before the first logger exists: the root logger reads the level once.
  if (values['log-level']) process.env.OPSPLANE_LOG_LEVEL = values['log-level'];
  const { loadAgentConfig } = await import('./config.js');
  const { AgentConfigError } = await import('./errors.js');
  let config: AgentConfig;
  try {
    config = await loadAgentConfig(values.config);
  } catch (e) {
    if (e instanceof AgentConfigError) return usage(e.message);
    throw e;
  }
  if (values.launch) {
    if (!values.root) return usage('--launch needs --root <dir>');
    return runLauncher({
      root: values.root,
      config: values.config,
      dataDir: config.dataDir,
      ...(values['log-level'] ? { agentArgs: ['--log-level', values['log-level']] } : {}),
    });
  }
  return runAgent(config);
}

main(process.argv.slice(2)).then(
  // Exit explicitly: stray handles (sockets in teardown) must not keep a stopped agent alive.
  (code) => process.exit(code),
  (e: unknown) => {
    err(`${NAME}: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
    process.exit(EXIT.failure);
  },
);
