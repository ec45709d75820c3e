/**
 * How far a deployment got, shared by the deployment, rollout and list pages: steps done of
 * total, the current step, a <progress> bar, and the status badge (running = in progress).
 */
import { badge, h } from './dom.js';
import type { Deployment, DeploymentStatus } from '@opsplane/api';

export const isFinished = (status: DeploymentStatus): boolean =>
  status === 'succeeded' || status === 'failed' || status === 'cancelled';

export function stepProgress(d: Pick<Deployment, 'status' | 'steps'>): {
  done: number;
  total: number;
  /** The step running now, the one that failed, or the next one of a deployment in progress. */
  current: string | null;
  failedAt: string | null;
} {
  // A skipped step counts as done when the deployment went past it (an upgrade skips the
  // service step); the steps skipped after a failure or a cancel were never reached.
  const reached = d.steps.reduce(
    (last, s, i) => (s.status === 'pending' || s.status === 'skipped' ? last : i),
    -1,
  );
  const done = d.steps.filter(
    (s, i) =>
      s.status === 'succeeded' || (s.status === 'skipped' && (i < reached || d.status === 'succeeded')),
  ).length;
  const running = d.steps.find((s) => s.status === 'running');
  const failed = d.steps.find((s) => s.status === 'failed');
  const next =
    d.status === 'running' || d.status === 'queued' ? d.steps.find((s) => s.status === 'pending') : undefined;
  return {
    done,
    total: d.steps.length,
    current: (running ?? failed ?? next)?.name ?? null,
    failedAt: failed?.name ?? null,
  };
}

/** "connect" while in progress, "failed at connect", '' otherwise. */
export function stepLabel(d: Pick<Deployment, 'status' | 'steps'>): string {
  const p = stepProgress(d);
  if (p.failedAt) return `failed at ${p.failedAt}`;
  return isFinished(d.status) ? '' : (p.current ?? '');
}

export function progressBar(done: number, total: number, label: string): HTMLElement {
  return h(
    'span',
    { class: 'progress' },
    h('progress', { max: Math.max(1, total), 'aria-label': label, props: { value: done } }),
    h('span', { class: 'progress-text' }, `${done}/${total}`),
  );
}

/** Deployment and rollout statuses: `running` is work in progress (blue), not a healthy state. */
export function deployBadge(status: string): HTMLElement {
  return badge(status, status === 'running' ? 'info' : status === 'stopped' ? 'bad' : undefined);
}
