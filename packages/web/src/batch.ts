/**
 * Package actions as batch jobs: POST /batches {action, agents, packages}; a job still running
 * when the server answers (202) is polled at GET /batches/{id} until it has its results.
 */
import { api } from './api.js';
import type { BatchJob } from '@opsplane/api';

export type PackageAction = 'start' | 'stop' | 'restart';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export async function runPackageAction(action: PackageAction, agent: string, pkg: string): Promise<BatchJob> {
  let job = await api.call('POST /batches', { body: { action, agents: [agent], packages: [pkg] } });
  const deadline = Date.now() + 5 * 60_000;
  while (job.status === 'running' && Date.now() < deadline) {
    await sleep(1000);
    job = await api.call('GET /batches/:id', { params: { id: job.id } });
  }
  return job;
}

/** One line per result: "restart web on agent-1: succeeded — message" / "…: failed — error". */
export function describeJob(action: string, job: BatchJob): { ok: boolean; lines: string[] } {
  const results = job.results ?? [];
  if (results.length === 0) {
    return { ok: false, lines: [`${action}: the job is ${job.status} without results`] };
  }
  return {
    ok: results.every((r) => r.success),
    lines: results.map(
      (r) =>
        `${action} ${r.package} on ${r.agent_code}: ` +
        (r.success
          ? `succeeded${r.message ? ` — ${r.message}` : ''}`
          : `failed — ${r.error ?? r.message ?? 'unknown error'}`),
    ),
  };
}
