/**
 * #/batches/new — a batch across areas, composed by an operator: which agents (everything
 * matching a filter — area, status, search, label selector — or the agents ticked in the list,
 * a selection kept across pages), what to do (start, stop or restart packages, or push a config
 * file written in the editor of config-editor.ts, validated, with its diff against a chosen
 * agent's current file), then POST /batches and on to the batch's live page.
 */
import type { AgentView, BatchCreateInput } from '@opsplane/api';
import { api, errorMessage } from '../api.js';
import { AGENT_STATUSES } from '../choices.js';
import { configEditor } from '../config-editor.js';
import { badge, errorBox, field, h, notice, put } from '../dom.js';
import { areaSelect, filterSelect, searchBox, selectorBox } from '../filters.js';
import { busy, labelled, selectOf, textInput } from '../form.js';
import { pageHeader } from '../layout.js';
import { navigate, type PageContext } from '../router.js';
import { messageRow, renderHead, renderPager, syncRows, type Column } from '../table.js';
import { labelTags } from './agents.js';

const MAX_SELECT_ALL = 5000;

export function batchNewPage(ctx: PageContext): void {
  const q = ctx.query;
  const f = {
    area: q.get('area') ?? '',
    status: q.get('status') ?? '',
    q: q.get('q') ?? '',
    selector: q.get('selector') ?? '',
    page: 1,
    pageSize: 20,
  };
  const chosen = new Set<string>((q.get('agents') ?? '').split(',').filter(Boolean));
  let shown: AgentView[] = [];
  let matching = 0;

  // ---------------------------------------------------------------- which agents
  const modeFilter = h('input', {
    type: 'radio',
    name: 'target-mode',
    id: 'mode-filter',
    value: 'filter',
    props: { checked: chosen.size === 0 },
  });
  const modeChosen = h('input', {
    type: 'radio',
    name: 'target-mode',
    id: 'mode-chosen',
    value: 'chosen',
    props: { checked: chosen.size > 0 },
  });
  const countFilter = h('span', { id: 'count-filter' }, '…');
  const countChosen = h('span', { id: 'count-chosen' }, String(chosen.size));
  const thead = h('thead');
  const tbody = h('tbody');
  const pager = h('div', { class: 'pager' });
  const listStatus = h('div', { class: 'list-status' });
  const box = (a: AgentView) =>
    h('input', {
      type: 'checkbox',
      class: 'select-agent',
      'aria-label': `Choose ${a.agent_code}`,
      data: { code: a.agent_code },
      props: { checked: chosen.has(a.agent_code) },
    });
  const columns: Column<AgentView>[] = [
    { label: '', className: 'select', cell: box },
    {
      label: 'Agent',
      cell: (a) => h('a', { href: `#/agents/${encodeURIComponent(a.agent_code)}` }, a.agent_code),
    },
    { label: 'Area', cell: (a) => a.area },
    { label: 'Status', cell: (a) => badge(a.status) },
    { label: 'Health', cell: (a) => badge(a.health_status) },
    { label: 'Labels', className: 'wrap', cell: (a) => labelTags(a.labels) },
    { label: 'Packages', cell: (a) => a.services.map((s) => s.name).join(', ') || '—' },
  ];
  renderHead(thead, columns);
  thead
    .querySelector('th.select')
    ?.append(h('input', { type: 'checkbox', class: 'select-all', 'aria-label': 'Choose all shown agents' }));
  messageRow(tbody, columns.length, 'Loading…');

  const syncChosen = () => {
    for (const cb of tbody.querySelectorAll<HTMLInputElement>('input.select-agent'))
      cb.checked = chosen.has(cb.dataset.code ?? '');
    const all = thead.querySelector<HTMLInputElement>('input.select-all');
    if (all) all.checked = shown.length > 0 && shown.every((a) => chosen.has(a.agent_code));
    put(countChosen, String(chosen.size));
    if (chosen.size > 0 && !modeChosen.checked && document.activeElement?.classList.contains('select-agent'))
      modeChosen.checked = true;
    reference();
  };
  const toggle = (codes: readonly string[], on: boolean) => {
    for (const c of codes)
      if (on) chosen.add(c);
      else chosen.delete(c);
    syncChosen();
  };
  tbody.addEventListener('change', (ev) => {
    const t = ev.target as HTMLInputElement;
    if (t.matches('input.select-agent') && t.dataset.code) {
      toggle([t.dataset.code], t.checked);
      if (t.checked) modeChosen.checked = true;
    }
  });
  thead.addEventListener('change', (ev) => {
    const t = ev.target as HTMLInputElement;
    if (t.matches('input.select-all'))
      toggle(
        shown.map((a) => a.agent_code),
        t.checked,
      );
  });

  const query = () => ({
    area: f.area,
    status: f.status,
    q: f.q,
    selector: f.selector,
  });
  let loads = 0;
  const load = async () => {
    const my = ++loads;
    try {
      const r = await api.call('GET /agents', {
        query: { ...query(), page: f.page, pageSize: f.pageSize, sort: 'id' },
      });
      if (my !== loads || !ctx.active) return; // a newer filter was asked for meanwhile
      shown = r.agents;
      matching = r.total;
      put(countFilter, String(r.total));
      put(listStatus);
      syncRows(tbody, r.agents, (a) => a.agent_code, columns, { empty: 'No agent matches these filters.' });
      syncChosen();
      renderPager(pager, { page: f.page, pageSize: f.pageSize, total: r.total }, (page, pageSize) => {
        f.page = page;
        f.pageSize = pageSize;
        void load();
      });
    } catch (e) {
      put(listStatus, errorBox(errorMessage(e)));
      put(countFilter, '?');
    }
  };
  const changed = () => {
    f.page = 1;
    const out = new URLSearchParams();
    for (const k of ['area', 'status', 'q', 'selector'] as const) if (f[k]) out.set(k, f[k]);
    ctx.setQuery(out);
    void load();
  };
  const set = (k: 'area' | 'status' | 'q' | 'selector') => (v: string) => {
    f[k] = v;
    changed();
  };
  const chooseAll = h(
    'button',
    {
      type: 'button',
      class: 'btn btn-small',
      id: 'choose-all-matching',
      on: {
        click: () =>
          void busy(chooseAll, async () => {
            for (let page = 1; page <= Math.ceil(Math.min(matching, MAX_SELECT_ALL) / 500); page++) {
              const r = await api.call('GET /agents', {
                query: { ...query(), page, pageSize: 500, sort: 'id' },
              });
              for (const a of r.agents) chosen.add(a.agent_code);
            }
            modeChosen.checked = true;
            syncChosen();
          }),
      },
    },
    'Choose all matching',
  );
  const clear = h(
    'button',
    {
      type: 'button',
      class: 'btn btn-small',
      id: 'clear-chosen',
      on: { click: () => toggle([...chosen], false) },
    },
    'Clear choice',
  );

  // ---------------------------------------------------------------- what to do
  const action = selectOf(
    'batch-action',
    [
      ['restart', 'Restart packages'],
      ['start', 'Start packages'],
      ['stop', 'Stop packages'],
      ['configs', 'Push a config file'],
    ],
    q.get('action') ?? 'restart',
  );
  const packages = textInput('batch-packages', q.get('packages') ?? '', {
    placeholder: 'web,collector (empty: every package)',
  });
  const timeout = textInput('batch-timeout', '', { placeholder: 'e.g. 2m (default: the server’s)' });
  const editor = configEditor();
  const packagesField = labelled(
    'Packages',
    packages,
    'comma separated; empty means every package of each agent',
  );
  const reference = () => editor.setReference(modeChosen.checked ? [...chosen][0] : shown[0]?.agent_code);
  const showAction = () => {
    const push = action.value === 'configs';
    packagesField.hidden = push;
    editor.el.hidden = !push;
    reference();
  };
  action.addEventListener('change', showAction);
  modeChosen.addEventListener('change', reference);

  const message = h('div', { id: 'batch-message', 'aria-live': 'polite' });
  const go = h('button', { type: 'submit', class: 'btn btn-primary', id: 'batch-run' }, 'Run batch');
  const submit = (ev: SubmitEvent) => {
    ev.preventDefault();
    put(message);
    const useChosen = modeChosen.checked;
    if (useChosen && chosen.size === 0) {
      put(message, errorBox('Choose at least one agent, or run on every agent matching the filter.'));
      return;
    }
    const filter = Object.fromEntries(Object.entries(query()).filter(([, v]) => v !== ''));
    const target = useChosen ? { agents: [...chosen] } : { filter };
    let body: BatchCreateInput;
    if (action.value === 'configs') {
      const v = editor.value();
      if ('problem' in v) {
        put(message, errorBox(v.problem));
        return;
      }
      body = {
        action: 'configs',
        ...target,
        package: v.package,
        configs: [{ file_name: v.file_name, content: v.content }],
        config_file: v.file_name,
      };
    } else {
      const list = packages.value
        .split(',')
        .map((p) => p.trim())
        .filter(Boolean);
      body = {
        action: action.value as 'start' | 'stop' | 'restart',
        ...target,
        ...(list.length ? { packages: list } : {}),
      };
    }
    if (timeout.value.trim()) body.timeout = timeout.value.trim();
    void busy(go, async () => {
      try {
        const job = await api.call('POST /batches', { body, query: { wait: '0s' } });
        navigate(`#/batches/${encodeURIComponent(job.id)}`);
      } catch (e) {
        put(message, errorBox(errorMessage(e)));
      }
    });
  };

  ctx.root.append(
    pageHeader('New batch', { crumbs: [['Batches', '#/batches']] }),
    h(
      'form',
      // A refusal shown below the button goes once the form is changed.
      { class: 'batch-form', 'aria-label': 'New batch', on: { submit, input: () => put(message) } },
      h(
        'section',
        { class: 'panel', 'aria-labelledby': 'which-title' },
        h('h2', { id: 'which-title' }, '1. Which agents'),
        h(
          'div',
          { class: 'toolbar' },
          field('Search', searchBox(ctx, 'pick-search', 'Code, hostname, address, device', f.q, set('q'))),
          field('Area', areaSelect('pick-area', f.area, set('area'))),
          field('Status', filterSelect('pick-status', 'Any status', AGENT_STATUSES, f.status, set('status'))),
          field('Labels', selectorBox(ctx, 'pick-selector', f.selector, set('selector'))),
        ),
        h(
          'fieldset',
          { class: 'target-mode' },
          h('legend', null, 'Run on'),
          h(
            'label',
            { class: 'check' },
            modeFilter,
            ' every agent matching the filter (',
            countFilter,
            ' now; resolved when it starts)',
          ),
          h('label', { class: 'check' }, modeChosen, ' only the chosen agents (', countChosen, ')'),
          h('div', { class: 'btn-row' }, chooseAll, clear),
        ),
        listStatus,
        h('div', { class: 'table-wrap' }, h('table', { class: 'data', id: 'pick-table' }, thead, tbody)),
        h('div', { class: 'table-foot' }, pager),
      ),
      h(
        'section',
        { class: 'panel', 'aria-labelledby': 'what-title' },
        h('h2', { id: 'what-title' }, '2. What to do'),
        h(
          'div',
          { class: 'form-grid' },
          labelled('Action', action),
          packagesField,
          labelled('Deadline', timeout),
        ),
        editor.el,
        h('div', { class: 'form-actions' }, go),
        message,
        notice('Results appear live on the batch’s page as each agent answers.', 'info'),
      ),
    ),
  );
  showAction();
  void load();
}
