/**
 * Areas as the API serves them: every area the platform knows of (from credentials, discovery,
 * devices and the agent view) with its counts and whether each credential is set — never a
 * value; and setting an area's credentials (write-only, audited by field name), after which the
 * area's controller clients are recreated with the new token.
 */
import type { Area, AreaCredentialsUpdate, AreaListResponse } from '@opsplane/api';
import type { Store } from '../storage/store.js';
import { AreaCredentials } from './area-credentials.js';
import { secretChange, type AuditTrail } from './audit-trail.js';
import { requireInAreas, type AreaActor } from './access.js';
import type { PlatformServices } from './platform.js';

export class AreaService {
  constructor(
    private readonly platform: PlatformServices,
    private readonly store: Store,
    private readonly audit: AuditTrail,
  ) {}

  async list(): Promise<AreaListResponse> {
    return { areas: await this.describe() };
  }

  async setCredentials(actor: AreaActor, area: string, body: AreaCredentialsUpdate): Promise<Area> {
    const had = this.platform.credentials.flagsOf(area);
    await this.audit.run(
      actor,
      { action: 'area.credentials.update', targetType: 'area', targetId: area },
      async (tx, s) => {
        requireInAreas(actor, [area], 'admin', `setting the credentials of ${area}`);
        const changed = await AreaCredentials.update(tx, area, body);
        s.details = {
          set: changed.filter((f) => body[f as keyof typeof body] !== null),
          removed: changed.filter((f) => body[f as keyof typeof body] === null),
        };
        s.changes = changed.map((f) =>
          secretChange(
            f,
            f === 'agent_secret' ? had.has_agent_secret : had.has_controller_token,
            body[f as keyof typeof body] === null ? 'removed' : 'set',
          ),
        );
      },
    );
    await this.platform.credentialsChanged(area);
    const [described] = await this.describe([area]);
    return described as Area;
  }

  private async describe(names?: readonly string[]): Promise<Area[]> {
    const { platform } = this;
    const controllers = platform.listControllers();
    const agentsByArea = platform.view.current.countsByArea();
    const deviceCounts = await this.store.devices.countByArea();
    const all =
      names ??
      [
        ...new Set([
          ...platform.credentials.areas(),
          ...controllers.map((c) => c.area),
          ...deviceCounts.keys(),
          ...agentsByArea.keys(),
        ]),
      ].sort();
    return all.map((name) => {
      const cs = controllers.filter((c) => c.area === name);
      return {
        name,
        ...platform.credentials.flagsOf(name),
        controllers: cs.length,
        controllers_online: cs.filter((c) => c.status === 'online').length,
        devices: deviceCounts.get(name) ?? 0,
        agents: agentsByArea.get(name) ?? 0,
      };
    });
  }
}
