/**
 * The state rules of the alert engine, as functions of what discovery and the agent view say
 * now: which subjects are in a bad state (conditions) and which are unknown (held — neither
 * fired nor resolved, so that an unreadable area or an unsynced discovery resolves nothing and
 * pages nobody). The engine turns conditions into alerts (pending_for, firing, resolving).
 *
 * - controller_offline (critical): discovery lists the controller offline (stale heartbeat), or
 *   it left discovery after this server saw it (or while its alert fired).
 * - agent_offline (critical): the view lists the agent offline and it is expected to run — it
 *   belongs to a device, was seen online by this server, or already fires. Codes nobody ever
 *   saw online (old records controllers retain) do not alert. Devices being deployed are held;
 *   uninstalled ones are not expected.
 * - package_unhealthy (warning): an online agent reports the package failed or unhealthy.
 */
import type { Controller } from '@opsplane/models';
import type { AgentView, AlertKind, AlertSeverity } from '@opsplane/api';
import type { AlertRow } from '../storage/schema.js';
import type { NewAlert } from '../storage/alerts-repo.js';

/** A subject in a bad state, as the rules see it (what the engine fires). */
export type Condition = Omit<NewAlert, 'firstSeen' | 'kind' | 'severity'> & {
  kind: AlertKind;
  severity: AlertSeverity;
};

export interface RuleResult {
  conditions: Condition[];
  /** True for a subject whose state cannot be told now. */
  held(subject: string): boolean;
}

export interface SeenController {
  area: string;
  id: string;
  address: string;
}

/** What the engine keeps of one build of the agent view (recomputed only when the view changes). */
export interface AgentScan {
  offline: AgentView[];
  badPackages: { agent: AgentView; name: string; status: string; health: string; error: string }[];
  /** Agents whose own state is unknown (their area could not be listed, or status unknown). */
  heldAgents: Set<string>;
  /** Agents whose packages' state is unknown (not online, or held). */
  heldPackages: Set<string>;
  /** Agents seen online for the first time in this scan. */
  newlySeen: string[];
}

const subjectOf = {
  controller: (area: string, id: string) => `controller:${area}/${id}`,
  agent: (code: string) => `agent:${code}`,
  package: (code: string, name: string) => `package:${code}/${name}`,
};
export { subjectOf };

const nothingHeld = () => false;
const allHeld = () => true;

export function controllerRule(
  discovery: { synced: boolean; controllers: readonly Controller[] },
  seen: Map<string, SeenController>,
  firing: readonly AlertRow[],
): RuleResult {
  // Before the first sync, discovery knows nothing: absent is not gone.
  if (!discovery.synced) return { conditions: [], held: allHeld };
  const conditions: Condition[] = [];
  const listed = new Set<string>();
  for (const c of discovery.controllers) {
    const key = `${c.area}/${c.id}`;
    listed.add(key);
    seen.set(key, { area: c.area, id: c.id, address: c.address });
    if (c.status === 'offline') {
      conditions.push(
        controllerCondition(
          { area: c.area, id: c.id, address: c.address },
          `its heartbeat is stale (last ${c.last_heartbeat}); its etcd registration is still there`,
        ),
      );
    }
  }
  // A firing alert of a controller gone while this server was down still counts as seen.
  for (const a of firing) {
    const { area, controller_id: id, address } = a.labels;
    if (
      a.kind === 'controller_offline' &&
      area !== undefined &&
      id !== undefined &&
      !seen.has(`${area}/${id}`)
    )
      seen.set(`${area}/${id}`, { area, id, address: address ?? '' });
  }
  for (const [key, c] of seen) {
    if (listed.has(key)) continue;
    conditions.push(
      controllerCondition(c, 'it left discovery: its etcd registration expired (lease lost) or was deleted'),
    );
  }
  return { conditions, held: nothingHeld };
}

function controllerCondition(c: SeenController, why: string): Condition {
  return {
    kind: 'controller_offline',
    severity: 'critical',
    subject: subjectOf.controller(c.area, c.id),
    area: c.area,
    title: `Controller ${c.area}/${c.id} is offline`,
    message: `Controller ${c.id} of area ${c.area} (${c.address}) is offline: ${why}.`,
    labels: { area: c.area, controller_id: c.id, address: c.address },
  };
}

/** One pass over a build of the view; also records which agents were seen online. */
export function scanAgents(
  agents: readonly AgentView[],
  errorAreas: ReadonlySet<string>,
  seenOnline: Set<string>,
): AgentScan {
  const scan: AgentScan = {
    offline: [],
    badPackages: [],
    heldAgents: new Set(),
    heldPackages: new Set(),
    newlySeen: [],
  };
  for (const a of agents) {
    if (errorAreas.has(a.area) || a.status === 'unknown') {
      scan.heldAgents.add(a.agent_code);
      scan.heldPackages.add(a.agent_code);
      continue;
    }
    if (a.status !== 'online') {
      scan.offline.push(a);
      scan.heldPackages.add(a.agent_code);
      continue;
    }
    if (!seenOnline.has(a.agent_code)) {
      seenOnline.add(a.agent_code);
      scan.newlySeen.push(a.agent_code);
    }
    for (const s of a.services) {
      const health = s.health_status ?? 'unknown';
      if (s.status === 'failed' || health === 'unhealthy')
        scan.badPackages.push({
          agent: a,
          name: s.name,
          status: s.status ?? (s.is_running ? 'running' : 'stopped'),
          health,
          error: s.last_error ?? '',
        });
    }
  }
  return scan;
}

export interface AgentRuleInput {
  scan: AgentScan | undefined;
  seenOnline: ReadonlySet<string>;
  firing: readonly AlertRow[];
  /** Is the agent in the current view at all? */
  listed(code: string): boolean;
  deviceStatuses(codes: readonly string[]): Promise<Map<string, string>>;
}

const agentLabels = (a: AgentView): Record<string, string> => ({
  area: a.area,
  agent_code: a.agent_code,
  controller_id: a.controller_id,
  hostname: a.hostname,
  ...(a.device_id ? { device_id: a.device_id } : {}),
  ...(a.device_name ? { device_name: a.device_name } : {}),
});

/** agent_offline and package_unhealthy. */
export async function agentRules(input: AgentRuleInput): Promise<RuleResult> {
  const { scan } = input;
  // No usable build of the view (never built, refresh failed, discovery unsynced): unknown.
  if (!scan) return { conditions: [], held: (s) => s.startsWith('agent:') || s.startsWith('package:') };
  const firingAgents = input.firing.filter((a) => a.kind === 'agent_offline');
  const firingSubjects = new Set(firingAgents.map((a) => a.subject));
  const unlisted = firingAgents.map((a) => a.labels.agent_code ?? '').filter((c) => c && !input.listed(c));
  const statuses = await input.deviceStatuses([...scan.offline.map((a) => a.agent_code), ...unlisted]);
  const held = new Set<string>();
  const conditions: Condition[] = [];
  for (const a of scan.offline) {
    const code = a.agent_code;
    const device = statuses.get(code);
    // A deployment restarts or replaces the agent: its state says nothing until it is done.
    if (device === 'deploying') held.add(subjectOf.agent(code));
    if (device === 'deploying' || device === 'uninstalled') continue;
    const expected =
      device !== undefined || input.seenOnline.has(code) || firingSubjects.has(subjectOf.agent(code));
    if (!expected) continue;
    conditions.push({
      kind: 'agent_offline',
      severity: 'critical',
      subject: subjectOf.agent(code),
      area: a.area,
      title: `Agent ${code}${a.device_name ? ` (${a.device_name})` : ''} is offline`,
      message:
        `Controller ${a.controller_id} of area ${a.area} lists agent ${code} (host ${a.hostname || '?'}) offline; ` +
        `last heartbeat ${a.last_heartbeat}.`,
      labels: agentLabels(a),
    });
  }
  // Firing, but no controller lists it any more (offline record expired, or its controllers are
  // gone): still expected while its device exists, so keep it firing rather than claim recovery.
  for (const code of unlisted) {
    const device = statuses.get(code);
    if (device !== undefined && device !== 'uninstalled') held.add(subjectOf.agent(code));
  }
  for (const p of scan.badPackages) {
    const code = p.agent.agent_code;
    const state = p.status === 'failed' ? 'failed' : `unhealthy (${p.status})`;
    conditions.push({
      kind: 'package_unhealthy',
      severity: 'warning',
      subject: subjectOf.package(code, p.name),
      area: p.agent.area,
      title: `Package ${p.name} on agent ${code} is ${p.status === 'failed' ? 'failed' : 'unhealthy'}`,
      message:
        `Package ${p.name} on agent ${code}${p.agent.device_name ? ` (${p.agent.device_name})` : ''} is ${state}, ` +
        `health ${p.health}${p.error ? `: ${p.error}` : ''}.`,
      labels: { ...agentLabels(p.agent), package: p.name, status: p.status, health_status: p.health },
    });
  }
  return {
    conditions,
    held: (s) => {
      if (held.has(s)) return true;
      if (s.startsWith('agent:')) return scan.heldAgents.has(s.slice('agent:'.length));
      if (s.startsWith('package:')) {
        const rest = s.slice('package:'.length);
        return scan.heldPackages.has(rest.slice(0, rest.lastIndexOf('/')));
      }
      return false;
    },
  };
}

/** Which kinds each rule speaks for (alerts of a kind no rule evaluated are left alone). */
export const STATE_KINDS: readonly AlertKind[] = ['controller_offline', 'agent_offline', 'package_unhealthy'];
