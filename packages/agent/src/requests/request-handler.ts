/**
 * Maps controller requests to local actions. This is the whole attack surface a controller has:
 * the ops of AgentRequestSchema, on packages named in local manifests — never a command line.
 * Every result is checked against AgentResultSchemas before it goes on the wire.
 */
import { AgentResultSchemas, formatIssues, type AgentRequest, type PackageOpResult } from '@opsplane/models';
import type { Logger } from '../log.js';
import type { RequestOutcome } from '../connection/controller-link.js';
import type { ServiceMetricsCollector } from '../metrics/service-metrics.js';
import type { OperationJournal } from '../operations/operation-journal.js';
import type { SystemMetricsCollector } from '../metrics/system-metrics.js';
import { applyConfigUpdate } from '../packages/config-writer.js';
import { ConfigReadError, listConfigFiles, readConfigFile } from '../packages/config-reader.js';
import type { Supervisor } from '../packages/supervisor.js';
import type { Converger } from '../distribution/converger.js';

export interface RequestHandlerDeps {
  agentId: string;
  supervisor: Supervisor;
  system: SystemMetricsCollector;
  services: ServiceMetricsCollector;
  /** Operations that carry an id are journaled here: the same id never acts twice. */
  journal: OperationJournal;
  logger: Logger;
  onHandled?: (op: string, ok: boolean) => void;
  /** Convergence on desired states (the `desired_state` and `distribution` ops). */
  distribution: Converger;
}

const notFound = (pkg: string): RequestOutcome => ({
  ok: false,
  error: { code: 'package_not_found', message: `no package '${pkg}' on this agent` },
});

/** Health-verdict budget for a config update that must answer within `timeoutMs` (two waits). */
export function configBudgetMs(timeoutMs: number | undefined): number | undefined {
  return timeoutMs === undefined ? undefined : Math.max(1000, Math.floor((timeoutMs - 2000) / 2));
}

export function createRequestHandler(deps: RequestHandlerDeps) {
  const { supervisor: sup } = deps;

  /** Runs one package's operation, journaled under `operationId` when there is one, and timed. */
  async function once(
    operationId: string | undefined,
    pkg: string,
    action: string,
    act: () => Promise<PackageOpResult>,
  ): Promise<PackageOpResult> {
    const timed = async () => {
      const t0 = performance.now();
      const r = await act();
      return { ...r, duration_ms: Math.round(performance.now() - t0) };
    };
    return operationId === undefined ? timed() : deps.journal.run(operationId, pkg, action, timed);
  }

  async function run(req: AgentRequest, timeoutMs: number | undefined): Promise<RequestOutcome> {
    switch (req.op) {
      case 'action': {
        const names = req.packages.length > 0 ? [...new Set(req.packages)] : sup.names();
        const results = await Promise.all(
          names.map((name) =>
            once(req.operation_id, name, req.action, async () => {
              const [r] = await sup.action(req.action, [name]);
              return r ?? { package: name, success: false, error: 'internal: no result' };
            }),
          ),
        );
        return { ok: true, result: { results } };
      }
      case 'configs': {
        const budgetMs = configBudgetMs(timeoutMs);
        const r = await once(req.operation_id, req.package, 'configs', () =>
          applyConfigUpdate(
            sup,
            {
              package: req.package,
              configs: req.configs,
              ...(req.config_file !== undefined ? { config_file: req.config_file } : {}),
            },
            { logger: deps.logger, ...(budgetMs !== undefined ? { budgetMs } : {}) },
          ),
        );
        return { ok: true, result: { results: [r] } };
      }
      case 'operations':
        return { ok: true, result: { entries: deps.journal.list(req.operation_id, req.packages) } };
      case 'packages':
        return { ok: true, result: { packages: sup.list() } };
      case 'health':
        return { ok: true, result: sup.health(deps.agentId) };
      case 'health_package': {
        const h = sup.packageHealth(req.package);
        return h ? { ok: true, result: h } : notFound(req.package);
      }
      case 'metrics_system':
        return { ok: true, result: await deps.system.collect() };
      case 'metrics_services': {
        if (req.package !== undefined && !sup.get(req.package)) return notFound(req.package);
        return {
          ok: true,
          result: await deps.services.collect({
            ...(req.package !== undefined ? { package: req.package } : {}),
            ...(req.running_only !== undefined ? { runningOnly: req.running_only } : {}),
          }),
        };
      }
      case 'config_files':
      case 'config_read':
        try {
          return {
            ok: true,
            result:
              req.op === 'config_files'
                ? await listConfigFiles(sup, deps.agentId, req.package)
                : await readConfigFile(sup, deps.agentId, req.package, req.file_name),
          };
        } catch (e) {
          if (e instanceof ConfigReadError) return { ok: false, error: { code: e.code, message: e.message } };
          throw e;
        }
      case 'desired_state': {
        const r = await deps.distribution.accept(req.desired);
        return r.ok ? { ok: true, result: r.status } : r;
      }
      case 'distribution':
        return {
          ok: true,
          result: deps.distribution.status() ?? {
            policy: '',
            revision: 0,
            state: 'none',
            packages: [],
            updated_at: new Date().toISOString(),
          },
        };
    }
  }

  return async (
    req: AgentRequest,
    ctx: { id: string; timeoutMs: number | undefined },
  ): Promise<RequestOutcome> => {
    const log = deps.logger.child({ request_id: ctx.id, op: req.op });
    log.debug('request');
    let outcome = await run(req, ctx.timeoutMs);
    if (outcome.ok) {
      const check = AgentResultSchemas[req.op].safeParse(outcome.result);
      if (!check.success) {
        // Our bug, not the controller's: say so rather than send a malformed result.
        log.error({ problem: formatIssues(check.error.issues) }, 'result does not match the protocol schema');
        outcome = {
          ok: false,
          error: { code: 'internal', message: `agent produced an invalid ${req.op} result` },
        };
      }
    }
    deps.onHandled?.(req.op, outcome.ok);
    return outcome;
  };
}
