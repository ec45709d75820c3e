/**
 * Agents as the API serves them: the aggregated view across every area (filter, search, sort,
 * paginate — from memory, see fleet-view.ts), one agent by code (device → area → the area's
 * controllers → the agent, joined with its device), and its packages, health and metrics
 * through the controller that holds it.
 */
import {
  ForbiddenError,
  type ConfigFileContent,
  type ConfigFileList,
  type AgentHealth,
  type AgentPackagesResponse,
  type ServiceMetrics,
  type SystemMetrics,
} from '@opsplane/models';
import {
  roleAtLeast,
  type AgentDetail,
  type AgentListQuery,
  type AgentListResponse,
  type AgentSortField,
  type MetricsHistory,
  type MetricsHistoryQuery,
  type ServiceMetricsQuery,
} from '@opsplane/api';
import type { Logger } from '@opsplane/kit';
import type { Caller } from './accounts.js';
import { toDevice } from './devices.js';
import { toAgentView } from './fleet-view.js';
import type { PlatformServices } from './platform.js';
import { requireInAreas, type AreaAccess } from './access.js';
import type { MetricsHistoryService } from './metrics-history.js';

export class AgentService {
  constructor(
    private readonly platform: PlatformServices,
    private readonly logger: Logger,
    private readonly history?: MetricsHistoryService,
  ) {}

  /** The aggregated view; `refresh` (operators) rebuilds it first. */
  async list(caller: Caller, q: AgentListQuery): Promise<AgentListResponse> {
    const { view } = this.platform;
    if (q.refresh) {
      if (!roleAtLeast(caller.role, 'operator'))
        throw new ForbiddenError(`refresh=true needs the operator role; you act as ${caller.role}`);
      await view.refresh().catch((err: unknown) => this.logger.warn({ err }, 'forced refresh failed'));
    }
    const desc = q.sort.startsWith('-') ? true : q.order === 'desc';
    const sort = q.sort.replace(/^-/, '') as AgentSortField;
    const r = view.query({ ...q, sort, desc });
    return {
      agents: r.agents,
      total: r.total,
      page: q.page,
      pageSize: q.pageSize,
      refreshed_at: r.refreshedAt?.toISOString() ?? null,
      stale: r.stale,
      refreshing: r.refreshing,
      errors: r.errors,
    };
  }

  /** The guide's GetAgentByCode: live from the controller, joined with the device. */
  async byCode(code: string): Promise<AgentDetail> {
    const { value, location, controller } = await this.platform.onAgent(code, (c, signal) =>
      c.getAgent(code, signal),
    );
    const device = location.device;
    const view = toAgentView(
      {
        id: value.id,
        agent_code: value.agent_code || value.id,
        area: location.area,
        controller_id: value.controller_id || controller.controller.id,
        address: value.address,
        hostname: value.hostname,
        status: value.status,
        health_status: value.health_status,
        service_count: value.services.length,
        last_heartbeat: value.last_heartbeat,
        version: value.version,
        agent: value,
      },
      device ? { id: device.id, name: device.name, area: device.functionArea, ip: device.ip } : undefined,
    );
    return { ...view, device: device ? toDevice(device) : null };
  }

  async packages(code: string): Promise<AgentPackagesResponse> {
    return (await this.platform.onAgent(code, (c, s) => c.getAgentPackages(code, s))).value;
  }

  async health(code: string): Promise<AgentHealth> {
    return (await this.platform.onAgent(code, (c, s) => c.getAgentHealth(code, s))).value;
  }

  async systemMetrics(code: string): Promise<SystemMetrics> {
    return (await this.platform.onAgent(code, (c, s) => c.getSystemMetrics(code, s))).value;
  }

  async serviceMetrics(code: string, q: ServiceMetricsQuery): Promise<ServiceMetrics> {
    const opts = {
      ...(q.package ? { package: q.package } : {}),
      ...(q.running_only !== undefined ? { runningOnly: q.running_only } : {}),
    };
    return (await this.platform.onAgent(code, (c, s) => c.getServiceMetrics(code, opts, s))).value;
  }

  async metricsHistory(code: string, q: MetricsHistoryQuery): Promise<MetricsHistory> {
    if (!this.history) throw new ForbiddenError('metrics history is not kept by this server');
    return this.history.history(code, q);
  }

  /** The files of a package's config dir; operators of the agent's area only (configs may hold secrets). */
  async configFiles(caller: AreaAccess, code: string, pkg: string): Promise<ConfigFileList> {
    const { area } = await this.platform.locate(code);
    requireInAreas(caller, [area], 'operator', "reading an agent's config files");
    return (await this.platform.onAgent(code, (c, s) => c.listConfigFiles(code, pkg, s))).value;
  }

  async configFile(caller: AreaAccess, code: string, pkg: string, file: string): Promise<ConfigFileContent> {
    const { area } = await this.platform.locate(code);
    requireInAreas(caller, [area], 'operator', "reading an agent's config files");
    return (await this.platform.onAgent(code, (c, s) => c.readConfigFile(code, pkg, file, s))).value;
  }
}
