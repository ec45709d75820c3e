/**
 * #/policies/new and #/policies/<id>/edit — a policy's desired state (operators): name,
 * description, areas (none ticked = every area), a label selector on agent labels, priority,
 * packages with a version each (chosen among the stored artifacts) and their config files, the
 * agent version, drift correction, the health gate, and whether the change waits for a rollout
 * (staged). Saving makes a new revision; the server checks every version has an artifact.
 */
import type { Artifact, Policy, PolicyCreateInput, PolicyUpdateInput } from '@opsplane/api';
import { api, errorMessage } from '../api.js';
import { errorBox, h, put } from '../dom.js';
import { busy, checkbox, labelled, textInput } from '../form.js';
import { pageHeader } from '../layout.js';
import { selectorBox } from '../filters.js';
import { navigate, type PageContext } from '../router.js';

export const policyHref = (id: string): string => `#/policies/${encodeURIComponent(id)}`;

interface ConfigRow {
  el: HTMLElement;
  value(): { file_name: string; content: string };
}

interface PackageValue {
  name: string;
  version: string;
  configs: { file_name: string; content: string }[];
}

interface PackageRow {
  el: HTMLElement;
  value(): PackageValue;
}

let seq = 0;

function configRow(
  initial: { file_name: string; content: string } | undefined,
  remove: (r: ConfigRow) => void,
): ConfigRow {
  const n = ++seq;
  const name = textInput(`cfg-name-${n}`, initial?.file_name ?? '', {
    placeholder: 'app.yaml',
    class: 'cfg-name',
  });
  const content = h('textarea', {
    id: `cfg-content-${n}`,
    rows: 4,
    spellcheck: 'false',
    class: 'cfg-content',
    props: { value: initial?.content ?? '' },
  });
  const row: ConfigRow = {
    el: h(
      'div',
      { class: 'config-row' },
      labelled('Config file name', name),
      labelled('Content', content),
      h(
        'button',
        { type: 'button', class: 'btn btn-small', on: { click: () => remove(row) } },
        'Remove file',
      ),
    ),
    value: () => ({ file_name: name.value.trim(), content: content.value }),
  };
  return row;
}

/** One package: name (datalist of stored package names), version (the stored versions of it), configs. */
function packageRow(
  initial: PackageValue | undefined,
  artifacts: () => readonly Artifact[],
  remove: (r: PackageRow) => void,
): PackageRow {
  const n = ++seq;
  const name = textInput(`pkg-name-${n}`, initial?.name ?? '', {
    required: true,
    list: 'policy-package-names',
    class: 'pkg-name',
    placeholder: 'web',
  });
  const version = h('select', { id: `pkg-version-${n}`, class: 'pkg-version', required: true });
  const fillVersions = () => {
    const want = version.value || initial?.version || '';
    const versions = [
      ...new Set(
        artifacts()
          .filter((a) => a.kind === 'package' && a.name === name.value.trim())
          .map((a) => a.version),
      ),
    ];
    if (want && !versions.includes(want)) versions.unshift(want);
    version.replaceChildren(
      h('option', { value: '' }, versions.length ? 'choose a version' : 'no stored version'),
      ...versions.map((v) => h('option', { value: v, props: { selected: v === want } }, v)),
    );
  };
  name.addEventListener('input', fillVersions);
  name.addEventListener('change', fillVersions);
  const configs: ConfigRow[] = [];
  const configList = h('div', { class: 'config-list' });
  const addConfig = (c?: { file_name: string; content: string }) => {
    const r = configRow(c, (x) => {
      configs.splice(configs.indexOf(x), 1);
      x.el.remove();
    });
    configs.push(r);
    configList.append(r.el);
  };
  for (const c of initial?.configs ?? []) addConfig(c);
  fillVersions();
  const row: PackageRow = {
    el: h(
      'fieldset',
      { class: 'package-row' },
      h('legend', null, 'Package'),
      h(
        'div',
        { class: 'form-grid' },
        labelled('Package name', name),
        labelled('Version', version),
        h(
          'div',
          { class: 'form-actions' },
          h(
            'button',
            { type: 'button', class: 'btn btn-small', on: { click: () => addConfig() } },
            'Add config file',
          ),
          h(
            'button',
            { type: 'button', class: 'btn btn-small btn-danger', on: { click: () => remove(row) } },
            'Remove package',
          ),
        ),
      ),
      configList,
    ),
    value: () => ({
      name: name.value.trim(),
      version: version.value,
      configs: configs.map((c) => c.value()),
    }),
  };
  return row;
}

export function policyFormPage(ctx: PageContext): void {
  const id = ctx.params[0];
  const editing = id !== undefined;
  const f = (n: string) => `policy-${n}`;
  const title = editing ? 'Edit policy' : 'New policy';
  const body = h('div', null, h('p', { class: 'muted' }, 'Loading…'));
  ctx.root.append(pageHeader(title, { crumbs: [['Policies', '#/policies']] }), body);

  void (async () => {
    let current: Policy | undefined;
    let artifacts: Artifact[] = [];
    let areaNames: string[] = [];
    try {
      const [p, a, areas] = await Promise.all([
        editing ? api.call('GET /policies/:id', { params: { id } }) : Promise.resolve(undefined),
        api.call('GET /artifacts', { query: { pageSize: 500 } }),
        api.call('GET /areas'),
      ]);
      current = p;
      artifacts = a.items;
      areaNames = areas.areas.map((x) => x.name).sort();
    } catch (e) {
      put(body, errorBox(errorMessage(e)));
      return;
    }
    if (!ctx.active) return;
    const name = textInput(f('name'), current?.name ?? '', {
      required: true,
      maxlength: 64,
      placeholder: 'web-prod',
    });
    const description = textInput(f('description'), current?.description ?? '');
    // The agents list's selector box; how many agents match (with the ticked areas) shows as you type.
    const matches = h('span', { class: 'field-hint muted', id: f('matches'), 'aria-live': 'polite' });
    const countMatches = () => {
      const areas = areaBoxes.filter((b) => b.input.checked).map((b) => areaOf(b.input));
      api
        .call('GET /agents', {
          query: {
            selector: selector.value.trim() || undefined,
            area: areas.join(',') || undefined,
            pageSize: 1,
          },
        })
        .then((r) => put(matches, `${r.total} agent${r.total === 1 ? '' : 's'} match now`))
        .catch((e: unknown) => put(matches, errorMessage(e)));
    };
    const selector = selectorBox(ctx, f('selector'), current?.selector ?? '', countMatches);
    selector.placeholder = 'env=prod,role=web';
    const priority = h('input', {
      type: 'number',
      id: f('priority'),
      min: -1000,
      max: 1000,
      props: { value: String(current?.priority ?? 0) },
    });
    const areaBoxes = [...new Set([...areaNames, ...(current?.areas ?? [])])].map((a) =>
      checkbox(`${f('area')}-${a}`, a, current?.areas.includes(a) ?? false),
    );
    const areaOf = (input: HTMLInputElement) => input.id.slice(f('area').length + 1);
    for (const b of areaBoxes) b.input.addEventListener('change', countMatches);
    countMatches();
    const agentVersions = [...new Set(artifacts.filter((a) => a.kind === 'agent').map((a) => a.version))];
    if (current?.agent_version && !agentVersions.includes(current.agent_version))
      agentVersions.unshift(current.agent_version);
    const agentVersion = h(
      'select',
      { id: f('agent-version') },
      h(
        'option',
        { value: '', props: { selected: !current?.agent_version } },
        'leave the agents’ version as is',
      ),
      agentVersions.map((v) =>
        h('option', { value: v, props: { selected: v === current?.agent_version } }, v),
      ),
    );
    const correctDrift = checkbox(
      f('correct-drift'),
      'Correct drift: rewrite config files that differ from the policy',
      current?.correct_drift ?? false,
    );
    const healthTimeout = h('input', {
      type: 'number',
      id: f('health-timeout'),
      min: 1,
      max: 3600,
      props: { value: String((current?.health_timeout_ms ?? 60_000) / 1000) },
    });
    const staged = checkbox(f('staged'), 'Staged: agents get this revision only through a rollout', false);
    const names = h(
      'datalist',
      { id: 'policy-package-names' },
      [...new Set(artifacts.filter((a) => a.kind === 'package').map((a) => a.name))].map((n) =>
        h('option', { value: n }),
      ),
    );
    const packages: PackageRow[] = [];
    const packageList = h('div', { id: 'policy-packages' });
    const addPackage = (p?: PackageValue) => {
      const r = packageRow(
        p,
        () => artifacts,
        (x) => {
          packages.splice(packages.indexOf(x), 1);
          x.el.remove();
        },
      );
      packages.push(r);
      packageList.append(r.el);
      return r;
    };
    for (const p of current?.packages ?? []) addPackage(p);
    if (!current) addPackage();
    const message = h('div', { class: 'form-message', 'aria-live': 'polite' });
    const save = h(
      'button',
      { type: 'submit', class: 'btn btn-primary', id: f('save') },
      editing ? 'Save revision' : 'Create policy',
    );
    const submit = (ev: SubmitEvent) => {
      ev.preventDefault();
      put(message);
      const spec = {
        name: name.value.trim(),
        description: description.value.trim(),
        areas: areaBoxes.filter((b) => b.input.checked).map((b) => areaOf(b.input)),
        selector: selector.value.trim(),
        priority: Number(priority.value) || 0,
        packages: packages.map((p) => p.value()),
        agent_version: agentVersion.value || null,
        correct_drift: correctDrift.input.checked,
        health_timeout_ms: Math.round(Number(healthTimeout.value) * 1000),
        staged: staged.input.checked,
      };
      const missing = spec.packages.find((p) => !p.name || !p.version);
      if (missing) {
        put(
          message,
          errorBox(
            `Choose a name and a stored version for every package${missing.name ? ` (${missing.name})` : ''}.`,
          ),
        );
        return;
      }
      void busy(save, async () => {
        try {
          const saved = current
            ? await api.call('PATCH /policies/:id', {
                params: { id: current.id },
                body: spec satisfies PolicyUpdateInput,
              })
            : await api.call('POST /policies', { body: spec satisfies PolicyCreateInput });
          navigate(policyHref(saved.id));
        } catch (e) {
          put(message, errorBox(errorMessage(e)));
        }
      });
    };
    put(
      body,
      h(
        'section',
        { class: 'panel panel-form', id: 'policy-form', 'aria-labelledby': 'policy-form-title' },
        h(
          'h2',
          { id: 'policy-form-title' },
          editing ? `${current?.name ?? ''}: new revision` : 'Desired state',
        ),
        h(
          'form',
          { class: 'form-grid', 'aria-labelledby': 'policy-form-title', on: { submit } },
          labelled('Name', name),
          labelled('Description', description),
          h(
            'div',
            { class: 'field' },
            h('label', { class: 'field-label', for: selector.id }, 'Label selector'),
            selector,
            matches,
          ),
          labelled('Priority', priority, 'an agent follows the highest-priority matching policy'),
          h(
            'fieldset',
            { class: 'area-boxes', id: f('areas') },
            h('legend', null, 'Areas (none ticked = every area)'),
            areaBoxes.length ? areaBoxes.map((b) => b.el) : h('p', { class: 'muted' }, 'No areas known yet.'),
          ),
          h('h3', null, 'Packages'),
          h(
            'div',
            { class: 'packages-editor' },
            packageList,
            names,
            h(
              'button',
              {
                type: 'button',
                class: 'btn',
                id: 'policy-add-package',
                on: { click: () => addPackage().el.querySelector('input')?.focus() },
              },
              'Add package',
            ),
          ),
          labelled('Agent version', agentVersion, 'self-upgrade through a stored agent bundle'),
          labelled(
            'Health gate (seconds)',
            healthTimeout,
            'a new version not healthy by then is rolled back',
          ),
          correctDrift.el,
          staged.el,
          h(
            'div',
            { class: 'form-actions' },
            save,
            h('a', { class: 'btn', href: current ? policyHref(current.id) : '#/policies' }, 'Cancel'),
          ),
          message,
        ),
      ),
    );
  })();
}
