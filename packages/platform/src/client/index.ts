/** Controller HTTP client and its errors. */
export {
  ArtifactOffsetMismatchError,
  ControllerHttpError,
  ControllerConnectionError,
  parseWireError,
  type ControllerHttpErrorInit,
} from './errors.js';
export {
  ControllerClient,
  FORWARDED_HEADER,
  encodeArtifactRefHeader,
  type ArtifactBody,
  normalizeBaseUrl,
  type BatchCallOptions,
  type ControllerClientOptions,
  type ControllerTlsOptions,
  type ServiceMetricsOptions,
} from './controller-client.js';
// The packages answer's schema is part of the controller wire contract; re-exported for library users.
export { AgentPackagesResponseSchema, type AgentPackagesResponse } from '@opsplane/models';
export { ensureArtifact, type EnsureArtifactOptions } from './ensure-artifact.js';
