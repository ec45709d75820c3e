/**
 * What a simulated agent answers to each controller request, in the real agent's shapes: every
 * operation succeeds for the packages it has and fails with `package_not_found` otherwise. Shared
 * by the test FakeAgent and the benchmark's agent simulator so both speak the protocol alike.
 */
import type { AgentRequest, PackageStatus } from '@opsplane/models';

export type SimulatedAnswer =
  { ok: true; result: unknown } | { ok: false; error: { code: string; message: string } };

const now = () => new Date().toISOString();
const notFound = (n: string) => `package_not_found: no package '${n}'`;

export function simulatedAnswer(
  agentId: string,
  packages: readonly PackageStatus[],
  req: AgentRequest,
): SimulatedAnswer {
  const has = (n: string) => packages.some((p) => p.name === n);
  switch (req.op) {
    case 'action': {
      const names = req.packages.length > 0 ? req.packages : packages.map((p) => p.name);
      return {
        ok: true,
        result: {
          results: names.map((n) =>
            has(n)
              ? { package: n, success: true, message: `${req.action} ${n} done` }
              : { package: n, success: false, error: notFound(n) },
          ),
        },
      };
    }
    case 'configs':
      return {
        ok: true,
        result: {
          results: [
            has(req.package)
              ? { package: req.package, success: true, message: `wrote ${req.configs.length} file(s)` }
              : { package: req.package, success: false, error: notFound(req.package) },
          ],
        },
      };
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
  }
}
