/**
 * Playing the platform against a real controller (fleet) in distribution tests: upload a signed
 * artifact to its relay cache, hand an agent its desired state, read what the controller lists
 * of the agent (version, distribution status) and its artifact metrics.
 */
import assert from 'node:assert/strict';
import {
  ARTIFACT_REF_HEADER,
  type ArtifactRef,
  type DesiredStateInput,
  type DistributionStatus,
} from '@opsplane/models';
import type { Fleet } from '@opsplane/test-support';

const first = (fleet: Fleet, area: string) => {
  const c = fleet.controllersOf(area)[0];
  assert.ok(c, `no controller in ${area}`);
  return c;
};

/** PUT /api/v1/artifacts/{sha256}?offset=0: the whole artifact, its ref in the header. */
export async function uploadArtifact(
  fleet: Fleet,
  area: string,
  a: { bytes: Buffer; ref: ArtifactRef },
): Promise<void> {
  const res = await fleet.fetch(`${first(fleet, area).url}/api/v1/artifacts/${a.ref.sha256}?offset=0`, {
    method: 'PUT',
    headers: {
      ...fleet.apiHeaders(area),
      'content-type': 'application/octet-stream',
      [ARTIFACT_REF_HEADER]: Buffer.from(JSON.stringify(a.ref)).toString('base64url'),
    },
    body: a.bytes,
  });
  assert.ok(res.ok, `upload: ${res.status} ${await res.text()}`);
}

/** POST /api/v1/agents/desired-state for one agent; asserts the agent accepted it. */
export async function pushDesired(
  fleet: Fleet,
  area: string,
  agentCode: string,
  desired: DesiredStateInput,
): Promise<DistributionStatus | undefined> {
  const r = await fleet.api<{ results: { success: boolean; status?: DistributionStatus }[] }>(
    first(fleet, area),
    'POST',
    '/api/v1/agents/desired-state',
    { items: [{ agent_code: agentCode, desired }] },
  );
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.equal(r.body.results[0]?.success, true, JSON.stringify(r.body));
  return r.body.results[0]?.status;
}

export interface ListedAgent {
  agent_code: string;
  status: string;
  version: string;
  distribution?: DistributionStatus;
}

/** The agent as the controller lists it (GET /api/v1/agents). */
export async function listedAgent(
  fleet: Fleet,
  area: string,
  code: string,
): Promise<ListedAgent | undefined> {
  const r = await fleet.api<{ agents: ListedAgent[] }>(first(fleet, area), 'GET', '/api/v1/agents');
  return r.body.agents.find((a) => a.agent_code === code);
}

/** One sample of the controller's Prometheus text (0 when absent). */
export async function controllerMetric(
  fleet: Fleet,
  area: string,
  name: string,
  labels = '',
): Promise<number> {
  const res = await fleet.fetch(`${first(fleet, area).url}/metrics`, { headers: fleet.apiHeaders(area) });
  const line = (await res.text()).split('\n').find((l) => l.startsWith(`${name}${labels} `));
  return line ? Number(line.split(' ')[1]) : 0;
}
