/**
 * The frame around every signed-in page: the header (brand, navigation with the current entry
 * marked and the number of firing alerts, the user and role, log out) and the <main> the page
 * renders into. The login page gets a bare frame.
 */
import { errorMessage } from './api.js';
import { h } from './dom.js';
import { leavePage, link, navigate } from './router.js';
import { logout, session } from './session.js';

export const NAV: readonly { id: string; label: string; href: string }[] = [
  { id: 'overview', label: 'Overview', href: '#/' },
  { id: 'agents', label: 'Agents', href: '#/agents' },
  { id: 'controllers', label: 'Controllers', href: '#/controllers' },
  { id: 'devices', label: 'Devices', href: '#/devices' },
  { id: 'deployments', label: 'Deployments', href: '#/deployments' },
  { id: 'batches', label: 'Batches', href: '#/batches' },
  { id: 'artifacts', label: 'Artifacts', href: '#/artifacts' },
  { id: 'policies', label: 'Policies', href: '#/policies' },
  { id: 'policy-rollouts', label: 'Rollouts', href: '#/policy-rollouts' },
  { id: 'alerts', label: 'Alerts', href: '#/alerts' },
  { id: 'audit', label: 'Audit', href: '#/audit' },
  { id: 'admin', label: 'Admin', href: '#/admin' },
];

/** The last known number of firing alerts (kept across pages so the badge does not blink). */
let firing: number | undefined;

function renderFiringCount(el: HTMLElement): void {
  const n = firing ?? 0;
  el.hidden = n === 0;
  el.textContent = n > 0 ? String(n) : '';
  el.title = `${n} firing alert${n === 1 ? '' : 's'}`;
}

/** Shows `n` firing alerts next to the Alerts nav entry (hidden at 0). */
export function setFiringCount(n: number): void {
  firing = n;
  const el = document.getElementById('nav-alerts-count');
  if (el) renderFiringCount(el);
}

function navCount(id: string): HTMLElement | null {
  if (id !== 'alerts') return null;
  const el = h('span', { class: 'nav-count', id: 'nav-alerts-count' });
  renderFiringCount(el);
  return el;
}

function appRoot(): HTMLElement {
  const el = document.getElementById('app');
  if (!el) throw new Error('index.html has no #app');
  return el;
}

/** A frame without header (login); returns its <main>. */
export function bareFrame(): HTMLElement {
  firing = undefined; // signed out: the next user's count comes from the server
  const main = h('main', { class: 'main main-bare', id: 'main' });
  appRoot().replaceChildren(main);
  return main;
}

/** The header and an empty <main>; returns the <main>. */
export function appFrame(activeNav: string | undefined): HTMLElement {
  const me = session();
  const logoutButton = h(
    'button',
    {
      type: 'button',
      class: 'btn btn-quiet',
      id: 'logout',
      on: {
        click: (ev) => {
          (ev.currentTarget as HTMLButtonElement).disabled = true;
          leavePage(); // no refresh may run into the ended session
          logout()
            .catch((e: unknown) => console.warn('logout failed:', errorMessage(e)))
            .finally(() => navigate(link('/login')));
        },
      },
    },
    'Log out',
  );
  const header = h(
    'header',
    { class: 'topbar' },
    h(
      'a',
      { class: 'brand', href: '#/' },
      h('img', { src: '/ui/favicon.svg', alt: '', width: 22, height: 22 }),
      'Opsplane',
    ),
    h(
      'nav',
      { class: 'nav', 'aria-label': 'Main' },
      NAV.map((n) =>
        h(
          'a',
          {
            href: n.href,
            class: 'nav-link',
            id: `nav-${n.id}`,
            'aria-current': n.id === activeNav ? 'page' : undefined,
          },
          n.label,
          navCount(n.id),
        ),
      ),
    ),
    h(
      'div',
      { class: 'who' },
      me
        ? [
            h('span', { class: 'who-user', id: 'who-user' }, me.user.username),
            h('span', { class: `role role-${me.role}`, id: 'who-role' }, me.role),
          ]
        : null,
      logoutButton,
    ),
  );
  const main = h('main', { class: 'main', id: 'main', tabindex: -1 });
  const skip = h('a', { class: 'skip-link', href: '#main', on: { click: skipToMain } }, 'Skip to content');
  appRoot().replaceChildren(skip, header, main);
  return main;
}

/** The skip link moves focus to the page (the hash is the router's, so no navigation). */
function skipToMain(ev: MouseEvent): void {
  ev.preventDefault();
  document.getElementById('main')?.focus();
}

/** Page heading with optional breadcrumb and actions on the right. */
export function pageHeader(
  title: string | Node,
  opts: { crumbs?: [string, string][]; actions?: Node[] } = {},
): HTMLElement {
  return h(
    'div',
    { class: 'page-header' },
    opts.crumbs
      ? h(
          'nav',
          { class: 'crumbs', 'aria-label': 'Breadcrumb' },
          opts.crumbs.map(([label, href]) => [h('a', { href }, label), h('span', { class: 'sep' }, '›')]),
        )
      : null,
    h(
      'div',
      { class: 'page-title-row' },
      h('h1', null, title),
      h('div', { class: 'page-actions' }, opts.actions ?? []),
    ),
  );
}
