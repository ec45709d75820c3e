/**
 * `opsplane agent --config agent.yaml` — runs the agent on this host (see @opsplane/agent)
 * until SIGTERM/SIGINT.
 */
import { existsSync } from 'node:fs';
import type { AgentConfig } from '@opsplane/agent';
import { UsageError, defineCommand, EXIT } from '../command.js';
import { runDaemon } from '../daemon.js';

export default defineCommand({
  name: 'agent',
  summary: 'Run the agent: connects to a controller of its area and supervises the packages of this host.',
  options: {
    config: { type: 'string', short: 'c', value: '<file>', description: 'agent config file (required)' },
    'log-level': { type: 'string', value: '<level>', description: 'trace, debug, info, warn, error, silent' },
  },
  async run(v, io) {
    if (!v.config) throw new UsageError('--config <file> is required', 'agent');
    if (!existsSync(v.config)) throw new UsageError(`config file '${v.config}' does not exist`, 'agent');
    if (v['log-level']) process.env.OPSPLANE_LOG_LEVEL = v['log-level'];
    // Loaded here, not at the top: `--help` and usage errors should not pay for the agent's dependencies.
    const { AgentConfigError, loadAgentConfig, startAgent } = await import('@opsplane/agent');
    const { createLogger } = await import('@opsplane/kit');
    let config: AgentConfig;
    try {
      config = await loadAgentConfig(v.config);
    } catch (e) {
      if (e instanceof AgentConfigError) throw new UsageError(e.message, 'agent');
      throw e;
    }
    try {
      return await runDaemon(
        () => startAgent(config, { logger: createLogger('agent') }),
        io,
        'opsplane agent',
      );
    } catch (e) {
      io.err(`opsplane agent: cannot start: ${(e as Error).message}`);
      return EXIT.failure;
    }
  },
});
