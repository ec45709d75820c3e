/**
 * @opsplane/agent — the host agent daemon. The CLI runs it as
 *   const agent = await startAgent(await loadAgentConfig(path));
 *   process.on('SIGTERM', () => void agent.stop());
 */
export { Agent, AgentLockedError, startAgent, type RunningAgent, type StartAgentOptions } from './agent.js';
export {
  defaultAddress,
  loadAgentConfig,
  parseAgentConfig,
  TOKEN_ENV,
  type AgentConfig,
  type AgentConfigFile,
} from './config.js';
export { AgentConfigError, ManifestError, SpawnError } from './errors.js';
export {
  ControllerLink,
  connectUrl,
  type ControllerLinkOptions,
  type LinkEvents,
  type RequestOutcome,
} from './connection/controller-link.js';
export { parseControllerFrame, type ParsedFrame } from './connection/frames.js';
export { Supervisor, type SupervisorOptions } from './packages/supervisor.js';
export { PackageRunner, type DesiredState } from './packages/package-runner.js';
export {
  loadManifest,
  scanPackages,
  MANIFEST_FILE,
  type PackageManifest,
  type HealthCheckSpec,
  type RestartPolicy,
} from './packages/manifest.js';
export {
  applyConfigUpdate,
  validateConfigUpdate,
  HISTORY_DIR,
  type ConfigUpdate,
} from './packages/config-writer.js';
export { ConfigReadError, listConfigFiles, readConfigFile } from './packages/config-reader.js';
export { createRequestHandler } from './requests/request-handler.js';
export {
  ArtifactFetcher,
  httpBase,
  type ArtifactSource,
  type FetcherOptions,
} from './distribution/artifact-fetcher.js';
export { Converger, type AcceptOutcome, type AgentUpgradeStep } from './distribution/converger.js';
export { DistributionError } from './distribution/errors.js';
export { PackageInstaller, type LinkState } from './distribution/package-installer.js';
export { AGENT_ROOT_ENV, UPGRADE_EXIT_CODE, type UpgradeTrial } from './distribution/upgrade-trial.js';
export { runLauncher, type LaunchOptions } from './launcher.js';
export { SystemMetricsCollector } from './metrics/system-metrics.js';
export { ServiceMetricsCollector } from './metrics/service-metrics.js';
export { AGENT_VERSION } from './version.js';
export {
  AGENT_BUNDLE_NODE_RANGE,
  bundledAgentPath,
  packAgentBundle,
  type PackAgentBundleOptions,
  type PackedAgentBundle,
} from './bundle/pack.js';
