/**
 * `opsplane deploy [install|upgrade|uninstall|restart]` — starts a rollout of the agent on
 * devices (named, a whole area, or every device never deployed) and, unless --detach, watches it
 * to the end with a progress bar per device. Owns the command-line → DeploymentCreate mapping
 * and its checks (usage errors, exit 2); the watching itself is shared with `opsplane
 * deployments watch` (deployments.ts). Exits 0 when every deployment succeeded, 1 otherwise.
 */
import {
  AgentVersionSchema,
  DEPLOYMENT_TYPES,
  type DeploymentCreateInput,
  type DeploymentType,
} from '@opsplane/api';
import { EXIT, UsageError, defineCommand } from '../command.js';
import { connect, listFlag } from '../client/api.js';
import { json } from '../client/format.js';
import { jsonOption, serverOption } from '../client/common-options.js';
import { followRollout } from './deployments.js';
import { checkSelector } from './agents.js';

/** The flags `deploymentRequest` reads (a subset of the command's parsed values). */
export interface DeployFlags {
  devices?: string[] | undefined;
  area?: string | undefined;
  selector?: string | undefined;
  'all-new'?: boolean | undefined;
  version?: string | undefined;
  'batch-size'?: string | undefined;
  'max-failures'?: string | undefined;
  'accept-host-key'?: boolean | undefined;
}

function intFlag(value: string | undefined, flag: string, min: number, max: number): number | undefined {
  if (value === undefined) return undefined;
  const n = /^\d+$/.test(value.trim()) ? Number(value.trim()) : NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max)
    throw new UsageError(`--${flag} must be a whole number from ${min} to ${max} (got '${value}')`, 'deploy');
  return n;
}

/**
 * The request body for `opsplane deploy <positionals> <flags>`; UsageError when the command
 * line is wrong (unknown action, not exactly one of --devices/--area/--all-new, bad numbers…).
 */
export function deploymentRequest(positionals: readonly string[], f: DeployFlags): DeploymentCreateInput {
  const [action = 'install', ...extra] = positionals;
  if (!(DEPLOYMENT_TYPES as readonly string[]).includes(action))
    throw new UsageError(`unknown action '${action}' (${DEPLOYMENT_TYPES.join(', ')})`, 'deploy');
  if (extra.length) throw new UsageError(`unexpected argument '${extra[0]}'`, 'deploy');
  const type = action as DeploymentType;

  const devices = f.devices !== undefined ? listFlag(f.devices) : undefined;
  if (devices !== undefined && devices.length === 0)
    throw new UsageError('--devices needs at least one device name or id', 'deploy');
  if (f.area !== undefined && f.area.trim() === '') throw new UsageError('--area needs an area', 'deploy');
  if (f.selector !== undefined) checkSelector(f.selector, 'deploy');
  const targets = [
    devices !== undefined,
    f.area !== undefined || f.selector !== undefined,
    f['all-new'] === true,
  ].filter(Boolean).length;
  if (targets !== 1)
    throw new UsageError(
      targets === 0
        ? 'say which devices: --devices a,b, --area <area> and/or --selector <labels>, or --all-new'
        : 'give only one of --devices, --area and --all-new',
      'deploy',
    );

  if (f.version !== undefined) {
    if (type !== 'install' && type !== 'upgrade')
      throw new UsageError(`--version goes with install or upgrade, not ${type}`, 'deploy');
    if (!AgentVersionSchema.safeParse(f.version).success)
      throw new UsageError(`--version must look like 1.2.3 or 1.2.3-rc.1 (got '${f.version}')`, 'deploy');
  }
  const batchSize = intFlag(f['batch-size'], 'batch-size', 1, 1000);
  const maxFailures = intFlag(f['max-failures'], 'max-failures', 0, 10_000);

  return {
    type,
    ...(devices !== undefined ? { devices } : {}),
    ...(f.area !== undefined ? { area: f.area.trim() } : {}),
    ...(f.selector !== undefined ? { selector: f.selector } : {}),
    ...(f['all-new'] ? { all_new: true } : {}),
    ...(f.version !== undefined ? { version: f.version } : {}),
    ...(batchSize !== undefined ? { batch_size: batchSize } : {}),
    ...(maxFailures !== undefined ? { max_failures: maxFailures } : {}),
    ...(f['accept-host-key'] ? { accept_changed_host_key: true } : {}),
  };
}

export default defineCommand({
  name: 'deploy',
  summary: 'Install, upgrade, uninstall or restart the agent on devices (over SSH) and watch the rollout.',
  positionals: '[install|upgrade|uninstall|restart]',
  options: {
    server: serverOption,
    devices: {
      type: 'string',
      short: 'd',
      multiple: true,
      value: '<a,b,…>',
      description: 'these devices (names or ids)',
    },
    area: { type: 'string', value: '<area>', description: 'every device of this area' },
    selector: {
      type: 'string',
      short: 'l',
      value: '<selector>',
      description:
        "devices whose metadata matches, e.g. 'role=web,env in (prod)' (with --area: of that area)",
    },
    'all-new': { type: 'boolean', description: 'every device never deployed (status new)' },
    version: {
      type: 'string',
      value: '<x.y.z>',
      description: 'install/upgrade: agent version (default: the default bundle)',
    },
    'batch-size': {
      type: 'string',
      value: '<n>',
      description: "at most n devices at once (default: the server's max workers)",
    },
    'max-failures': {
      type: 'string',
      value: '<n>',
      description: 'stop the rollout (cancel the rest) after n failures; 0 = never (default)',
    },
    'accept-host-key': {
      type: 'boolean',
      description: "accept (and record) a device's changed SSH host key",
    },
    detach: { type: 'boolean', description: 'start the rollout and return without watching it' },
    json: { ...jsonOption, description: 'print the rollout as JSON (at the end; no progress bars)' },
  },
  details: [
    'The action defaults to install. Give exactly one of --devices, --area (and/or --selector) and --all-new.',
    'Exit code 0 when every deployment succeeded, 1 when any failed or was cancelled.',
    'Ctrl-C stops watching only (exit code 130); the rollout keeps running (resume with',
    "'opsplane deployments watch <rollout-id>', stop it with 'opsplane deployments cancel <rollout-id>').",
    '',
    'Examples:',
    '  opsplane deploy --devices web-01,web-02',
    '  opsplane deploy upgrade --area area-1 --version 1.4.0 --batch-size 5 --max-failures 2',
    '  opsplane deploy --all-new --detach',
    "  opsplane deploy upgrade --selector 'role=web' --batch-size 2",
    '  opsplane deploy restart --devices web-03',
  ].join('\n'),
  async run(v, io) {
    const body = deploymentRequest(v._, v);
    const api = await connect(v.server);
    const rollout = await api.call('POST /deployments', { body });
    const c = rollout.counts;
    if (v.detach) {
      if (v.json) io.out(json(rollout));
      else {
        io.out(`rollout ${rollout.id} started: ${rollout.type} on ${c.total} device(s)`);
        io.out(`  watch it:  opsplane deployments watch ${rollout.id}`);
        io.out(`  cancel it: opsplane deployments cancel ${rollout.id}`);
      }
      return EXIT.ok;
    }
    if (!v.json)
      io.out(
        `rollout ${rollout.id}: ${rollout.type}${rollout.version ? ` ${rollout.version}` : ''} on ${c.total} device(s), ` +
          `${rollout.batch_size} at a time${rollout.max_failures ? `, stops after ${rollout.max_failures} failure(s)` : ''}` +
          ' (Ctrl-C stops watching, not the rollout)',
      );
    return followRollout(api, rollout, v.json === true, io);
  },
});
