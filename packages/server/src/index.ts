/**
 * @opsplane/server — the platform server: controllers (discovery on etcd), the aggregated agent
 * view, cross-area batches, areas and their credentials, devices, users, API tokens, audit, on
 * PGlite or PostgreSQL, behind a Fastify HTTP API with OpenAPI docs.
 */
export {
  loadServerConfig,
  parseServerConfig,
  serverConfigFrom,
  readAreasFile,
  parseListen,
  ServerSectionSchema,
  AreasSectionSchema,
  AlertsSectionSchema,
  AlertWebhookSchema,
  SecretValue,
} from './config.js';
export type {
  AreaCredentialsConfig,
  AreaCredentialsInput,
  ServerConfig,
  ServerConfigOverrides,
  ServerSection,
  ServerSectionInput,
  AlertsSection,
} from './config.js';
export { startServer, openStore } from './server.js';
export type { RunningServer, StartOptions } from './server.js';
export { buildApp, SERVER_VERSION } from './http/app.js';
export type { App } from './http/app.js';
export type { ServerContext } from './http/context.js';
export { SESSION_COOKIE } from './http/auth.js';
export type { Principal } from './http/auth.js';
export { errorBody } from './http/errors.js';
export { ensureFirstAdmin, firstAdminBanner, FIRST_ADMIN } from './bootstrap.js';
export { createMetrics } from './services/metrics.js';
export type { ServerMetrics } from './services/metrics.js';

export { openDatabase, redactUrl } from './storage/database.js';
export type { Database, DatabaseHandle, DriverKind } from './storage/database.js';
export { migrate, MIGRATIONS } from './storage/migrations.js';
export { Store } from './storage/store.js';
export { AREA_SECRET, areaScope } from './storage/secrets-repo.js';
export type { LoginSecrets } from './storage/devices-repo.js';

export { SecretBox, loadMasterKey, parseMasterKey } from './security/crypto.js';
export { hashPassword, verifyPassword } from './security/passwords.js';
export { API_TOKEN_PREFIX } from './security/tokens.js';

export { PlatformServices, upstreamError } from './services/platform.js';
export type { AgentLocation, PlatformServicesOptions } from './services/platform.js';
export { FleetView, toAgentView } from './services/fleet-view.js';
export type { RefreshInfo, ViewSnapshot } from './services/fleet-view.js';
export { AgentIndex } from './services/agent-index.js';
export type { AgentQuery, AgentPage } from './services/agent-index.js';
export { AreaCredentials } from './services/area-credentials.js';
export { BatchRunner, recordedRequest } from './services/batch-runner.js';
export { ControllerTracker } from './services/controller-tracker.js';
export { AlertEngine, platformAlertSources } from './services/alert-engine.js';
export type { AlertEngineOptions, AlertSources, AgentsSnapshot } from './services/alert-engine.js';
export { WebhookOutbox, signBody } from './services/webhook-outbox.js';
export type { WebhookOutboxOptions, WebhookTarget } from './services/webhook-outbox.js';
export { ClusterDuties } from './services/cluster-duties.js';
export { ClusterLeadership } from './services/cluster-leadership.js';
export { toAlert } from './services/alerts.js';
export { readCsv, readJson, validateRows, MAX_IMPORT_ROWS } from './services/device-import.js';
export { AgentBundleStore, BundleNotFoundError, compareVersions } from './storage/agent-bundles.js';
export type { StoredBundle } from './storage/agent-bundles.js';
export { DeviceNotFoundError } from './services/install-targets.js';
