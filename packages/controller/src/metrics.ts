/**
 * Prometheus metrics of one controller. A private Registry per controller (not prom-client's
 * global one) so that several controllers in one process — tests — do not collide.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export interface ControllerMetrics {
  readonly registry: Registry;
  readonly heartbeats: Counter;
  readonly connections: Counter<'outcome'>;
  readonly batchResults: Counter<'op' | 'outcome'>;
  readonly batchDuration: Histogram<'op'>;
  readonly httpDuration: Histogram<'method' | 'route' | 'status_code'>;
  readonly forwarded: Counter<'kind' | 'outcome'>;
  /** Artifact bytes sent to agents. */
  readonly artifactBytesServed: Counter;
  /** Agent downloads by outcome (hit: whole artifact, resumed: a Range request, not_found, refused). */
  readonly artifactDownloads: Counter<'outcome'>;
  /** Artifact bytes received from the platform. */
  readonly artifactBytesReceived: Counter;
  /** Upload requests by outcome (complete, partial, already_complete, offset_mismatch, busy, invalid, too_large). */
  readonly artifactUploads: Counter<'outcome'>;
  /** Artifacts refused by verification, by code (artifact_invalid, artifact_bad_signature, …). */
  readonly artifactVerificationFailures: Counter<'code'>;
  /** Time agent downloads waited for the bandwidth limit (summed over downloads). */
  readonly artifactThrottledSeconds: Counter;
  /** Desired states handed to agents, by outcome (accepted, refused, not_connected, failed). */
  readonly desiredStates: Counter<'outcome'>;
}

export function createMetrics(
  sources: { connected: () => number; known: () => number },
  opts: { defaultMetrics?: boolean } = {},
): ControllerMetrics {
  const registry = new Registry();
  if (opts.defaultMetrics ?? true)
    collectDefaultMetrics({ register: registry, prefix: 'opsplane_controller_' });
  new Gauge({
    name: 'opsplane_controller_connected_agents',
    help: 'Agents with a live connection to this controller',
    registers: [registry],
    collect() {
      this.set(sources.connected());
    },
  });
  new Gauge({
    name: 'opsplane_controller_known_agents',
    help: 'Agents listed by this controller (connected plus retained offline)',
    registers: [registry],
    collect() {
      this.set(sources.known());
    },
  });
  return {
    registry,
    heartbeats: new Counter({
      name: 'opsplane_controller_agent_heartbeats_total',
      help: 'Heartbeats received from agents',
      registers: [registry],
    }),
    connections: new Counter({
      name: 'opsplane_controller_agent_connections_total',
      help: 'Agent connection attempts by outcome (accepted, unauthorized, replaced, protocol_error, silent)',
      labelNames: ['outcome'],
      registers: [registry],
    }),
    batchResults: new Counter({
      name: 'opsplane_controller_batch_results_total',
      help: 'Per (agent, package) results of batch operations',
      labelNames: ['op', 'outcome'],
      registers: [registry],
    }),
    batchDuration: new Histogram({
      name: 'opsplane_controller_batch_duration_seconds',
      help: 'Duration of batch operations',
      labelNames: ['op'],
      buckets: [0.01, 0.05, 0.1, 0.5, 1, 2, 5, 10, 30, 60],
      registers: [registry],
    }),
    httpDuration: new Histogram({
      name: 'opsplane_controller_http_request_duration_seconds',
      help: 'HTTP request durations by route',
      labelNames: ['method', 'route', 'status_code'],
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30],
      registers: [registry],
    }),
    forwarded: new Counter({
      name: 'opsplane_controller_peer_forwards_total',
      help: 'Requests forwarded to peer controllers of the area',
      labelNames: ['kind', 'outcome'],
      registers: [registry],
    }),
    artifactBytesServed: new Counter({
      name: 'opsplane_controller_artifact_bytes_served_total',
      help: 'Artifact bytes sent to agents',
      registers: [registry],
    }),
    artifactDownloads: new Counter({
      name: 'opsplane_controller_artifact_downloads_total',
      help: 'Agent artifact downloads by outcome (hit, resumed, not_found, unauthorized, revoked)',
      labelNames: ['outcome'],
      registers: [registry],
    }),
    artifactBytesReceived: new Counter({
      name: 'opsplane_controller_artifact_bytes_received_total',
      help: 'Artifact bytes received from the platform (uploads)',
      registers: [registry],
    }),
    artifactUploads: new Counter({
      name: 'opsplane_controller_artifact_uploads_total',
      help: 'Artifact upload requests by outcome (complete, partial, already_complete, offset_mismatch, busy, invalid, too_large)',
      labelNames: ['outcome'],
      registers: [registry],
    }),
    artifactVerificationFailures: new Counter({
      name: 'opsplane_controller_artifact_verification_failures_total',
      help: 'Artifacts refused because their bytes or signature did not verify, by code',
      labelNames: ['code'],
      registers: [registry],
    }),
    artifactThrottledSeconds: new Counter({
      name: 'opsplane_controller_artifact_throttled_seconds_total',
      help: 'Seconds agent downloads waited for the bandwidth limit (artifacts.bandwidth), summed over downloads',
      registers: [registry],
    }),
    desiredStates: new Counter({
      name: 'opsplane_controller_desired_states_total',
      help: 'Desired states handed to agents by outcome (accepted, refused, not_connected, failed)',
      labelNames: ['outcome'],
      registers: [registry],
    }),
  };
}
