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
  {
    name: 'server',
    summary: 'run the platform server (API, discovery, aggregated agents, batches)',
    load: () => load(import('./server.js')),
  },
  {
    name: 'login',
    summary: 'log in to a platform server and store the credential',
    load: () => load(import('./login.js')),
  },
  {
    name: 'devices',
    summary: 'list, show, create, update, delete devices, or import them from CSV/JSON',
    load: () => load(import('./devices.js')),
  },
  {
    name: 'agents',
    summary: 'list the agents of every area (filters, label selectors), show one, its metrics',
    load: () => load(import('./agents.js')),
  },
  {
    name: 'batch',
    summary: 'start/stop/restart packages or push configs across areas',
    load: () => load(import('./batch.js')),
  },
  {
    name: 'deploy',
    summary: 'install/upgrade/uninstall/restart the agent on devices over SSH, with progress',
    load: () => load(import('./deploy.js')),
  },
  {
    name: 'deployments',
    summary: 'list, show, watch, cancel or retry deployments; list or upload agent bundles',
    load: () => load(import('./deployments.js')),
  },
  {
    name: 'artifacts',
    summary: 'upload, list, show or delete signed packages and agent bundles; the key to pin',
    load: () => load(import('./artifacts.js')),
  },
  {
    name: 'policies',
    summary: 'desired state by area and label selector: packages, configs, agent version; revisions',
    load: () => load(import('./policies.js')),
  },
  {
    name: 'rollouts',
    summary: 'roll a policy revision out in waves, with a live progress bar; pause, resume, cancel',
    load: () => load(import('./rollouts.js')),
  },
  {
    name: 'controllers',
    summary: 'list the controllers of every area, or their history',
    load: () => load(import('./controllers.js')),
  },
  {
    name: 'ca',
    summary: 'create the built-in certificate authority, or issue a certificate from it',
    load: () => load(import('./ca.js')),
  },
  {
    name: 'users',
    summary: 'manage users, their roles and roles per area (admins)',
    load: () => load(import('./users.js')),
  },
  {
    name: 'tokens',
    summary: 'list, create (expiry, role, area scope) or revoke API tokens',
    load: () => load(import('./tokens.js')),
  },
  {
    name: 'alerts',
    summary: 'list and acknowledge alerts; silence them by rule, area or agent',
    load: () => load(import('./alerts.js')),
  },
  {
    name: 'audit',
    summary: 'show the audit log: who changed what (before → after), when, from where',
    load: () => load(import('./audit.js')),
  },
  {
    name: 'demo',
    summary: 'run the whole system on this machine (etcd, server, controllers, agents)',
    load: () => load(import('./demo.js')),
  },
];
