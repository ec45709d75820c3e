/**
 * The server's wire shapes, as far as the UI reads them (packages/server/src/api/schemas and
 * @opsplane/models). Declared here rather than imported: the browser code depends on nothing
 * but the DOM, and only what the UI shows is listed.
 */

export type Role = 'viewer' | 'operator' | 'admin';

export interface ErrorBody {
  error?: { code?: string; message?: string };
}

export interface Me {
  user: { id: string; username: string; role: Role };
  role: Role;
  auth: string;
  session_expires_at?: string;
}

export interface Paged {
  total: number;
  page: number;
  pageSize: number;
}

export interface ViewError {
  area: string;
  controller_id: string;
  code: string;
  message: string;
}

export interface PackageStatus {
  name: string;
  version: string;
  is_running: boolean;
  duration: number;
  status?: string;
  pid?: number;
  restarts?: number;
  uptime_seconds?: number;
  health_status?: string;
  last_error?: string;
}

export interface AgentView {
  id: string;
  agent_code: string;
  area: string;
  controller_id: string;
  device_id: string | null;
  device_name: string | null;
  address: string;
  hostname: string;
  status: string;
  health_status: string;
  service_count: number;
  last_heartbeat: string;
  register_time: string;
  version: string;
  labels: Record<string, string>;
  zone?: string;
  mode?: string;
  group?: string;
  deployment?: string;
  os?: string;
  arch?: string;
}

export interface AgentList extends Paged {
  agents: AgentView[];
  refreshed_at: string | null;
  stale: boolean;
  refreshing: boolean;
  errors: ViewError[];
}

export interface AgentDetail extends AgentView {
  device: Device | null;
}

export interface AgentPackages {
  agent_id: string;
  packages: PackageStatus[];
}

export interface ServiceHealth {
  name: string;
  status: string;
  message: string;
  check_type?: string;
  /** Absent when a Go agent reported no check time. */
  checked_at?: string;
  latency_ms?: number;
  consecutive_failures?: number;
}

export interface AgentHealth {
  agent_id: string;
  overall_status: string;
  services: Record<string, ServiceHealth>;
  checked_at: string;
}

export interface SystemMetrics {
  agent_id: string;
  cpu_percent: number;
  cpu_count?: number;
  load_average: { load1: number; load5: number; load15: number };
  memory: { total_bytes: number; used_bytes: number; available_bytes?: number; used_percent?: number };
  disks: {
    mount: string;
    filesystem?: string;
    total_bytes: number;
    used_bytes: number;
    used_percent?: number;
  }[];
  network: { rx_bytes: number; tx_bytes: number };
  /** Go agents do not report it. */
  uptime_seconds?: number;
  collected_at: string;
}

export interface LiveController {
  area: string;
  id: string;
  address: string;
  status: string;
  /** `go` for a Go controller's registration. */
  flavor: string;
  version: string;
  agent_count: number;
  last_heartbeat: string;
  start_time: string;
  listed_agents: number | null;
  last_error: { code: string; message: string } | null;
}

export interface ControllerList {
  controllers: LiveController[];
  total: number;
  discovery: { synced: boolean; watching: boolean; revision: string; last_error: string | null };
}

export interface Area {
  name: string;
  controllers: number;
  controllers_online: number;
  devices: number;
  agents: number;
}

export interface Device {
  id: string;
  name: string;
  ip: string;
  function_area: string;
  status: string;
  agent_code: string;
  agent_version: string;
  os: string;
  arch: string;
  login_method: string;
}

export interface DeviceList extends Paged {
  devices: Device[];
}

export interface BatchResult {
  agent_code: string;
  package: string;
  area: string | null;
  success: boolean;
  error?: string;
  message?: string;
}

export interface BatchJob {
  id: string;
  action: string;
  status: 'running' | 'done' | 'failed' | 'interrupted';
  total: number;
  success: number;
  failed: number;
  results?: BatchResult[];
}

export interface DeploymentStep {
  name: string;
  status: string;
  started_at: string | null;
  finished_at: string | null;
  message: string | null;
}

export interface DeploymentLogLine {
  seq: number;
  at: string;
  level: 'info' | 'warn' | 'error';
  step: string | null;
  message: string;
}

export interface Deployment {
  id: string;
  rollout_id: string;
  type: string;
  device_id: string | null;
  device_name: string;
  area: string;
  version: string;
  status: string;
  attempt: number;
  retry_of: string | null;
  cancel_requested: boolean;
  steps: DeploymentStep[];
  error: string | null;
  error_code: string | null;
  requested_by: string;
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
  duration_ms: number | null;
  log?: DeploymentLogLine[];
}

export interface DeploymentList extends Paged {
  items: Deployment[];
}

export interface Rollout {
  id: string;
  type: string;
  version: string;
  batch_size: number;
  max_failures: number;
  status: string;
  requested_by: string;
  created_at: string;
  finished_at: string | null;
  counts: {
    total: number;
    queued: number;
    running: number;
    succeeded: number;
    failed: number;
    cancelled: number;
  };
  deployments: Deployment[];
}

export interface AgentBundle {
  version: string;
  default: boolean;
}

export const ALERT_KINDS = [
  'controller_offline',
  'agent_offline',
  'package_unhealthy',
  'deployment_failed',
] as const;
export type AlertKind = (typeof ALERT_KINDS)[number];
export type AlertSeverity = 'critical' | 'warning';
export type AlertStatus = 'firing' | 'resolved';

/** GET /alerts/{id}, an item of GET /alerts, and the answer of POST /alerts/{id}/ack. */
export interface Alert {
  id: string;
  kind: AlertKind;
  severity: AlertSeverity;
  /** controller:<area>/<id>, agent:<code>, package:<code>/<name> or deployment:<id>. */
  subject: string;
  /** '' when the subject has no area. */
  area: string;
  title: string;
  message: string;
  /** e.g. agent_code, controller_id, package, deployment_id, rollout_id, device_name. */
  labels: Record<string, string>;
  status: AlertStatus;
  /** When the condition was first observed (before any pending_for delay). */
  first_seen: string;
  /** The last evaluation that still found the condition. */
  last_seen: string;
  resolved_at: string | null;
  acknowledged_by: string | null;
  acknowledged_at: string | null;
}

export interface AlertList extends Paged {
  items: Alert[];
}
