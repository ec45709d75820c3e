/**
 * Live per-agent reads: packages, health, metrics. Each is one request over the agent's socket
 * (with the agent request timeout), forwarded to the peer that holds the agent when it is not
 * connected here. Only the package list has a meaningful "last known" answer for an offline
 * agent; health and metrics of an offline agent are a 503.
 *
 * The answers are in the Go controller's shapes with Opsplane's fields beside them (models'
 * controller-answers.ts has the field-by-field mapping); the agent's own answer (the protocol)
 * stays in Opsplane's shapes and is converted here.
 */
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type { z } from 'zod';
import {
  AgentHealthAnswerSchema,
  AgentPackagesAnswerSchema,
  ConfigFileContentSchema,
  ConfigFileListSchema,
  ConfigFileNameSchema,
  ErrorBodySchema,
  PackageNameSchema,
  ServiceHealthAnswerSchema,
  ServiceMetricsAnswerSchema,
  ServiceMetricsQuerySchema,
  SystemMetricsAnswerSchema,
  toAgentHealthAnswer,
  toAgentPackagesAnswer,
  toServiceHealthAnswer,
  toServiceMetricsAnswer,
  toSystemMetricsAnswer,
} from '@opsplane/models';
import type { RouteOptions } from '../context.js';
import { AgentParamsSchema, onAgent } from './agent-target.js';

const errors = {
  400: ErrorBodySchema,
  401: ErrorBodySchema,
  404: ErrorBodySchema,
  502: ErrorBodySchema,
  503: ErrorBodySchema,
  504: ErrorBodySchema,
};

const PackageParamsSchema = AgentParamsSchema.extend({ package: PackageNameSchema });
const ConfigFileParamsSchema = PackageParamsSchema.extend({ file_name: ConfigFileNameSchema });

export const agentDetailRoutes: FastifyPluginAsyncZod<RouteOptions> = async (app, { ctx }) => {
  const timeout = () => ctx.config.agents.requestTimeoutMs;

  app.get(
    '/agents/:agent_id/packages',
    {
      schema: {
        tags: ['agents'],
        summary: "The agent's packages (live; last known state when the agent is offline)",
        params: AgentParamsSchema,
        response: { 200: AgentPackagesAnswerSchema, ...errors },
      },
    },
    async (req, reply) => {
      const id = req.params.agent_id;
      const r = await onAgent(
        ctx,
        req,
        reply,
        id,
        async (conn) => {
          const { packages } = await conn.request({ op: 'packages' }, timeout());
          ctx.registry.updatePackages(id, packages);
          return toAgentPackagesAnswer(id, packages);
        },
        (rec) => toAgentPackagesAnswer(id, rec.packages),
      );
      return r.kind === 'value' ? r.value : reply;
    },
  );

  app.get(
    '/agents/:agent_id/health',
    {
      schema: {
        tags: ['agents'],
        summary: 'Health of all packages of the agent',
        description:
          "The Go controller's shape (`overall_status` as HEALTH_STATUS_*, the counts, `services` as an array of " +
          "pb.ServiceHealth) with Opsplane's verdict in `health_status`.",
        params: AgentParamsSchema,
        response: { 200: AgentHealthAnswerSchema, ...errors },
      },
    },
    async (req, reply) => {
      const id = req.params.agent_id;
      const r = await onAgent(ctx, req, reply, id, async (conn) =>
        toAgentHealthAnswer({ ...(await conn.request({ op: 'health' }, timeout())), agent_id: id }),
      );
      return r.kind === 'value' ? r.value : reply;
    },
  );

  app.get(
    '/agents/:agent_id/health/:package',
    {
      schema: {
        tags: ['agents'],
        summary: 'Health of one package',
        params: PackageParamsSchema,
        response: { 200: ServiceHealthAnswerSchema, ...errors },
      },
    },
    async (req, reply) => {
      const { agent_id: id, package: pkg } = req.params;
      const r = await onAgent(ctx, req, reply, id, async (conn) =>
        toServiceHealthAnswer(await conn.request({ op: 'health_package', package: pkg }, timeout())),
      );
      return r.kind === 'value' ? r.value : reply;
    },
  );

  app.get(
    '/agents/:agent_id/metrics/system',
    {
      schema: {
        tags: ['agents'],
        summary: 'Host metrics: CPU, load, memory, disks, network, uptime',
        description:
          "The Go controller's shape (`cpu.usage`, `memory`/`disk` in MB with `usage` %, `load.1min`…, `timestamp`) " +
          "with Opsplane's byte-exact fields beside it.",
        params: AgentParamsSchema,
        response: { 200: SystemMetricsAnswerSchema, ...errors },
      },
    },
    async (req, reply) => {
      const id = req.params.agent_id;
      const r = await onAgent(ctx, req, reply, id, async (conn) =>
        toSystemMetricsAnswer({ ...(await conn.request({ op: 'metrics_system' }, timeout())), agent_id: id }),
      );
      return r.kind === 'value' ? r.value : reply;
    },
  );

  app.get(
    '/agents/:agent_id/metrics/services',
    {
      schema: {
        tags: ['agents'],
        summary: 'Per-package process metrics',
        description:
          'Optional `package` (one package; its `cpu`/`memory` also on top, as Go answers) and `running_only=true`. ' +
          '`services` is a map by package name: `cpu.usage` %, `memory.usage` MB, with Opsplane’s fields beside.',
        params: AgentParamsSchema,
        querystring: ServiceMetricsQuerySchema,
        response: { 200: ServiceMetricsAnswerSchema, ...errors },
      },
    },
    async (req, reply) => {
      const id = req.params.agent_id;
      const q: z.infer<typeof ServiceMetricsQuerySchema> = req.query;
      const runningOnly = q.running_only === 'true';
      const r = await onAgent(ctx, req, reply, id, async (conn) => {
        const m = await conn.request(
          {
            op: 'metrics_services',
            ...(q.package ? { package: q.package } : {}),
            ...(q.running_only ? { running_only: runningOnly } : {}),
          },
          timeout(),
        );
        // Filtered here too, so the answer is right even if an agent ignores the parameters.
        const services = m.services.filter(
          (s) => (!q.package || s.name === q.package) && (!runningOnly || s.is_running),
        );
        return toServiceMetricsAnswer({ ...m, services, agent_id: id }, q.package);
      });
      return r.kind === 'value' ? r.value : reply;
    },
  );

  app.get(
    '/agents/:agent_id/packages/:package/configs',
    {
      schema: {
        tags: ['agents'],
        summary: "The files in a package's config dir (read-only)",
        params: PackageParamsSchema,
        response: { 200: ConfigFileListSchema, ...errors },
      },
    },
    async (req, reply) => {
      const { agent_id: id, package: pkg } = req.params;
      const r = await onAgent(ctx, req, reply, id, async (conn) => ({
        ...(await conn.request({ op: 'config_files', package: pkg }, timeout())),
        agent_id: id,
      }));
      return r.kind === 'value' ? r.value : reply;
    },
  );

  app.get(
    '/agents/:agent_id/packages/:package/configs/:file_name',
    {
      schema: {
        tags: ['agents'],
        summary: "One file of a package's config dir, as it is now (read-only; exists=false when absent)",
        params: ConfigFileParamsSchema,
        response: { 200: ConfigFileContentSchema, ...errors },
      },
    },
    async (req, reply) => {
      const { agent_id: id, package: pkg, file_name: file } = req.params;
      const r = await onAgent(ctx, req, reply, id, async (conn) => ({
        ...(await conn.request({ op: 'config_read', package: pkg, file_name: file }, timeout())),
        agent_id: id,
      }));
      return r.kind === 'value' ? r.value : reply;
    },
  );
};
