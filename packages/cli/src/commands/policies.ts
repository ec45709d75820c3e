/**
 * `opsplane policies list|show|create|update|delete|revisions|agents` — desired state by area and
 * label selector: which package versions (with configs) and agent version the matching agents
 * run. Every create or change is a new revision, applied at once unless `--staged` (then rolled
 * out with `opsplane rollouts start`). `agents` shows each following agent's convergence:
 * applied / applying / failed, drift, errors.
 */
import type { Policy, PolicyAgent, PolicySpec } from '@opsplane/api';
import { EXIT, UsageError, defineCommand, type CliIO, actionOf } from '../command.js';
import { connect } from '../client/api.js';
import { outputOption, serverOption, wantsJson } from '../client/common-options.js';
import { resolvePolicy, withHints } from '../client/distribution.js';
import { ago, json, table } from '../client/format.js';
import { policyCreateBody, policyUpdateBody } from '../client/policy-spec.js';
import { sanitize } from '../client/progress.js';
import { checkSelector } from './agents.js';

const ACTIONS = ['list', 'show', 'create', 'update', 'delete', 'revisions', 'agents'] as const;
const SPEC_FLAGS = [
  'file',
  'description',
  'area',
  'all-areas',
  'selector',
  'priority',
  'package',
  'remove-package',
  'config',
  'agent-version',
  'correct-drift',
  'no-correct-drift',
  'health-timeout',
  'staged',
] as const;

export const packagesText = (s: Pick<PolicySpec, 'packages'>): string =>
  s.packages
    .map((p) => `${p.name} ${p.version}${p.configs.length ? ` (+${p.configs.length} config)` : ''}`)
    .join(', ') || '-';
const areasText = (s: Pick<PolicySpec, 'areas'>) => (s.areas.length ? s.areas.join(',') : 'all');
const revisionText = (p: Policy) =>
  p.applied_revision === p.revision
    ? `${p.revision}`
    : `${p.revision} (applied: ${p.applied_revision ?? 'none'})`;

function printPolicy(p: Policy, io: CliIO): void {
  io.out(`policy ${p.name} (${p.id})`);
  for (const [k, val] of [
    ['description', p.description || '-'],
    ['areas', areasText(p)],
    ['selector', p.selector || '(every agent)'],
    ['priority', String(p.priority)],
    ['revision', revisionText(p)],
    ['agent', p.agent_version ?? '(left as is)'],
    ['drift', p.correct_drift ? 'corrected' : 'reported only'],
    ['health gate', `${p.health_timeout_ms / 1000}s`],
    ['created', `${p.created_at} by ${p.created_by}`],
    ['updated', `${p.updated_at} (${ago(p.updated_at)})`],
  ] as const)
    io.out(`  ${`${k}:`.padEnd(13)}${sanitize(val)}`);
  io.out('');
  for (const l of table(
    ['PACKAGE', 'VERSION', 'CONFIGS'],
    p.packages.map((x) => [x.name, x.version, x.configs.map((c) => c.file_name).join(', ') || '-']),
  ))
    io.out(`  ${sanitize(l)}`);
}

/** What an agent reports for a package: `web 1.2.0 applied`, `web 1.1.0→1.2.0 failed (code)`. */
function agentPackages(a: PolicyAgent): string {
  const d = a.distribution;
  if (!d) return '-';
  const parts = d.packages.map((p) => {
    const ver =
      p.version === p.desired_version || !p.version ? p.desired_version : `${p.version}→${p.desired_version}`;
    return `${p.name} ${ver} ${p.state}${p.rolled_back ? ' (rolled back)' : ''}${p.drift ? ' DRIFT' : ''}`;
  });
  if (d.agent)
    parts.push(
      `agent ${d.agent.version === d.agent.desired_version ? d.agent.version : `${d.agent.version}→${d.agent.desired_version}`} ${d.agent.state}`,
    );
  return parts.join('; ') || '-';
}

function agentError(a: PolicyAgent): string {
  const d = a.distribution;
  const e = d?.packages.find((p) => p.error)?.error ?? d?.agent?.error;
  return e ? `${e.message} [${e.code}]` : '';
}

export default defineCommand({
  name: 'policies',
  summary: 'Desired state by area and label selector: list, show, create, update, delete; revisions; agents.',
  positionals: '<list|show|create|update|delete|revisions|agents> [name|id]',
  options: {
    server: serverOption,
    file: {
      type: 'string',
      short: 'f',
      value: '<policy.yaml>',
      description: 'create/update: the policy from a YAML or JSON file (flags override it)',
    },
    description: { type: 'string', value: '<text>', description: 'create/update: what it is for' },
    area: {
      type: 'string',
      multiple: true,
      value: '<a,b,…>',
      description: 'create/update: the areas it applies to (default: every area)',
    },
    'all-areas': { type: 'boolean', description: 'update: apply to every area again' },
    selector: {
      type: 'string',
      short: 'l',
      value: '<selector>',
      description: "create/update: label selector on agent labels, e.g. 'env=prod,role=web' ('' = all)",
    },
    priority: {
      type: 'string',
      value: '<n>',
      description: 'create/update: an agent follows the highest-priority matching policy',
    },
    package: {
      type: 'string',
      multiple: true,
      value: '<name=version>',
      description: 'create/update: a package and its version (repeatable; update: sets or adds it)',
    },
    'remove-package': {
      type: 'string',
      multiple: true,
      value: '<name>',
      description: 'update: drop a package',
    },
    config: {
      type: 'string',
      multiple: true,
      value: '<pkg=path[:name]>',
      description: "create/update: a config file of a package (repeatable; replaces that package's configs)",
    },
    'agent-version': {
      type: 'string',
      value: '<version|none>',
      description: "create/update: the agent version to run (self-upgrade); 'none' leaves it",
    },
    'correct-drift': { type: 'boolean', description: 'create/update: rewrite config files that drifted' },
    'no-correct-drift': { type: 'boolean', description: 'update: only report drift' },
    'health-timeout': {
      type: 'string',
      value: '<duration>',
      description: 'create/update: how long a new version has to become healthy (default 60s)',
    },
    staged: {
      type: 'boolean',
      description: "create/update: do not apply now; roll it out with 'opsplane rollouts start'",
    },
    output: outputOption,
    json: { type: 'boolean', description: 'same as --output json' },
  },
  details: [
    'A policy file (YAML or JSON) has the API fields; packages as a list or a map, configs inline',
    'or read from files next to it:',
    '',
    '  name: web-prod',
    '  areas: [area-1, area-2]',
    '  selector: env=prod,role=web',
    '  packages:',
    '    - name: web',
    '      version: 1.2.0',
    '      configs: [{ file: ./web.yaml, name: app.yaml }]',
    '  agent_version: 1.5.0',
    '  correct_drift: true',
    '  health_timeout: 90s',
    '',
    'Examples:',
    "  opsplane policies create web-prod -l 'env=prod,role=web' --package web=1.2.0 --config web=./app.yaml",
    '  opsplane policies create -f web-prod.yaml',
    '  opsplane policies update web-prod --package web=1.3.0 --staged',
    '  opsplane rollouts start web-prod --batch-percent 10 --pause 30s --max-failures 2',
    '  opsplane policies agents web-prod',
    '  opsplane policies revisions web-prod',
  ].join('\n'),
  async run(v, io) {
    const [action, arg, ...extra] = v._;
    actionOf(ACTIONS, action, 'policies');
    if (extra.length) throw new UsageError(`unexpected argument '${extra[0]}'`, 'policies');
    const asJson = wantsJson(v, 'policies');
    if (action !== 'create' && action !== 'update') {
      const given = SPEC_FLAGS.find((k) => v[k] !== undefined);
      if (given) throw new UsageError(`--${given} goes with create or update`, 'policies');
    }
    checkSelector(v.selector || undefined, 'policies');

    if (action === 'list') {
      if (arg) throw new UsageError(`unexpected argument '${arg}'`, 'policies');
      const api = await connect(v.server);
      const r = await api.call('GET /policies');
      if (asJson) {
        io.out(json(r));
        return EXIT.ok;
      }
      for (const l of table(
        ['NAME', 'PRIORITY', 'AREAS', 'SELECTOR', 'PACKAGES', 'AGENT', 'REVISION', 'UPDATED'],
        r.items.map((p) => [
          p.name,
          String(p.priority),
          areasText(p),
          p.selector || '-',
          packagesText(p),
          p.agent_version ?? '-',
          revisionText(p),
          ago(p.updated_at),
        ]),
      ))
        io.out(sanitize(l));
      io.out(`${r.total} polic${r.total === 1 ? 'y' : 'ies'}`);
      return EXIT.ok;
    }

    if (action === 'create') {
      const body = await policyCreateBody(arg, v);
      const api = await connect(v.server);
      const p = await withHints(() => api.call('POST /policies', { body }));
      if (asJson) io.out(json(p));
      else {
        io.out(
          `created policy ${p.name} (revision ${p.revision}): ${packagesText(p)}; areas ${areasText(p)}; ` +
            `selector ${p.selector || '(every agent)'}${p.agent_version ? `; agent ${p.agent_version}` : ''}`,
        );
        io.out(
          p.applied_revision === p.revision
            ? '  applied at once: matching agents converge on it (see: opsplane policies agents ' +
                p.name +
                ')'
            : `  staged: roll it out with 'opsplane rollouts start ${p.name}'`,
        );
      }
      return EXIT.ok;
    }

    if (!arg) throw new UsageError(`${action} needs a policy name or id`, 'policies');
    const api = await connect(v.server);
    const policy = await resolvePolicy(api, arg);

    if (action === 'show') {
      if (asJson) io.out(json(policy));
      else printPolicy(policy, io);
      return EXIT.ok;
    }

    if (action === 'update') {
      const body = await policyUpdateBody(policy.packages, v);
      const p = await withHints(() => api.call('PATCH /policies/:id', { params: { id: policy.id }, body }));
      if (asJson) io.out(json(p));
      else if (p.revision === policy.revision)
        io.out(`policy ${p.name}: nothing changed (revision ${p.revision})`);
      else {
        io.out(`updated policy ${p.name}: revision ${p.revision}: ${packagesText(p)}`);
        io.out(
          p.applied_revision === p.revision
            ? '  applied at once: matching agents converge on it'
            : `  staged (agents stay on revision ${p.applied_revision ?? 'none'}): roll it out with 'opsplane rollouts start ${p.name}'`,
        );
      }
      return EXIT.ok;
    }

    if (action === 'delete') {
      await withHints(() => api.call('DELETE /policies/:id', { params: { id: policy.id } }));
      if (asJson) io.out(json({ deleted: policy.id }));
      else io.out(`deleted policy ${policy.name} (agents keep running what they run)`);
      return EXIT.ok;
    }

    if (action === 'revisions') {
      const r = await api.call('GET /policies/:id/revisions', { params: { id: policy.id } });
      if (asJson) {
        io.out(json(r));
        return EXIT.ok;
      }
      for (const l of table(
        ['REV', 'APPLIED', 'PACKAGES', 'AGENT', 'AREAS', 'SELECTOR', 'BY', 'AT'],
        r.revisions.map((x) => [
          String(x.revision),
          x.revision === policy.applied_revision ? 'yes' : '',
          packagesText(x.spec),
          x.spec.agent_version ?? '-',
          areasText(x.spec),
          x.spec.selector || '-',
          x.created_by,
          ago(x.created_at),
        ]),
      ))
        io.out(sanitize(l));
      io.out(`${r.revisions.length} revision(s) of ${policy.name}`);
      return EXIT.ok;
    }

    // agents
    const r = await api.call('GET /policies/:id/agents', { params: { id: policy.id } });
    if (asJson) {
      io.out(json(r));
      return EXIT.ok;
    }
    for (const l of table(
      ['AGENT', 'AREA', 'ONLINE', 'STATE', 'TARGET', 'REPORTED', 'PACKAGES', 'ERROR'],
      r.items.map((a) => [
        a.agent_code,
        a.area,
        a.online ? 'yes' : 'no',
        a.state,
        a.target_revision === null ? '-' : `r${a.target_revision}${a.rollout_id ? ' (rollout)' : ''}`,
        a.distribution ? `r${a.distribution.revision} ${a.distribution.state}` : '-',
        agentPackages(a),
        agentError(a),
      ]),
    ))
      io.out(sanitize(l));
    const by = new Map<string, number>();
    for (const a of r.items) by.set(a.state, (by.get(a.state) ?? 0) + 1);
    const drift = r.items.filter((a) => a.distribution?.packages.some((p) => p.drift)).length;
    io.out(
      `${r.total} agent(s)${by.size ? `: ${[...by].map(([k, n]) => `${n} ${k}`).join(', ')}` : ''}` +
        (drift ? `; ${drift} with config drift` : ''),
    );
    return EXIT.ok;
  },
});
