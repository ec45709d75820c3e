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
export { buildApp, API_PREFIX, SERVER_VERSION } from './app.js';
export type { App } from './app.js';
export type { ServerContext } from './api/context.js';
export { SESSION_COOKIE } from './api/auth.js';
export type { Principal, Access } from './api/auth.js';
export { errorBody } from './api/errors.js';
export { ensureFirstAdmin, firstAdminBanner, FIRST_ADMIN } from './bootstrap.js';
export { createMetrics } from './metrics.js';
export type { ServerMetrics } from './metrics.js';

export { openDatabase, redactUrl } from './db/database.js';
export type { Database, DatabaseHandle, DriverKind } from './db/database.js';
export { migrate, MIGRATIONS } from './db/migrations.js';
export { Store } from './db/store.js';
export { AREA_SECRET, areaScope } from './db/secrets-repo.js';
export type { LoginSecrets } from './db/devices-repo.js';

export { SecretBox, loadMasterKey, parseMasterKey } from './security/crypto.js';
export { hashPassword, verifyPassword } from './security/passwords.js';
export { ROLES, RoleSchema, roleAtLeast } from './security/roles.js';
export type { Role } from './security/roles.js';
export { API_TOKEN_PREFIX } from './security/tokens.js';

// Wire schemas of the server API, for the CLI and UI.
export * from './api/schemas/common.js';
export * from './api/schemas/devices.js';
export * from './api/schemas/users.js';
export * from './api/schemas/audit.js';
export * from './api/schemas/platform.js';
export * from './api/schemas/deployments.js';
export * from './api/schemas/alerts.js';
export { PlatformServices, upstreamError } from './services/platform.js';
export type { AgentLocation, PlatformServicesOptions } from './services/platform.js';
export { FleetView, toAgentView } from './services/fleet-view.js';
export type { DiscoveryState, RefreshInfo, ViewSnapshot } from './services/fleet-view.js';
export { AgentIndex } from './services/agent-index.js';
export type { AgentQuery, AgentPage } from './services/agent-index.js';
export { AreaCredentials } from './services/area-credentials.js';
export { BatchRunner, recordedRequest } from './services/batch-runner.js';
export { ControllerTracker } from './services/controller-tracker.js';
export { AlertEngine, platformAlertSources } from './services/alert-engine.js';
export type { AlertEngineOptions, AlertSources, AgentsSnapshot } from './services/alert-engine.js';
export { AlertNotifier, signBody } from './services/alert-notifier.js';
export type { AlertNotifierOptions, WebhookTarget } from './services/alert-notifier.js';
export { toAlert } from './db/alerts-repo.js';
export { readCsv, readJson, validateRows, MAX_IMPORT_ROWS } from './services/device-import.js';
export { AgentBundleStore, BundleNotFoundError, compareVersions } from './storage/agent-bundles.js';
export type { StoredBundle } from './storage/agent-bundles.js';
export { DeviceNotFoundError } from './services/install-targets.js';
