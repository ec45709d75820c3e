/**
 * Entry point (loaded by index.html as a module): the route table, the session gate (pages
 * other than login need a session; a 401 anywhere goes back to the login page), the header's
 * firing-alert count polled with each page, and start-up.
 */
import { refreshFiringCount } from './alerts.js';
import { errorMessage, onUnauthorized } from './api.js';
import { errorBox, h } from './dom.js';
import { appFrame, bareFrame } from './layout.js';
import { agentPage } from './pages/agent.js';
import { agentsPage } from './pages/agents.js';
import { alertsPage } from './pages/alerts.js';
import { controllersPage } from './pages/controllers.js';
import { deploymentPage } from './pages/deployment.js';
import { deploymentsPage } from './pages/deployments.js';
import { devicesPage } from './pages/devices.js';
import { loginPage } from './pages/login.js';
import { overviewPage } from './pages/overview.js';
import { rolloutPage } from './pages/rollout.js';
import { adminPage } from './pages/admin.js';
import { auditPage } from './pages/audit.js';
import { batchNewPage } from './pages/batch-new.js';
import { batchPage, batchesPage } from './pages/batches.js';
import { artifactsPage } from './pages/artifacts.js';
import { policiesPage, policyPage } from './pages/policies.js';
import { policyFormPage } from './pages/policy-form.js';
import { policyRolloutNewPage, policyRolloutPage, policyRolloutsPage } from './pages/policy-rollouts.js';
import { currentLocation, link, navigate, startRouter, type Location, type Route } from './router.js';
import { loadSession, session, setSession } from './session.js';

const routes: Route[] = [
  { pattern: /^\/login$/, render: loginPage, public: true, title: 'Sign in' },
  { pattern: /^\/$/, render: overviewPage, nav: 'overview', title: 'Overview' },
  { pattern: /^\/agents$/, render: agentsPage, nav: 'agents', title: 'Agents' },
  { pattern: /^\/agents\/([^/]+)$/, render: agentPage, nav: 'agents', title: 'Agent' },
  { pattern: /^\/controllers$/, render: controllersPage, nav: 'controllers', title: 'Controllers' },
  { pattern: /^\/devices$/, render: devicesPage, nav: 'devices', title: 'Devices' },
  { pattern: /^\/deployments$/, render: deploymentsPage, nav: 'deployments', title: 'Deployments' },
  { pattern: /^\/deployments\/([^/]+)$/, render: deploymentPage, nav: 'deployments', title: 'Deployment' },
  { pattern: /^\/rollouts\/([^/]+)$/, render: rolloutPage, nav: 'deployments', title: 'Rollout' },
  { pattern: /^\/alerts$/, render: alertsPage, nav: 'alerts', title: 'Alerts' },
  { pattern: /^\/batches$/, render: batchesPage, nav: 'batches', title: 'Batches' },
  { pattern: /^\/batches\/new$/, render: batchNewPage, nav: 'batches', title: 'New batch' },
  { pattern: /^\/batches\/([^/]+)$/, render: batchPage, nav: 'batches', title: 'Batch' },
  { pattern: /^\/artifacts$/, render: artifactsPage, nav: 'artifacts', title: 'Artifacts' },
  { pattern: /^\/policies$/, render: policiesPage, nav: 'policies', title: 'Policies' },
  { pattern: /^\/policies\/new$/, render: policyFormPage, nav: 'policies', title: 'New policy' },
  { pattern: /^\/policies\/([^/]+)\/edit$/, render: policyFormPage, nav: 'policies', title: 'Edit policy' },
  { pattern: /^\/policies\/([^/]+)$/, render: policyPage, nav: 'policies', title: 'Policy' },
  { pattern: /^\/policy-rollouts$/, render: policyRolloutsPage, nav: 'policy-rollouts', title: 'Rollouts' },
  {
    pattern: /^\/policy-rollouts\/new$/,
    render: policyRolloutNewPage,
    nav: 'policy-rollouts',
    title: 'Start a rollout',
  },
  {
    pattern: /^\/policy-rollouts\/([^/]+)$/,
    render: policyRolloutPage,
    nav: 'policy-rollouts',
    title: 'Rollout',
  },
  { pattern: /^\/audit$/, render: auditPage, nav: 'audit', title: 'Audit log' },
  { pattern: /^\/admin$/, render: adminPage, nav: 'admin', title: 'Administration' },
];

const hashOf = (loc: Location): string => link(loc.path, Object.fromEntries(loc.query));

function toLogin(): void {
  const loc = currentLocation();
  if (loc.path === '/login') return;
  navigate(link('/login', loc.path === '/' && loc.query.size === 0 ? {} : { next: hashOf(loc) }));
}

onUnauthorized(() => {
  setSession(undefined);
  toLogin();
});

startRouter(routes, {
  async frame(route, loc) {
    if (route?.public) return bareFrame();
    if (!session()) {
      try {
        await loadSession();
      } catch (e) {
        const main = bareFrame();
        main.append(
          errorBox(errorMessage(e)),
          h(
            'button',
            { type: 'button', class: 'btn', on: { click: () => navigate(hashOf(loc)) } },
            'Try again',
          ),
        );
        return undefined;
      }
      if (!session()) {
        toLogin();
        return undefined;
      }
    }
    return appFrame(route?.nav);
  },
  mounted(ctx, route) {
    // The header's count of firing alerts follows every signed-in page's refresh cadence.
    if (!route.public) ctx.poll(refreshFiringCount);
  },
  notFound(root, loc) {
    root.append(
      h('h1', null, 'Not found'),
      h('p', null, `There is no page at ${loc.path}. `, h('a', { href: '#/' }, 'Overview')),
    );
  },
});
