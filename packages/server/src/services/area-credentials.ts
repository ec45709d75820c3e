/**
 * Per-area credentials: the agent secret (agent tokens are HMAC(secret, "<area>:<code>")) and the
 * controller API token the platform presents to the area's controllers. Both live encrypted in
 * the secret store (scope `area/<name>`); the server configuration (`areas:` or
 * OPSPLANE_AREAS_FILE) is imported at every start and wins over values set through the API.
 *
 * Controller tokens are kept decrypted in memory (the pools need them synchronously when a
 * client is created); nothing here ever logs or returns a value — only whether one is set.
 */
import type { Logger } from '@opsplane/kit';
import { agentToken } from '@opsplane/models';
import type { AreaCredentialsConfig, ServerConfig } from '../config.js';
import { AREA_SECRET, areaScope } from '../storage/secrets-repo.js';
import type { Store } from '../storage/store.js';

export interface AreaCredentialFlags {
  has_agent_secret: boolean;
  has_controller_token: boolean;
}

export class AreaCredentials {
  private readonly tokens = new Map<string, string>();
  private readonly flags = new Map<string, AreaCredentialFlags>();

  constructor(
    private readonly store: Store,
    private readonly config: ServerConfig,
    private readonly logger: Logger,
  ) {}

  /** Imports the configured credentials (config wins) and loads what the store holds. */
  async load(): Promise<void> {
    const imported: string[] = [];
    for (const [area, c] of Object.entries(this.config.areas) as [string, AreaCredentialsConfig][]) {
      const scope = areaScope(area);
      if (c.agent_secret)
        await this.store.secrets.put(scope, AREA_SECRET.agentSecret, c.agent_secret.reveal());
      if (c.controller_token)
        await this.store.secrets.put(scope, AREA_SECRET.controllerToken, c.controller_token.reveal());
      if (c.agent_secret || c.controller_token) imported.push(area);
    }
    if (imported.length)
      this.logger.info({ areas: imported }, 'area credentials imported from the configuration');
    await this.reload();
  }

  /** Re-reads every area's flags and controller token from the store. */
  async reload(): Promise<void> {
    this.tokens.clear();
    this.flags.clear();
    for (const s of await this.store.secrets.list()) {
      if (!s.scope.startsWith('area/')) continue;
      const area = s.scope.slice('area/'.length);
      const f = this.flags.get(area) ?? { has_agent_secret: false, has_controller_token: false };
      if (s.name === AREA_SECRET.agentSecret) f.has_agent_secret = true;
      if (s.name === AREA_SECRET.controllerToken) {
        f.has_controller_token = true;
        const token = await this.store.secrets.get(s.scope, s.name);
        if (token !== undefined) this.tokens.set(area, token);
      }
      this.flags.set(area, f);
    }
  }

  /** Areas that have any credential. */
  areas(): string[] {
    return [...this.flags.keys()].sort();
  }

  flagsOf(area: string): AreaCredentialFlags {
    return this.flags.get(area) ?? { has_agent_secret: false, has_controller_token: false };
  }

  /** The bearer token for the area's controllers: the area's own, else controller.api_token. */
  controllerToken(area: string): string | undefined {
    return this.tokens.get(area) ?? this.config.controller.api_token;
  }

  /**
   * Sets (string) or removes (null) credentials of an area; undefined keeps. Runs inside the
   * caller's transaction (`tx`); call `reload()` after it commits.
   */
  static async update(
    tx: Store,
    area: string,
    change: { agent_secret?: string | null | undefined; controller_token?: string | null | undefined },
  ): Promise<string[]> {
    const scope = areaScope(area);
    const changed: string[] = [];
    for (const [field, name] of [
      ['agent_secret', AREA_SECRET.agentSecret],
      ['controller_token', AREA_SECRET.controllerToken],
    ] as const) {
      const v = change[field];
      if (v === undefined) continue;
      if (v === null) await tx.secrets.delete(scope, name);
      else await tx.secrets.put(scope, name, v);
      changed.push(field);
    }
    return changed;
  }

  /** The token an agent of `area` with `code` must present (for installers). Throws if no secret. */
  async agentTokenFor(area: string, code: string): Promise<string> {
    const secret = await this.store.secrets.get(areaScope(area), AREA_SECRET.agentSecret);
    if (secret === undefined) throw new Error(`area '${area}' has no agent secret`);
    return agentToken(secret, area, code);
  }
}
