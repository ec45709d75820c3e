/**
 * The agent config file a deployment writes on the device: the agent's identity (code, area,
 * token, the area's controllers) and where it keeps its packages and data. YAML; the agent
 * resolves nothing relative to it.
 */
import { stringify as toYaml } from 'yaml';
import type { InstallLayout } from './host-installer.js';

/** What the agent on the device is told. */
export interface AgentIdentity {
  code: string;
  area: string;
  token: string;
  /** URLs of the area's controllers, failover order. */
  controllers: readonly string[];
  /**
   * Mutual TLS: the CA bundle the agent pins (it trusts no other CA for its controllers) and
   * the agent's own certificate and key (PEM), written inline into the config (mode 600).
   */
  tls?: { ca: string; cert: string; key: string };
  /**
   * The server's artifact signing keys (`ed25519:<base64>`), pinned here at install time: the
   * agent installs only packages and agent bundles signed by one of them (none = it refuses all).
   */
  artifactKeys?: readonly string[];
}

export function renderAgentConfig(id: AgentIdentity, layout: InstallLayout): string {
  const doc = {
    agent_code: id.code,
    area: id.area,
    ...(id.token ? { token: id.token } : {}),
    controllers: [...id.controllers],
    ...(id.tls ? { tls: { ca: id.tls.ca, cert: id.tls.cert, key: id.tls.key } } : {}),
    ...(id.artifactKeys && id.artifactKeys.length > 0 ? { artifact_keys: [...id.artifactKeys] } : {}),
    packages_dir: layout.packagesDir,
    data_dir: layout.dataDir,
    stop_packages_on_exit: false,
  };
  return `# Written by the Opsplane platform at deployment; changes are overwritten by the next one.\n${toYaml(doc)}`;
}
