/**
 * The values of the contract's enums the UI offers as choices (filters, the deploy form) and
 * counts by (the overview). No endpoint lists them (the areas do come from GET /areas), and the
 * UI imports types only, so they are written here — each as an object keyed by the contract's
 * type, which the type checker holds to exactly that type's values: a value the server adds or
 * drops fails `tsc` here instead of going missing from a dropdown.
 */
import type {
  AlertKind,
  AlertSeverity,
  AlertStatus,
  DeploymentStatus,
  DeploymentType,
  DeviceOs,
  DeviceStatus,
  RouteResponse,
} from '@opsplane/api';

export type AgentStatus = RouteResponse<'GET /agents'>['agents'][number]['status'];
export type HealthStatus = RouteResponse<'GET /agents/:code/health'>['overall_status'];

/**
 * Every value of the string union T, in the order written. T must be given: the object must
 * name each of its values, and nothing else.
 */
function allOf<T extends string = never>(values: Record<NoInfer<T>, true>): readonly T[] {
  return Object.keys(values) as T[];
}

/** True when `v` is one of `values` (for values read from the address). */
export function isOneOf<T extends string>(values: readonly T[], v: string | null | undefined): v is T {
  return v !== null && v !== undefined && (values as readonly string[]).includes(v);
}

export const ALERT_KINDS = allOf<AlertKind>({
  controller_offline: true,
  agent_offline: true,
  package_unhealthy: true,
  deployment_failed: true,
});
export const ALERT_SEVERITIES = allOf<AlertSeverity>({ critical: true, warning: true });
export const ALERT_STATUSES = allOf<AlertStatus>({ firing: true, resolved: true });

export const AGENT_STATUSES = allOf<AgentStatus>({ online: true, offline: true, unknown: true });
export const HEALTH_STATUSES = allOf<HealthStatus>({
  healthy: true,
  degraded: true,
  unhealthy: true,
  unknown: true,
});

export const DEVICE_STATUSES = allOf<DeviceStatus>({
  new: true,
  deploying: true,
  online: true,
  offline: true,
  failed: true,
  uninstalled: true,
});
export const DEVICE_OSES = allOf<DeviceOs>({ linux: true, windows: true });

export const DEPLOYMENT_TYPES = allOf<DeploymentType>({
  install: true,
  upgrade: true,
  restart: true,
  uninstall: true,
});
export const DEPLOYMENT_STATUSES = allOf<DeploymentStatus>({
  queued: true,
  running: true,
  succeeded: true,
  failed: true,
  cancelled: true,
});
