/** Controller HTTP client and its errors. */
export {
  ControllerHttpError,
  ControllerConnectionError,
  parseWireError,
  type ControllerHttpErrorInit,
} from './errors.js';
export {
  ControllerClient,
  AgentPackagesResponseSchema,
  normalizeBaseUrl,
  type AgentPackagesResponse,
  type ControllerClientOptions,
  type ServiceMetricsOptions,
} from './controller-client.js';
