/**
 * #/policies — the policies (desired state by area and label selector), highest priority first;
 * #/policies/<id> — one policy: its latest revision, the agents following it with their
 * convergence (applied / applying / failed / pending, config drift, the error), its revisions
 * and its rollouts. Operators edit it (a new revision), start a rollout or delete it.
 */
import type { Policy, PolicyAgent, PolicyRevision, PolicyRollout, PolicySpec } from '@opsplane/api';
import { api, errorMessage } from '../api.js';
import { ago, badge, defList, errorBox, h, put, type Tone } from '../dom.js';
import { confirmButton } from '../form.js';
import { pageHeader } from '../layout.js';
import { progressBar } from '../progress.js';
import { navigate, type PageContext } from '../router.js';
import { canOperate } from '../session.js';
import { linkRows, messageRow, renderHead, syncRows, type Column } from '../table.js';
import { policyHref } from './policy-form.js';
import { rolloutBadge, rolloutHref } from './policy-rollouts.js';

export const packagesText = (s: Pick<PolicySpec, 'packages'>): string =>
  s.packages.map((p) => `${p.name} ${p.version}`).join(', ') || '—';
const areasText = (s: Pick<PolicySpec, 'areas'>) => (s.areas.length ? s.areas.join(', ') : 'every area');

const STATE_TONE: Record<PolicyAgent['state'], Tone> = {
  applied: 'ok',
  applying: 'info',
  failed: 'bad',
  pending: 'muted',
};

const revisionCell = (p: Policy) =>
  p.applied_revision === p.revision
    ? String(p.revision)
    : h(
        'span',
        null,
        String(p.revision),
        h('span', { class: 'muted' }, ` (applied ${p.applied_revision ?? 'none'})`),
      );

const LIST_COLUMNS: Column<Policy>[] = [
  { label: 'Policy', cell: (p) => h('a', { href: policyHref(p.id) }, p.name) },
  { label: 'Priority', cell: (p) => p.priority },
  { label: 'Areas', cell: (p) => areasText(p) },
  { label: 'Selector', cell: (p) => (p.selector ? h('code', null, p.selector) : 'every agent') },
  { label: 'Packages', className: 'wrap', cell: (p) => packagesText(p) },
  { label: 'Agent', cell: (p) => p.agent_version ?? '—' },
  { label: 'Revision', cell: revisionCell },
  { label: 'Updated', cell: (p) => ago(p.updated_at) },
];

export function policiesPage(ctx: PageContext): void {
  const thead = h('thead');
  const tbody = h('tbody');
  const status = h('div', { class: 'list-status' });
  renderHead(thead, LIST_COLUMNS);
  messageRow(tbody, LIST_COLUMNS.length, 'Loading…');
  ctx.root.append(
    pageHeader('Policies', {
      actions: canOperate()
        ? [h('a', { class: 'btn btn-primary', id: 'new-policy', href: '#/policies/new' }, 'New policy')]
        : [],
    }),
    h(
      'p',
      { class: 'muted' },
      'A policy gives the agents it matches (by area and label selector) package versions, configs and an agent version. Each agent follows the highest-priority policy that matches it.',
    ),
    status,
    h('div', { class: 'table-wrap' }, h('table', { class: 'data', id: 'policies-table' }, thead, tbody)),
  );
  const openRow = linkRows((p: Policy) => policyHref(p.id));
  ctx.poll(async () => {
    try {
      const r = await api.call('GET /policies');
      put(status);
      syncRows(tbody, r.items, (p) => p.id, LIST_COLUMNS, {
        empty: 'No policies yet.',
        init: (tr, p) => {
          tr.dataset.name = p.name;
          openRow(tr, p);
        },
      });
    } catch (e) {
      put(status, errorBox(errorMessage(e)));
    }
  }, 10_000);
}

/** What an agent reports per package: `web 1.2.0 applied`, drift and rollback marked. */
function agentPackages(a: PolicyAgent): HTMLElement | string {
  const d = a.distribution;
  if (!d || (d.packages.length === 0 && !d.agent)) return '—';
  return h(
    'ul',
    { class: 'plain' },
    d.packages.map((p) =>
      h(
        'li',
        { data: { package: p.name } },
        `${p.name} ${p.version && p.version !== p.desired_version ? `${p.version} → ` : ''}${p.desired_version} `,
        badge(p.state, p.state === 'applying' ? 'info' : p.state === 'applied' ? 'ok' : undefined),
        p.rolled_back ? [' ', badge('rolled back', 'warn')] : null,
        p.drift ? [' ', badge('drift', 'warn')] : null,
      ),
    ),
    d.agent
      ? h(
          'li',
          { data: { package: 'agent' } },
          `agent ${d.agent.version !== d.agent.desired_version ? `${d.agent.version} → ` : ''}${d.agent.desired_version} `,
          badge(
            d.agent.state,
            d.agent.state === 'applying' ? 'info' : d.agent.state === 'applied' ? 'ok' : undefined,
          ),
          d.agent.rolled_back ? [' ', badge('rolled back', 'warn')] : null,
        )
      : null,
  );
}

function agentError(a: PolicyAgent): string {
  const d = a.distribution;
  const e = d?.packages.find((p) => p.error)?.error ?? d?.agent?.error;
  return e ? `${e.code}: ${e.message}` : '—';
}

const AGENT_COLUMNS: Column<PolicyAgent>[] = [
  {
    label: 'Agent',
    cell: (a) => h('a', { href: `#/agents/${encodeURIComponent(a.agent_code)}` }, a.agent_code),
  },
  { label: 'Area', cell: (a) => a.area },
  { label: 'Online', cell: (a) => badge(a.online ? 'online' : 'offline') },
  { label: 'State', cell: (a) => badge(a.state, STATE_TONE[a.state]) },
  {
    label: 'Target',
    cell: (a) =>
      a.target_revision === null
        ? '—'
        : a.rollout_id
          ? h('a', { href: rolloutHref(a.rollout_id) }, `r${a.target_revision} (rollout)`)
          : `r${a.target_revision}`,
  },
  {
    label: 'Reported',
    cell: (a) => (a.distribution ? `r${a.distribution.revision} ${a.distribution.state}` : '—'),
  },
  { label: 'Packages', className: 'wrap', cell: agentPackages },
  { label: 'Error', className: 'wrap', cell: agentError },
];

const REVISION_COLUMNS = (applied: () => number | null): Column<PolicyRevision>[] => [
  {
    label: 'Revision',
    cell: (r) => [String(r.revision), r.revision === applied() ? [' ', badge('applied', 'ok')] : null],
  },
  { label: 'Packages', className: 'wrap', cell: (r) => packagesText(r.spec) },
  { label: 'Agent', cell: (r) => r.spec.agent_version ?? '—' },
  { label: 'Areas', cell: (r) => areasText(r.spec) },
  { label: 'Selector', cell: (r) => (r.spec.selector ? h('code', null, r.spec.selector) : 'every agent') },
  { label: 'Drift', cell: (r) => (r.spec.correct_drift ? 'corrected' : 'reported') },
  { label: 'By', cell: (r) => r.created_by },
  { label: 'When', cell: (r) => ago(r.created_at) },
];

const ROLLOUT_COLUMNS: Column<PolicyRollout>[] = [
  { label: 'Rollout', cell: (r) => h('a', { href: rolloutHref(r.id) }, h('code', null, r.id.slice(0, 8))) },
  { label: 'Revision', cell: (r) => r.revision },
  { label: 'Status', cell: rolloutBadge },
  {
    label: 'Applied',
    cell: (r) =>
      progressBar(r.counts.applied, r.counts.total, `agents applied in rollout ${r.id.slice(0, 8)}`),
  },
  { label: 'Started', cell: (r) => ago(r.created_at) },
];

function table(id: string, head: HTMLTableSectionElement, body: HTMLTableSectionElement): HTMLElement {
  return h('div', { class: 'table-wrap' }, h('table', { class: 'data', id }, head, body));
}

export function policyPage(ctx: PageContext): void {
  const id = ctx.params[0] ?? '';
  const operator = canOperate();
  const title = h('span', null, 'Policy');
  const message = h('div', { 'aria-live': 'polite' });
  const info = h('div', { id: 'policy-info' }, h('p', { class: 'muted' }, 'Loading…'));
  const pkgBody = h('tbody');
  const pkgHead = h(
    'thead',
    null,
    h(
      'tr',
      null,
      ['Package', 'Version', 'Config files'].map((l) => h('th', { scope: 'col' }, l)),
    ),
  );
  const agentsHead = h('thead');
  const agentsBody = h('tbody');
  const agentsSummary = h('p', { class: 'muted', id: 'policy-agents-summary' });
  const revHead = h('thead');
  const revBody = h('tbody');
  const rollHead = h('thead');
  const rollBody = h('tbody');
  let policy: Policy | undefined;
  const revColumns = REVISION_COLUMNS(() => policy?.applied_revision ?? null);
  renderHead(agentsHead, AGENT_COLUMNS);
  renderHead(revHead, revColumns);
  renderHead(rollHead, ROLLOUT_COLUMNS);
  messageRow(agentsBody, AGENT_COLUMNS.length, 'Loading…');
  messageRow(revBody, revColumns.length, 'Loading…');
  messageRow(rollBody, ROLLOUT_COLUMNS.length, 'Loading…');
  const actions = operator
    ? [
        h(
          'a',
          { class: 'btn', id: 'policy-edit', href: `#/policies/${encodeURIComponent(id)}/edit` },
          'Edit',
        ),
        h(
          'a',
          {
            class: 'btn btn-primary',
            id: 'policy-rollout',
            href: `#/policy-rollouts/new?policy=${encodeURIComponent(id)}`,
          },
          'Start rollout',
        ),
        confirmButton(
          'Delete',
          'Confirm delete',
          () => {
            api
              .call('DELETE /policies/:id', { params: { id } })
              .then(() => navigate('#/policies'))
              .catch((e: unknown) => put(message, errorBox(errorMessage(e))));
          },
          { id: 'policy-delete', class: 'btn btn-danger' },
        ),
      ]
    : [];
  ctx.root.append(
    pageHeader(title, { crumbs: [['Policies', '#/policies']], actions }),
    message,
    h(
      'div',
      { class: 'panels' },
      h(
        'section',
        { class: 'panel', 'aria-labelledby': 'policy-info-title' },
        h('h2', { id: 'policy-info-title' }, 'Desired state'),
        info,
      ),
      h(
        'section',
        { class: 'panel', 'aria-labelledby': 'policy-packages-title' },
        h('h2', { id: 'policy-packages-title' }, 'Packages'),
        table('policy-packages-table', pkgHead, pkgBody),
      ),
    ),
    h(
      'section',
      { class: 'panel', 'aria-labelledby': 'policy-agents-title' },
      h('h2', { id: 'policy-agents-title' }, 'Agents'),
      agentsSummary,
      table('policy-agents', agentsHead, agentsBody),
    ),
    h(
      'section',
      { class: 'panel', 'aria-labelledby': 'policy-rollouts-title' },
      h('h2', { id: 'policy-rollouts-title' }, 'Rollouts'),
      table('policy-rollouts-table', rollHead, rollBody),
    ),
    h(
      'section',
      { class: 'panel', 'aria-labelledby': 'policy-revisions-title' },
      h('h2', { id: 'policy-revisions-title' }, 'Revisions'),
      table('policy-revisions', revHead, revBody),
    ),
  );

  ctx.poll(async () => {
    try {
      const [p, agents, revisions, rollouts] = await Promise.all([
        api.call('GET /policies/:id', { params: { id } }),
        api.call('GET /policies/:id/agents', { params: { id } }),
        api.call('GET /policies/:id/revisions', { params: { id } }),
        api.call('GET /policy-rollouts', { query: { policy_id: id, pageSize: 10 } }),
      ]);
      policy = p;
      put(title, `Policy ${p.name}`);
      put(
        info,
        defList([
          ['Description', p.description],
          ['Areas', areasText(p)],
          ['Selector', p.selector ? h('code', null, p.selector) : 'every agent'],
          ['Priority', String(p.priority)],
          ['Revision', revisionCell(p)],
          ['Agent version', p.agent_version ?? 'left as is'],
          ['Drift', p.correct_drift ? 'corrected' : 'reported only'],
          ['Health gate', `${p.health_timeout_ms / 1000} s`],
          ['Created', [`by ${p.created_by} `, ago(p.created_at)]],
          ['Updated', ago(p.updated_at)],
        ]),
      );
      pkgBody.replaceChildren(
        ...(p.packages.length
          ? p.packages.map((x) =>
              h(
                'tr',
                { data: { key: x.name } },
                h('td', null, x.name),
                h('td', null, x.version),
                h('td', null, x.configs.map((c) => c.file_name).join(', ') || '—'),
              ),
            )
          : [h('tr', { class: 'empty' }, h('td', { colspan: 3 }, 'No packages.'))]),
      );
      syncRows(agentsBody, agents.items, (a) => a.agent_code, AGENT_COLUMNS, {
        empty: 'No agent follows this policy (yet: a staged revision reaches agents through a rollout).',
        init: (tr, a) => (tr.dataset.agent = a.agent_code),
      });
      const by = new Map<string, number>();
      for (const a of agents.items) by.set(a.state, (by.get(a.state) ?? 0) + 1);
      const drift = agents.items.filter((a) => a.distribution?.packages.some((x) => x.drift)).length;
      put(
        agentsSummary,
        `${agents.total} agent(s)` +
          (by.size ? ` · ${[...by].map(([k, n]) => `${n} ${k}`).join(' · ')}` : '') +
          (drift ? ` · ${drift} with config drift` : ''),
      );
      syncRows(revBody, revisions.revisions, (r) => String(r.revision), revColumns);
      syncRows(rollBody, rollouts.items, (r) => r.id, ROLLOUT_COLUMNS, { empty: 'Never rolled out.' });
    } catch (e) {
      put(message, errorBox(errorMessage(e)));
    }
  });
}
