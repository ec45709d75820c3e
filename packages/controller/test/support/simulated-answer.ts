/**
 * What a simulated agent answers to each controller request, in the real agent's shapes: every
 * operation succeeds for the packages it has and fails with `package_not_found` otherwise. Shared
 * by the test FakeAgent and the benchmark's agent simulator so both speak the protocol alike.
 */
import type {
  AgentRequest,
  DesiredState,
  DistributionStatus,
  JournalEntry,
  PackageOpResult,
  PackageStatus,
} from '@opsplane/models';

/**
 * A simulated agent's operations journal (in memory): like the real agent's, an operation id
 * acts once per package and is answered from here after that. `executed` counts real actions.
 */
export class SimulatedJournal {
  readonly entries = new Map<string, JournalEntry>();
  executed = 0;
  /** The desired state it was last given (a real agent persists it). */
  desired: DesiredState | undefined;

  run(
    operationId: string | undefined,
    pkg: string,
    action: string,
    act: () => PackageOpResult,
  ): PackageOpResult {
    if (operationId === undefined) {
      this.executed++;
      return act();
    }
    const key = `${operationId}\u0000${pkg}`;
    const known = this.entries.get(key);
    if (known?.result) return { ...known.result, replayed: true };
    this.executed++;
    const result = { ...act(), reason: 'done' as const };
    const at = now();
    this.entries.set(key, {
      operation_id: operationId,
      package: pkg,
      action,
      state: 'done',
      started_at: at,
      finished_at: at,
      result: result.success ? result : { ...result, reason: 'failed_on_agent' },
    });
    return this.entries.get(key)!.result!;
  }

  list(operationId: string, packages?: readonly string[]): JournalEntry[] {
    return [...this.entries.values()].filter(
      (e) => e.operation_id === operationId && (!packages || packages.includes(e.package)),
    );
  }
}

export type SimulatedAnswer =
  { ok: true; result: unknown } | { ok: false; error: { code: string; message: string } };

const now = () => new Date().toISOString();
const notFound = (n: string) => `package_not_found: no package '${n}'`;

export function simulatedAnswer(
  agentId: string,
  packages: readonly PackageStatus[],
  req: AgentRequest,
  journal: SimulatedJournal = new SimulatedJournal(),
): SimulatedAnswer {
  const has = (n: string) => packages.some((p) => p.name === n);
  switch (req.op) {
    case 'action': {
      const names = req.packages.length > 0 ? req.packages : packages.map((p) => p.name);
      return {
        ok: true,
        result: {
          results: names.map((n) =>
            journal.run(req.operation_id, n, req.action, () =>
              has(n)
                ? { package: n, success: true, message: `${req.action} ${n} done` }
                : { package: n, success: false, error: notFound(n) },
            ),
          ),
        },
      };
    }
    case 'configs':
      return {
        ok: true,
        result: {
          results: [
            journal.run(req.operation_id, req.package, 'configs', () =>
              has(req.package)
                ? { package: req.package, success: true, message: `wrote ${req.configs.length} file(s)` }
                : { package: req.package, success: false, error: notFound(req.package) },
            ),
          ],
        },
      };
    case 'operations':
      return { ok: true, result: { entries: journal.list(req.operation_id, req.packages) } };
    case 'packages':
      return { ok: true, result: { packages } };
    case 'health':
      return {
        ok: true,
        result: {
          agent_id: agentId,
          overall_status: 'healthy',
          services: Object.fromEntries(
            packages.map((p) => [
              p.name,
              { name: p.name, status: 'healthy', message: 'ok', checked_at: now() },
            ]),
          ),
          checked_at: now(),
        },
      };
    case 'health_package':
      return has(req.package)
        ? {
            ok: true,
            result: {
              name: req.package,
              status: 'healthy',
              message: 'ok',
              check_type: 'process',
              checked_at: now(),
            },
          }
        : { ok: false, error: { code: 'package_not_found', message: `no package '${req.package}'` } };
    case 'metrics_system':
      return {
        ok: true,
        result: {
          agent_id: agentId,
          cpu_percent: 12.5,
          load_average: { load1: 0.5, load5: 0.4, load15: 0.3 },
          memory: { total_bytes: 8e9, used_bytes: 2e9 },
          disks: [{ mount: '/', total_bytes: 1e11, used_bytes: 5e10 }],
          network: { rx_bytes: 1000, tx_bytes: 2000 },
          uptime_seconds: 3600,
          collected_at: now(),
        },
      };
    case 'metrics_services':
      return {
        ok: true,
        result: {
          agent_id: agentId,
          services: packages.map((p) => ({
            name: p.name,
            is_running: p.is_running,
            ...(p.is_running ? { pid: 1234 } : {}),
            cpu_percent: 1.5,
            rss_bytes: 1e6,
            restarts: 0,
            uptime_seconds: 100,
          })),
          collected_at: now(),
        },
      };
    case 'config_files':
      return has(req.package)
        ? {
            ok: true,
            result: {
              agent_id: agentId,
              package: req.package,
              files: [{ file_name: `${req.package}.yaml`, bytes: 12, modified_at: now() }],
            },
          }
        : { ok: false, error: { code: 'package_not_found', message: `no package '${req.package}'` } };
    case 'config_read':
      return has(req.package)
        ? {
            ok: true,
            result: {
              agent_id: agentId,
              package: req.package,
              file_name: req.file_name,
              exists: req.file_name === `${req.package}.yaml`,
              content: req.file_name === `${req.package}.yaml` ? 'simulated: 1\n' : '',
              bytes: req.file_name === `${req.package}.yaml` ? 13 : 0,
              sha256: '',
              modified_at: null,
            },
          }
        : { ok: false, error: { code: 'package_not_found', message: `no package '${req.package}'` } };
    case 'desired_state': {
      // Accepted (persisted) like a real agent does, never converged: state `applying`.
      const held = journal.desired;
      if (held && held.policy === req.desired.policy && req.desired.revision < held.revision) {
        return {
          ok: false,
          error: {
            code: 'stale_revision',
            message: `revision ${req.desired.revision} is older than the held ${held.revision}`,
          },
        };
      }
      journal.desired = req.desired;
      return { ok: true, result: simulatedDistribution(req.desired) };
    }
    case 'distribution':
      return journal.desired
        ? { ok: true, result: simulatedDistribution(journal.desired) }
        : { ok: true, result: { policy: '', revision: 0, state: 'none', packages: [], updated_at: now() } };
  }
}

/** What a simulated agent reports for a desired state it holds: accepted, applying. */
export function simulatedDistribution(d: DesiredState): DistributionStatus {
  return {
    policy: d.policy,
    revision: d.revision,
    state: 'applying',
    packages: d.packages.map((p) => ({
      name: p.name,
      desired_version: p.version,
      version: '',
      state: 'applying' as const,
      rolled_back: false,
      config_hash: '',
      drift: false,
    })),
    updated_at: now(),
  };
}
