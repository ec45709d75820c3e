/**
 * Areas and their credentials. GET lists every area the platform knows of (from credentials,
 * discovery, devices and the agent view) with whether each credential is set — never a value.
 * PUT sets or removes an area's agent secret and controller token (admins only, write-only,
 * audited by field name); the area's controller clients are recreated with the new token.
 */
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { audited } from '../audit.js';
import type { RouteOptions } from '../context.js';
import {
  AreaCredentialsUpdateSchema,
  AreaListResponseSchema,
  AreaParamsSchema,
  AreaSchema,
  commonErrors,
  type Area,
} from '@opsplane/api';
import { AreaCredentials } from '../../services/area-credentials.js';

export const areaRoutes: FastifyPluginAsyncZod<RouteOptions> = async (app, { ctx }) => {
  const { platform, store } = ctx;

  async function describe(names?: readonly string[]): Promise<Area[]> {
    const controllers = platform.listControllers();
    const agentsByArea = platform.view.current.countsByArea();
    const deviceCounts = await store.devices.countByArea();
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
    const out: Area[] = [];
    for (const name of all) {
      const cs = controllers.filter((c) => c.area === name);
      out.push({
        name,
        ...platform.credentials.flagsOf(name),
        controllers: cs.length,
        controllers_online: cs.filter((c) => c.status === 'online').length,
        devices: deviceCounts.get(name) ?? 0,
        agents: agentsByArea.get(name) ?? 0,
      });
    }
    return out;
  }

  app.get(
    '/areas',
    {
      config: { access: 'viewer' },
      schema: {
        summary: 'Areas with their controllers, devices, agents and which credentials are set',
        description: 'Credentials are never returned, only has_agent_secret / has_controller_token.',
        tags: ['areas'],
        response: { 200: AreaListResponseSchema, ...commonErrors },
      },
    },
    async () => ({ areas: await describe() }),
  );

  app.put(
    '/areas/:area/credentials',
    {
      config: { access: 'admin', action: 'area.credentials' },
      schema: {
        summary: "Set or remove an area's agent secret and controller API token (write-only)",
        description:
          'A string sets, null removes, an absent field keeps. Values set in the server configuration ' +
          '(`areas:` / OPSPLANE_AREAS_FILE) are imported again at the next start and win.',
        tags: ['areas'],
        params: AreaParamsSchema,
        body: AreaCredentialsUpdateSchema,
        response: { 200: AreaSchema, ...commonErrors },
      },
    },
    async (req) => {
      const area = req.params.area;
      await audited(
        ctx,
        req,
        { action: 'area.credentials.update', targetType: 'area', targetId: area },
        async (tx, s) => {
          const changed = await AreaCredentials.update(tx, area, req.body);
          s.details = {
            set: changed.filter((f) => req.body[f as keyof typeof req.body] !== null),
            removed: changed.filter((f) => req.body[f as keyof typeof req.body] === null),
          };
        },
      );
      await platform.credentialsChanged(area);
      const [described] = await describe([area]);
      return described as Area;
    },
  );
};
