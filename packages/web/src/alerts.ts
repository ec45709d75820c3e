/**
 * Alert helpers shared by the alerts page, the overview card and the header: where an alert's
 * subject is shown (agent, deployment, controllers), its title as a link there, and the count
 * of firing alerts in the navigation (GET /alerts?status=firing, refreshed with every page).
 */
import { api } from './api.js';
import { h } from './dom.js';
import { setFiringCount } from './layout.js';
import type { Alert } from '@opsplane/api';

/** The page of an alert's subject, when the UI has one. */
export function subjectHref(a: Pick<Alert, 'subject' | 'labels'>): string | undefined {
  const i = a.subject.indexOf(':');
  const type = i < 0 ? '' : a.subject.slice(0, i);
  const rest = i < 0 ? '' : a.subject.slice(i + 1);
  switch (type) {
    case 'agent':
      return rest ? `#/agents/${encodeURIComponent(rest)}` : undefined;
    case 'package': {
      // package:<code>/<name>; the agent's page lists its packages.
      const code = a.labels.agent_code ?? rest.slice(0, rest.lastIndexOf('/'));
      return code ? `#/agents/${encodeURIComponent(code)}` : undefined;
    }
    case 'deployment':
      return rest ? `#/deployments/${encodeURIComponent(rest)}` : undefined;
    case 'controller':
      return '#/controllers';
    default:
      return undefined;
  }
}

/** The alert's title, linking to its subject's page where there is one. */
export function alertTitle(a: Alert): HTMLElement {
  const href = subjectHref(a);
  return href
    ? h('a', { href, class: 'alert-title' }, a.title)
    : h('span', { class: 'alert-title' }, a.title);
}

/** Refreshes the navigation's count of firing alerts; failures keep the last count, quietly. */
export async function refreshFiringCount(): Promise<void> {
  try {
    const r = await api.call('GET /alerts', { query: { status: 'firing', pageSize: 1 } });
    setFiringCount(r.total);
  } catch {
    // A lost session goes to the login page anyway; anything else: try again next time.
  }
}
