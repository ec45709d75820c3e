/**
 * Desired state, computed: which policy an agent follows (the highest-priority one matching its
 * area and labels; ties to the older policy) and the DesiredState a policy revision gives it,
 * with each package's artifact chosen by name, version and the agent's os/arch (an exact match
 * before 'any'). Pure over what it is handed, except the artifact look-ups (cached per run).
 */
import { configHash, OpsplaneError, type ArtifactRef, type DesiredState } from '@opsplane/models';
import { AGENT_ARTIFACT_NAME, matchesSelector, parseSelector, type PolicySpec } from '@opsplane/api';
import type { ArtifactRow } from '../storage/distribution-schema.js';
import type { Store } from '../storage/store.js';
import { refOf } from './artifacts.js';

/** A policy as matching needs it: the spec of the revision that applies. */
export interface MatchablePolicy {
  id: string;
  createdAt: Date;
  spec: PolicySpec;
}

export interface AgentFacts {
  agent_code: string;
  area: string;
  labels: Readonly<Record<string, string>>;
  os?: string | undefined;
  arch?: string | undefined;
}

export function policyMatches(spec: PolicySpec, agent: AgentFacts): boolean {
  if (spec.areas.length > 0 && !spec.areas.includes(agent.area)) return false;
  return matchesSelector(parseSelector(spec.selector), agent.labels);
}

/** The policy the agent follows among `policies`, or undefined. */
export function policyFor<P extends MatchablePolicy>(
  agent: AgentFacts,
  policies: readonly P[],
): P | undefined {
  let best: P | undefined;
  for (const p of policies) {
    if (!policyMatches(p.spec, agent)) continue;
    if (
      !best ||
      p.spec.priority > best.spec.priority ||
      (p.spec.priority === best.spec.priority &&
        (p.createdAt < best.createdAt ||
          (p.createdAt.getTime() === best.createdAt.getTime() && p.id < best.id)))
    )
      best = p;
  }
  return best;
}

/** The agent's os/arch in artifact terms ('' when unknown). */
export function platformOf(agent: AgentFacts): { os: string; arch: string } {
  const os = agent.os === 'win32' ? 'windows' : (agent.os ?? '');
  const arch = agent.arch === 'amd64' ? 'x64' : agent.arch === 'aarch64' ? 'arm64' : (agent.arch ?? '');
  return { os, arch };
}

/** The best artifact for the platform: exact os and arch first, 'any' after; undefined when none fits. */
export function pickArtifact(
  rows: readonly ArtifactRow[],
  os: string,
  arch: string,
): ArtifactRow | undefined {
  const score = (r: ArtifactRow) =>
    (r.os === os ? 2 : r.os === 'any' ? 1 : -10) + (r.arch === arch ? 2 : r.arch === 'any' ? 1 : -10);
  let best: ArtifactRow | undefined;
  for (const r of rows) if (score(r) > 0 && (!best || score(r) > score(best))) best = r;
  return best;
}

export class DesiredStateError extends OpsplaneError {
  constructor(message: string) {
    super('artifact_not_found', message, { status: 422 });
  }
}

/** Builds desired states, caching artifact look-ups (make one per run). */
export class DesiredStateBuilder {
  private readonly candidates = new Map<string, Promise<ArtifactRow[]>>();

  constructor(private readonly store: Store) {}

  private rows(kind: string, name: string, version: string): Promise<ArtifactRow[]> {
    const key = `${kind}/${name}/${version}`;
    let p = this.candidates.get(key);
    if (!p) {
      p = this.store.artifacts.candidates(kind, name, version);
      this.candidates.set(key, p);
    }
    return p;
  }

  async artifact(kind: string, name: string, version: string, agent: AgentFacts): Promise<ArtifactRef> {
    const { os, arch } = platformOf(agent);
    const row = pickArtifact(await this.rows(kind, name, version), os, arch);
    if (!row)
      throw new DesiredStateError(
        `no ${kind} artifact ${name} ${version} for ${os || '?'}/${arch || '?'} (agent ${agent.agent_code})`,
      );
    return refOf(row);
  }

  async build(
    policyId: string,
    revision: number,
    spec: PolicySpec,
    agent: AgentFacts,
  ): Promise<DesiredState> {
    const packages = [];
    for (const p of spec.packages) {
      packages.push({
        name: p.name,
        version: p.version,
        artifact: await this.artifact('package', p.name, p.version, agent),
        configs: p.configs,
        config_hash: p.configs.length > 0 ? configHash(p.configs) : '',
      });
    }
    const desired: DesiredState = {
      policy: policyId,
      revision,
      packages,
      correct_drift: spec.correct_drift,
      health_timeout_ms: spec.health_timeout_ms,
    };
    if (spec.agent_version)
      desired.agent = {
        version: spec.agent_version,
        artifact: await this.artifact('agent', AGENT_ARTIFACT_NAME, spec.agent_version, agent),
      };
    return desired;
  }
}
