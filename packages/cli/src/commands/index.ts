/**
 * The subcommands. Each lives in its own file and is loaded only when invoked, so that e.g.
 * `opsplane agent` never loads the controller's dependencies. A new subcommand (server, login,
 * devices, agents, batch, demo, deploy) is one file plus one line here.
 */
import type { Command } from '../command.js';

export interface CommandEntry {
  name: string;
  summary: string;
  load: () => Promise<{ default: Command }>;
}

// Loaders return `Command` (the generic erased): each module's options type stays its own business.
const load = (p: Promise<{ default: unknown }>) => p as Promise<{ default: Command }>;

export const COMMANDS: readonly CommandEntry[] = [
  {
    name: 'controller',
    summary: 'run the controller of an area',
    load: () => load(import('./controller.js')),
  },
  {
    name: 'agent',
    summary: 'run the agent on this host',
    load: () => load(import('./agent.js')),
  },
];
