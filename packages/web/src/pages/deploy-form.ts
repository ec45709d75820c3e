/**
 * The devices page's deploy panel (operators): action (install, upgrade, restart, uninstall),
 * version (GET /agent-bundles; only for install/upgrade), batch size, and the button that
 * sends POST /deployments for the ticked devices — or, when a label selector is given, for every
 * device whose metadata matches it — and opens the rollout page.
 */
import { api, errorMessage } from '../api.js';
import { DEPLOYMENT_TYPES, isOneOf } from '../choices.js';
import { errorBox, field, h, option, put } from '../dom.js';
import { navigate } from '../router.js';

export interface DeployForm {
  readonly el: HTMLElement;
  /** Call when the selection changed. */
  update(): void;
}

export function deployForm(selected: () => readonly string[]): DeployForm {
  const info = h('span', { class: 'muted', id: 'selection-info' });
  const button = h('button', { type: 'submit', class: 'btn btn-primary', id: 'deploy-button' }, 'Deploy');
  const error = h('div');
  const type = h(
    'select',
    { id: 'deploy-type' },
    DEPLOYMENT_TYPES.map((t) => option(t, t, t === 'install')),
  );
  const version = h('select', { id: 'deploy-version' }, option('', 'newest bundle', true));
  const batch = h('input', {
    type: 'number',
    id: 'deploy-batch',
    min: 1,
    max: 1000,
    placeholder: 'all at once',
  });
  const selector = h('input', {
    type: 'text',
    id: 'deploy-selector',
    class: 'selector-input',
    placeholder: 'role=web,env in (prod)',
    spellcheck: 'false',
    autocomplete: 'off',
    title: 'Instead of the ticked devices: every device whose metadata matches this label selector',
  });

  const update = () => {
    const n = selected().length;
    const bySelector = selector.value.trim() !== '';
    put(
      info,
      bySelector
        ? 'devices whose metadata matches the selector'
        : `${n} device${n === 1 ? '' : 's'} selected`,
    );
    button.disabled = n === 0 && !bySelector;
    version.disabled = type.value !== 'install' && type.value !== 'upgrade';
  };
  type.addEventListener('change', update);
  selector.addEventListener('input', update);

  api
    .call('GET /agent-bundles')
    .then((r) =>
      version.append(
        ...r.items.map((b) => option(b.version, `${b.version}${b.default ? ' (newest)' : ''}`, false)),
      ),
    )
    .catch((e: unknown) => put(error, errorBox(errorMessage(e))));

  const submit = (ev: SubmitEvent) => {
    ev.preventDefault();
    const kind = type.value;
    if (!isOneOf(DEPLOYMENT_TYPES, kind)) return; // the select offers nothing else
    button.disabled = true;
    put(error);
    const size = Number(batch.value);
    api
      .call('POST /deployments', {
        body: {
          type: kind,
          ...(selector.value.trim() ? { selector: selector.value.trim() } : { devices: [...selected()] }),
          ...(version.value && !version.disabled ? { version: version.value } : {}),
          ...(size > 0 ? { batch_size: size } : {}),
        },
      })
      .then((r) => navigate(`#/rollouts/${encodeURIComponent(r.id)}`))
      .catch((e: unknown) => {
        put(error, errorBox(errorMessage(e)));
        update();
      });
  };

  const el = h(
    'section',
    { class: 'panel panel-compact' },
    h('h2', null, 'Deploy the agent'),
    h(
      'form',
      { class: 'toolbar deploy-form', 'aria-label': 'Deploy the agent', on: { submit } },
      field('Action', type),
      field('Version', version),
      field('Batch size', batch),
      field('Or by labels', selector),
      h('div', { class: 'deploy-go' }, info, button),
    ),
    error,
  );
  update();
  return { el, update };
}
