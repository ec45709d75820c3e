/**
 * #/policy-rollouts — staged rollouts of policy revisions (newest first, status filter);
 * #/policy-rollouts/new — start one (operators): the policy and revision, waves by batch size or
 * percentage, the pause between waves, the failures that halt it (and roll back), the wave
 * timeout; #/policy-rollouts/<id> — one rollout live from its event stream: overall progress, a
 * bar per wave, each agent's result as it arrives, and pause / resume / cancel.
 * (#/rollouts/<id> is the agent deployment over SSH.)
 */
import type { Policy, PolicyRollout, RolloutAgent, RolloutWave } from '@opsplane/api';
import { api, errorMessage } from '../api.js';
import { ago, badge, defList, errorBox, field, h, put, type Tone } from '../dom.js';
import { filterSelect } from '../filters.js';
import { busy, labelled } from '../form.js';
import { pageHeader } from '../layout.js';
import { progressBar } from '../progress.js';
import { navigate, type PageContext } from '../router.js';
import { canOperate } from '../session.js';
import { type Column, linkRows, messageRow, renderHead, renderPager, syncRows } from '../table.js';

export const rolloutHref = (id: string): string => `#/policy-rollouts/${encodeURIComponent(id)}`;

const STATUSES = [
  'running',
  'paused',
  'succeeded',
  'halted',
  'cancelled',
] as const satisfies readonly PolicyRollout['status'][];
const STATUS_TONE: Record<PolicyRollout['status'], Tone> = {
  running: 'info',
  paused: 'warn',
  succeeded: 'ok',
  halted: 'bad',
  cancelled: 'muted',
};
const AGENT_TONE: Record<RolloutAgent['status'], Tone> = {
  pending: 'muted',
  applying: 'info',
  applied: 'ok',
  failed: 'bad',
  rolled_back: 'warn',
  skipped: 'muted',
};
const WAVE_TONE: Record<RolloutWave['status'], Tone> = {
  pending: 'muted',
  running: 'info',
  done: 'ok',
  failed: 'bad',
};
const FINISHED = new Set<RolloutAgent['status']>(['applied', 'failed', 'rolled_back', 'skipped']);
const isActive = (r: Pick<PolicyRollout, 'status'>) => r.status === 'running' || r.status === 'paused';

export const rolloutBadge = (r: Pick<PolicyRollout, 'status'>): HTMLElement =>
  badge(r.status, STATUS_TONE[r.status]);
const finishedCount = (c: PolicyRollout['counts']) => c.applied + c.failed + c.rolled_back + c.skipped;
const fmtMs = (ms: number) => (ms >= 60_000 && ms % 60_000 === 0 ? `${ms / 60_000} min` : `${ms / 1000} s`);

const LIST_COLUMNS: Column<PolicyRollout>[] = [
  { label: 'Rollout', cell: (r) => h('a', { href: rolloutHref(r.id) }, h('code', null, r.id.slice(0, 8))) },
  {
    label: 'Policy',
    cell: (r) => h('a', { href: `#/policies/${encodeURIComponent(r.policy_id)}` }, r.policy_name),
  },
  { label: 'Revision', cell: (r) => r.revision },
  { label: 'Status', cell: rolloutBadge },
  { label: 'Wave', cell: (r) => `${r.current_wave}/${r.waves.length}` },
  {
    label: 'Progress',
    cell: (r) =>
      progressBar(finishedCount(r.counts), r.counts.total, `agents finished in rollout ${r.id.slice(0, 8)}`),
  },
  { label: 'Applied', cell: (r) => r.counts.applied },
  { label: 'Failed', cell: (r) => r.counts.failed + r.counts.rolled_back },
  { label: 'By', cell: (r) => r.created_by },
  { label: 'Started', cell: (r) => ago(r.created_at) },
];

export function policyRolloutsPage(ctx: PageContext): void {
  const s = {
    status: ctx.query.get('status') ?? '',
    page: Math.max(1, Number(ctx.query.get('page')) || 1),
    pageSize: 20,
  };
  const thead = h('thead');
  const tbody = h('tbody');
  const pager = h('div', { class: 'pager' });
  const status = h('div', { class: 'list-status' });
  renderHead(thead, LIST_COLUMNS);
  messageRow(tbody, LIST_COLUMNS.length, 'Loading…');
  const changed = () => {
    const q = new URLSearchParams();
    if (s.status) q.set('status', s.status);
    if (s.page > 1) q.set('page', String(s.page));
    ctx.setQuery(q);
    void poller.refresh();
  };
  ctx.root.append(
    pageHeader('Rollouts', {
      actions: canOperate()
        ? [
            h(
              'a',
              { class: 'btn btn-primary', id: 'new-rollout', href: '#/policy-rollouts/new' },
              'Start rollout',
            ),
          ]
        : [],
    }),
    h(
      'div',
      { class: 'toolbar' },
      field(
        'Status',
        filterSelect(
          'rollout-filter-status',
          'Any status',
          STATUSES,
          s.status,
          (v) => ((s.status = v), (s.page = 1), changed()),
        ),
      ),
    ),
    status,
    h(
      'div',
      { class: 'table-wrap' },
      h('table', { class: 'data', id: 'policy-rollouts-list' }, thead, tbody),
    ),
    h('div', { class: 'table-foot' }, pager),
  );
  const poller = ctx.poll(async () => {
    try {
      const r = await api.call('GET /policy-rollouts', {
        query: {
          status: (STATUSES as readonly string[]).includes(s.status)
            ? (s.status as PolicyRollout['status'])
            : undefined,
          page: s.page,
          pageSize: s.pageSize,
        },
      });
      put(status);
      syncRows(tbody, r.items, (x) => x.id, LIST_COLUMNS, {
        empty: 'No rollouts yet.',
        init: linkRows((x) => rolloutHref(x.id)),
      });
      renderPager(pager, { page: s.page, pageSize: s.pageSize, total: r.total }, (page) => {
        s.page = page;
        changed();
      });
    } catch (e) {
      put(status, errorBox(errorMessage(e)));
    }
  });
}

export function policyRolloutNewPage(ctx: PageContext): void {
  const body = h('div', null, h('p', { class: 'muted' }, 'Loading…'));
  ctx.root.append(pageHeader('Start a rollout', { crumbs: [['Rollouts', '#/policy-rollouts']] }), body);
  void api
    .call('GET /policies')
    .then((r) => {
      if (ctx.active) put(body, rolloutForm(r.items, ctx.query.get('policy') ?? ''));
    })
    .catch((e: unknown) => put(body, errorBox(errorMessage(e))));
}

function rolloutForm(policies: readonly Policy[], chosen: string): HTMLElement {
  const num = (id: string, value: string, attrs: Record<string, number>) =>
    h('input', { type: 'number', id, ...attrs, props: { value } });
  const policy = h(
    'select',
    { id: 'rollout-policy', required: true },
    h('option', { value: '' }, policies.length ? 'choose a policy' : 'no policies yet'),
    policies.map((p) =>
      h(
        'option',
        { value: p.id, props: { selected: p.id === chosen || p.name === chosen } },
        `${p.name} (revision ${p.revision})`,
      ),
    ),
  );
  const revision = num('rollout-revision', '', { min: 1 });
  const mode = h(
    'select',
    { id: 'rollout-mode' },
    h('option', { value: 'size' }, 'agents per wave'),
    h('option', { value: 'percent' }, 'percent of the agents per wave'),
  );
  const size = num('rollout-batch', '1', { min: 1, max: 100_000 });
  const pause = num('rollout-pause', '0', { min: 0, max: 86_400 });
  const maxFailures = num('rollout-max-failures', '0', { min: 0 });
  const waveTimeout = num('rollout-wave-timeout', '300', { min: 1, max: 86_400 });
  const about = h('p', { class: 'muted', id: 'rollout-policy-about' });
  const showPolicy = () => {
    const p = policies.find((x) => x.id === policy.value);
    revision.placeholder = p ? `latest (${p.revision})` : 'latest';
    put(
      about,
      p
        ? `${p.name}: revision ${p.revision}${p.applied_revision === p.revision ? ' (already applied)' : `, agents run ${p.applied_revision ?? 'nothing of it yet'}`}; ${p.packages.map((x) => `${x.name} ${x.version}`).join(', ') || 'no packages'}`
        : '',
    );
  };
  policy.addEventListener('change', showPolicy);
  showPolicy();
  const message = h('div', { 'aria-live': 'polite' });
  const go = h('button', { type: 'submit', class: 'btn btn-primary', id: 'rollout-start' }, 'Start rollout');
  const submit = (ev: SubmitEvent) => {
    ev.preventDefault();
    if (!policy.value) {
      put(message, errorBox('Choose a policy.'));
      return;
    }
    const n = Number(size.value);
    void busy(go, async () => {
      try {
        const r = await api.call('POST /policy-rollouts', {
          body: {
            policy_id: policy.value,
            ...(revision.value ? { revision: Number(revision.value) } : {}),
            ...(mode.value === 'percent' ? { batch_percent: n } : { batch_size: n }),
            pause_ms: Math.round(Number(pause.value || 0) * 1000),
            max_failures: Number(maxFailures.value || 0),
            wave_timeout_ms: Math.round(Number(waveTimeout.value || 300) * 1000),
          },
        });
        navigate(rolloutHref(r.id));
      } catch (e) {
        put(message, errorBox(errorMessage(e)));
      }
    });
  };
  return h(
    'section',
    { class: 'panel panel-form', id: 'rollout-form', 'aria-labelledby': 'rollout-form-title' },
    h('h2', { id: 'rollout-form-title' }, 'Waves'),
    h(
      'form',
      { class: 'form-grid', 'aria-labelledby': 'rollout-form-title', on: { submit } },
      labelled('Policy', policy),
      labelled('Revision', revision, 'empty = the latest'),
      about,
      labelled('Wave size as', mode),
      labelled('Wave size', size),
      labelled('Pause between waves (s)', pause),
      labelled(
        'Max failures',
        maxFailures,
        'more failures halt the rollout and roll every touched agent back',
      ),
      labelled('Wave timeout (s)', waveTimeout, 'an agent silent this long in its wave counts as failed'),
      h('div', { class: 'form-actions' }, go, h('a', { class: 'btn', href: '#/policy-rollouts' }, 'Cancel')),
      message,
    ),
  );
}

const AGENT_COLUMNS: Column<RolloutAgent>[] = [
  {
    label: 'Agent',
    cell: (a) => h('a', { href: `#/agents/${encodeURIComponent(a.agent_code)}` }, a.agent_code),
  },
  { label: 'Area', cell: (a) => a.area },
  { label: 'Wave', cell: (a) => a.wave },
  { label: 'Result', cell: (a) => badge(a.status.replace('_', ' '), AGENT_TONE[a.status]) },
  { label: 'Rolls back to', cell: (a) => (a.previous_revision === null ? '—' : `r${a.previous_revision}`) },
  { label: 'Error', className: 'wrap', cell: (a) => (a.error ? `${a.error.code}: ${a.error.message}` : '—') },
  { label: 'Started', cell: (a) => ago(a.started_at) },
  { label: 'Finished', cell: (a) => ago(a.finished_at) },
];

export function policyRolloutPage(ctx: PageContext): void {
  const id = ctx.params[0] ?? '';
  const operator = canOperate();
  const title = h('span', null, `Rollout ${id.slice(0, 8)}`);
  const live = h('span', { class: 'live-state', id: 'rollout-live' }, 'connecting');
  const message = h('div', { 'aria-live': 'polite' });
  const info = h('div', { id: 'rollout-info' }, h('p', { class: 'muted' }, 'Loading…'));
  const progress = h('div', { class: 'rollout-progress', id: 'rollout-progress' });
  const waves = h('div', { id: 'rollout-waves' });
  const thead = h('thead');
  const tbody = h('tbody');
  renderHead(thead, AGENT_COLUMNS);
  messageRow(tbody, AGENT_COLUMNS.length, 'Waiting for the first wave…');
  const agents = new Map<string, RolloutAgent>();
  let rollout: PolicyRollout | undefined;

  const act = (what: 'pause' | 'resume' | 'cancel') => (ev: MouseEvent) => {
    const b = ev.currentTarget as HTMLButtonElement;
    void busy(b, async () => {
      try {
        const r = await api.call(`POST /policy-rollouts/:id/${what}`, { params: { id } });
        put(message);
        rollout = { ...r, agents: rollout?.agents };
        render();
      } catch (e) {
        put(message, errorBox(errorMessage(e)));
      }
    });
  };
  const pause = h(
    'button',
    { type: 'button', class: 'btn', id: 'rollout-pause', hidden: true, on: { click: act('pause') } },
    'Pause',
  );
  const resume = h(
    'button',
    {
      type: 'button',
      class: 'btn btn-primary',
      id: 'rollout-resume',
      hidden: true,
      on: { click: act('resume') },
    },
    'Resume',
  );
  const cancel = h(
    'button',
    {
      type: 'button',
      class: 'btn btn-danger',
      id: 'rollout-cancel',
      hidden: true,
      on: { click: act('cancel') },
    },
    'Cancel rollout',
  );

  const render = () => {
    const r = rollout;
    if (!r) return;
    put(title, `Rollout ${r.id.slice(0, 8)} `, rolloutBadge(r));
    pause.hidden = r.status !== 'running';
    resume.hidden = r.status !== 'paused';
    cancel.hidden = !isActive(r);
    const c = r.counts;
    put(
      progress,
      progressBar(finishedCount(c), c.total, 'Agents finished'),
      h(
        'span',
        { class: 'muted', id: 'rollout-counts' },
        ` ${finishedCount(c)} of ${c.total} agents · ${c.applied} applied · ${c.applying} applying · ${c.failed} failed · ${c.rolled_back} rolled back` +
          (c.skipped ? ` · ${c.skipped} skipped` : ''),
      ),
      r.message ? h('p', { class: 'muted', id: 'rollout-message' }, r.message) : null,
    );
    put(
      info,
      defList([
        ['Policy', h('a', { href: `#/policies/${encodeURIComponent(r.policy_id)}` }, r.policy_name)],
        ['Revision', `${r.revision} (from ${r.previous_revision ?? 'none'})`],
        ['Waves', `${r.current_wave} of ${r.waves.length}, ${r.batch_size} agent(s) each`],
        ['Pause between waves', fmtMs(r.pause_ms)],
        ['Halts after', r.max_failures ? `more than ${r.max_failures} failure(s)` : 'the first failure'],
        ['Wave timeout', fmtMs(r.wave_timeout_ms)],
        ['Started', [`by ${r.created_by} `, ago(r.created_at)]],
        ['Finished', r.finished_at ? ago(r.finished_at) : '—'],
      ]),
    );
    const list = [...agents.values()];
    put(
      waves,
      r.waves.length === 0
        ? h('p', { class: 'muted' }, 'No agent matched the policy: nothing to roll out.')
        : h(
            'ol',
            { class: 'plain wave-list' },
            r.waves.map((w) => {
              const mine = list.filter((a) => a.wave === w.index);
              const done = mine.filter((a) => FINISHED.has(a.status)).length;
              const failed = mine.filter((a) => a.status === 'failed' || a.status === 'rolled_back').length;
              return h(
                'li',
                { class: 'wave', data: { wave: String(w.index), status: w.status } },
                h('strong', null, `Wave ${w.index} `),
                badge(w.status, WAVE_TONE[w.status]),
                ' ',
                progressBar(done, Math.max(w.agents, mine.length), `agents finished in wave ${w.index}`),
                h('span', { class: 'muted' }, ` ${done - failed} applied · ${failed} failed`),
              );
            }),
          ),
    );
    syncRows(
      tbody,
      list.sort((a, b) => a.wave - b.wave || a.agent_code.localeCompare(b.agent_code)),
      (a) => a.agent_code,
      AGENT_COLUMNS,
      {
        empty: isActive(r) ? 'Waiting for the first wave…' : 'No agents.',
        init: (tr, a) => (tr.dataset.agent = a.agent_code),
      },
    );
    for (const tr of Array.from(tbody.rows)) {
      const a = tr.dataset.agent ? agents.get(tr.dataset.agent) : undefined;
      if (a) tr.dataset.status = a.status;
    }
  };

  ctx.root.append(
    pageHeader(title, {
      crumbs: [['Rollouts', '#/policy-rollouts']],
      actions: operator ? [pause, resume, cancel] : [],
    }),
    message,
    h(
      'div',
      { class: 'panels' },
      h(
        'section',
        { class: 'panel', 'aria-labelledby': 'rollout-info-title' },
        h('h2', { id: 'rollout-info-title' }, 'Rollout'),
        info,
      ),
      h(
        'section',
        { class: 'panel', 'aria-labelledby': 'rollout-waves-title' },
        h('h2', { id: 'rollout-waves-title' }, 'Progress ', live),
        progress,
        waves,
      ),
    ),
    h(
      'section',
      { class: 'panel', 'aria-labelledby': 'rollout-agents-title' },
      h('h2', { id: 'rollout-agents-title' }, 'Agents'),
      h('div', { class: 'table-wrap' }, h('table', { class: 'data', id: 'rollout-agents' }, thead, tbody)),
    ),
  );

  /** The whole rollout with its agents: on open and after a reconnection (events missed meanwhile). */
  const load = () =>
    api
      .call('GET /policy-rollouts/:id', { params: { id } })
      .then((r) => {
        rollout = r;
        for (const a of r.agents ?? []) agents.set(a.agent_code, a);
        render();
        if (!isActive(r)) put(live, 'finished');
      })
      .catch((e: unknown) => put(message, errorBox(errorMessage(e))));
  void load();

  const source = new EventSource(api.url('GET /policy-rollouts/:id/events', { params: { id } }).url);
  ctx.onCleanup(() => source.close());
  const on = <T>(name: string, fn: (data: T) => void) =>
    source.addEventListener(name, (ev) => {
      try {
        fn(JSON.parse((ev as MessageEvent<string>).data) as T);
      } catch (e) {
        console.warn('bad rollout event', e);
      }
    });
  let opened = 0;
  source.addEventListener('open', () => {
    put(live, 'live');
    if (opened++ > 0) void load();
  });
  on<PolicyRollout>('rollout', (r) => {
    rollout = { ...r, agents: r.agents ?? rollout?.agents };
    for (const a of r.agents ?? []) agents.set(a.agent_code, a);
    render();
  });
  on<RolloutAgent>('agent', (a) => {
    agents.set(a.agent_code, a);
    render();
  });
  on<PolicyRollout>('end', (r) => {
    rollout = r;
    for (const a of r.agents ?? []) agents.set(a.agent_code, a);
    put(live, 'finished');
    source.close();
    render();
  });
  source.addEventListener('error', () => {
    if (live.textContent === 'finished') return;
    if (source.readyState === EventSource.CLOSED) {
      put(live, 'disconnected');
      void load();
    } else put(live, 'reconnecting');
  });
}
