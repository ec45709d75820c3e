/**
 * Every route the server has, with who may call it and how to make a call that succeeds —
 * the table the auth matrix and the OpenAPI coverage test are driven by. A route may have more
 * than one row when a narrower request needs more (another user's id); one row states the
 * route's own access, and contract-coverage.test.ts holds the table to the contract.
 */
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { packAgentBundle } from '@opsplane/agent';
import { packageArchive, tempDir } from '@opsplane/test-support';
import { type Access, type Role } from '@opsplane/api';
import { createDevice, deviceBody, tokenFor, type RoleUser, type TestServer } from './helpers.js';

/** A small, valid package artifact of a fresh name (so uploads never clash). */
function newPackage(): { name: string; body: Buffer } {
  const name = `fx-${unique()}`.toLowerCase().replace(/[^a-z0-9-]/g, '-');
  return {
    name,
    body: packageArchive({
      manifest: `name: ${name}\nversion: 1.0.0\ncommand: bin/run.sh\n`,
      files: { 'bin/run.sh': { data: '#!/bin/sh\nsleep 3600\n', mode: 0o755 } },
    }),
  };
}

async function newArtifact(t: TestServer): Promise<string> {
  const { body } = newPackage();
  const caller = { username: 'fixture', userId: null, ip: null, role: 'admin' as const, areaRoles: {} };
  const { Readable } = await import('node:stream');
  const { artifact } = await t.server.services.artifacts.upload(
    caller,
    { kind: 'package' },
    Readable.from([body]),
  );
  return artifact.sha256;
}

async function newPolicy(t: TestServer): Promise<string> {
  const name = `fx-${unique()}`.replace(/[^A-Za-z0-9._-]/g, '-');
  const spec = {
    name,
    description: '',
    areas: ['area-without-controllers'],
    selector: '',
    priority: 0,
    packages: [],
    agent_version: null,
    correct_drift: false,
    health_timeout_ms: 60_000,
  };
  const p = await t.server.store.policies.create({ name, spec, createdBy: 'fixture', applied: true });
  return p.id;
}

/** A policy rollout held in wave 1 by an agent that never reports (or in `status`). */
async function newRollout(t: TestServer, status: 'running' | 'paused' | 'cancelled'): Promise<string> {
  const store = t.server.store;
  const policyId = await newPolicy(t);
  const r = await store.policyRollouts.create(
    {
      policyId,
      policyName: 'fixture',
      revision: 1,
      previousRevision: 1,
      batchSize: 1,
      pauseMs: 0,
      maxFailures: 0,
      waveTimeoutMs: 3600_000,
      waveCount: 1,
      createdBy: 'fixture',
    },
    [{ agentCode: `agt-${unique()}`, area: 'area-without-controllers', wave: 1, previousRevision: null }],
  );
  await store.policyRollouts.update(
    r.id,
    {
      currentWave: 1,
      waveStartedAt: new Date(),
      status,
      ...(status === 'cancelled' ? { finishedAt: new Date() } : {}),
    },
    {},
  );
  const agents = await store.policyRollouts.agents(r.id);
  await store.policyRollouts.updateAgents(
    r.id,
    agents.map((a) => a.agentCode),
    { status: 'applying', startedAt: new Date() },
  );
  return r.id;
}

export interface RouteCase {
  method: 'GET' | 'POST' | 'PATCH' | 'PUT' | 'DELETE';
  /** The route pattern as registered (OpenAPI uses {id}). */
  route: string;
  access: Access;
  ok: number;
  /** Builds the concrete request for `caller` (fresh fixtures, so cases are independent). */
  prepare?: (
    t: TestServer,
    caller: RoleUser | undefined,
  ) => Promise<{ path?: string; body?: unknown; contentType?: string }>;
}

let seq = 0;
const unique = () => `${Date.now().toString(36)}-${++seq}-${randomBytes(2).toString('hex')}`;

async function newDevice(t: TestServer): Promise<string> {
  const d = await createDevice(t.server.store, { ...deviceBody(100_000 + ++seq), name: `fx-${unique()}` });
  return d.id;
}

/** The agent code of a fresh device in an area no controller serves. */
async function newDeviceCode(t: TestServer): Promise<string> {
  const d = await createDevice(t.server.store, {
    ...deviceBody(100_000 + ++seq),
    name: `fx-${unique()}`,
    function_area: 'area-without-controllers',
  });
  return d.agent_code;
}

async function newUser(t: TestServer, role: Role = 'viewer'): Promise<string> {
  const u = await t.server.store.users.create({ username: `fx-${unique()}`, role, passwordHash: 'x' });
  return u.id;
}

/** A restart deployment of a fresh device, straight in the database (no queue kick). */
async function newDeployment(
  t: TestServer,
  state: 'queued' | 'cancelled',
): Promise<{ id: string; rolloutId: string }> {
  const device = (await t.server.store.devices.get(await newDevice(t)))!;
  const area = device.functionArea;
  const r = await t.server.store.deployments.createRollout({
    type: 'restart',
    version: '',
    batchSize: 1,
    maxFailures: 0,
    acceptChangedHostKey: false,
    requestedBy: 'fixture',
    devices: [{ id: device.id, name: device.name, area }],
    steps: ['connect'],
  });
  const d = r.deployments[0]!;
  if (state === 'cancelled') await t.server.store.deployments.cancelDeployment(d.id, 'fixture');
  return { id: d.id, rolloutId: r.rollout.id };
}

/**
 * A firing controller alert of its own. These servers have no etcd, so discovery never syncs and
 * the engine leaves controller alerts alone (it neither confirms nor resolves them).
 */
async function newAlert(t: TestServer): Promise<string> {
  const id = `fx-${unique()}`;
  const row = await t.server.store.alerts.fire({
    kind: 'controller_offline',
    severity: 'critical',
    subject: `fixture:${id}`,
    area: 'area-fixture',
    title: `fixture alert ${id}`,
    message: 'made by test/routes.ts',
    labels: {},
  });
  return row!.id;
}

export const ROUTES: RouteCase[] = [
  { method: 'GET', route: '/healthz', access: 'public', ok: 200 },
  { method: 'GET', route: '/metrics', access: 'metrics', ok: 200 },
  { method: 'GET', route: '/docs/json', access: 'viewer', ok: 200 },
  { method: 'GET', route: '/docs', access: 'viewer', ok: 200 },
  {
    method: 'POST',
    route: '/api/v1/auth/login',
    access: 'public',
    ok: 200,
    prepare: async (t) => ({
      body: { username: t.users.viewer.username, password: t.users.viewer.password },
    }),
  },
  { method: 'POST', route: '/api/v1/auth/logout', access: 'viewer', ok: 204 },
  { method: 'GET', route: '/api/v1/auth/me', access: 'viewer', ok: 200 },
  { method: 'GET', route: '/api/v1/users', access: 'admin', ok: 200 },
  {
    method: 'POST',
    route: '/api/v1/users',
    access: 'admin',
    ok: 201,
    prepare: async () => ({
      body: { username: `u-${unique()}`, password: 'a-long-password', role: 'viewer' },
    }),
  },
  {
    // The route is open to every role for one's own id (this row) …
    method: 'GET',
    route: '/api/v1/users/:id',
    access: 'viewer',
    ok: 200,
    prepare: async (t, caller) => ({ path: `/api/v1/users/${(caller ?? t.users.viewer).id}` }),
  },
  {
    // … and for another user's id only admins get through (this one).
    method: 'GET',
    route: '/api/v1/users/:id',
    access: 'admin',
    ok: 200,
    prepare: async (t) => ({ path: `/api/v1/users/${await newUser(t)}` }),
  },
  {
    method: 'PATCH',
    route: '/api/v1/users/:id',
    access: 'admin',
    ok: 200,
    prepare: async (t) => ({ path: `/api/v1/users/${await newUser(t)}`, body: { role: 'operator' } }),
  },
  {
    method: 'DELETE',
    route: '/api/v1/users/:id',
    access: 'admin',
    ok: 204,
    prepare: async (t) => ({ path: `/api/v1/users/${await newUser(t)}` }),
  },
  {
    method: 'PUT',
    route: '/api/v1/users/me/password',
    access: 'viewer',
    ok: 204,
    // The same password again: allowed, and leaves the fixture users usable.
    prepare: async (_t, caller) => ({
      body: {
        current_password: caller?.password ?? 'x',
        new_password: caller?.password ?? 'a-long-password',
      },
    }),
  },
  { method: 'GET', route: '/api/v1/tokens', access: 'viewer', ok: 200 },
  {
    method: 'POST',
    route: '/api/v1/tokens',
    access: 'operator',
    ok: 201,
    prepare: async () => ({ body: { name: `ci-${unique()}`, role: 'viewer', expires_in: '24h' } }),
  },
  {
    method: 'DELETE',
    route: '/api/v1/tokens/:id',
    access: 'operator',
    ok: 204,
    // The caller's own token (operators may revoke only their own).
    prepare: async (t, caller) => {
      const owner = caller ?? t.users.admin;
      return { path: `/api/v1/tokens/${(await tokenFor(t.server, owner.id, 'viewer')).id}` };
    },
  },
  { method: 'GET', route: '/api/v1/devices', access: 'viewer', ok: 200 },
  {
    method: 'GET',
    route: '/api/v1/devices/:id',
    access: 'viewer',
    ok: 200,
    prepare: async (t) => ({ path: `/api/v1/devices/${await newDevice(t)}` }),
  },
  {
    method: 'POST',
    route: '/api/v1/devices',
    access: 'operator',
    ok: 201,
    prepare: async () => ({ body: { ...deviceBody(++seq), name: `d-${unique()}` } }),
  },
  {
    method: 'PATCH',
    route: '/api/v1/devices/:id',
    access: 'operator',
    ok: 200,
    prepare: async (t) => ({
      path: `/api/v1/devices/${await newDevice(t)}`,
      body: { ip: '10.99.0.1', login: { password: 'new-pw' } },
    }),
  },
  {
    method: 'DELETE',
    route: '/api/v1/devices/:id',
    access: 'operator',
    ok: 204,
    prepare: async (t) => ({ path: `/api/v1/devices/${await newDevice(t)}` }),
  },
  {
    method: 'POST',
    route: '/api/v1/devices/import',
    access: 'operator',
    ok: 200,
    prepare: async () => ({
      body: `name,ip,function_area,os,username,password\nimp-${unique()},10.1.2.3,area-1,linux,root,pw\n`,
      contentType: 'text/csv',
    }),
  },
  { method: 'GET', route: '/api/v1/audit', access: 'viewer', ok: 200 },
  { method: 'GET', route: '/api/v1/controllers', access: 'viewer', ok: 200 },
  { method: 'GET', route: '/api/v1/controllers/history', access: 'viewer', ok: 200 },
  { method: 'GET', route: '/api/v1/agents', access: 'viewer', ok: 200 },
  {
    // No controller anywhere in these tests: an unknown code is a typed 404 once past auth.
    method: 'GET',
    route: '/api/v1/agents/by-code/:code',
    access: 'viewer',
    ok: 404,
    prepare: async () => ({ path: `/api/v1/agents/by-code/agt-${unique()}` }),
  },
  ...(['packages', 'health', 'metrics/system', 'metrics/services'] as const).map((sub): RouteCase => ({
    // A device whose area has no controller: a typed 503 once past auth.
    method: 'GET',
    route: `/api/v1/agents/:code/${sub}`,
    access: 'viewer',
    ok: 503,
    prepare: async (t) => ({ path: `/api/v1/agents/${await newDeviceCode(t)}/${sub}` }),
  })),
  {
    // Nothing sampled for an unknown code: an empty history.
    method: 'GET',
    route: '/api/v1/agents/:code/metrics/history',
    access: 'viewer',
    ok: 200,
    prepare: async () => ({ path: `/api/v1/agents/agt-${unique()}/metrics/history?window=1h` }),
  },
  {
    // Operators (of the agent's area); no controller there: a typed 503 once past auth.
    method: 'GET',
    route: '/api/v1/agents/:code/packages/:package/configs',
    access: 'operator',
    ok: 503,
    prepare: async (t) => ({ path: `/api/v1/agents/${await newDeviceCode(t)}/packages/web/configs` }),
  },
  {
    method: 'GET',
    route: '/api/v1/agents/:code/packages/:package/configs/:file',
    access: 'operator',
    ok: 503,
    prepare: async (t) => ({
      path: `/api/v1/agents/${await newDeviceCode(t)}/packages/web/configs/web.yaml`,
    }),
  },
  {
    method: 'POST',
    route: '/api/v1/batches',
    access: 'operator',
    ok: 201,
    // An agent nobody knows: answered at once with its failed result.
    prepare: async () => ({ body: { action: 'restart', agents: [`agt-${unique()}`], packages: ['web'] } }),
  },
  { method: 'GET', route: '/api/v1/batches', access: 'viewer', ok: 200 },
  {
    method: 'GET',
    route: '/api/v1/batches/:id',
    access: 'viewer',
    ok: 200,
    prepare: async (t) => {
      const job = await t.server.store.batches.create({
        action: 'restart',
        requestedBy: 'fixture',
        request: {},
        deadlineAt: new Date(),
        targets: [],
      });
      return { path: `/api/v1/batches/${job.id}` };
    },
  },
  {
    method: 'GET',
    route: '/api/v1/batches/:id/events',
    access: 'viewer',
    ok: 200,
    // Finished: the stream sends it and ends.
    prepare: async (t) => {
      const job = await t.server.store.batches.create({
        action: 'restart',
        requestedBy: 'fixture',
        request: {},
        deadlineAt: new Date(),
        targets: [],
      });
      await t.server.store.batches.finish(job.id, 'done', 0);
      return { path: `/api/v1/batches/${job.id}/events` };
    },
  },
  { method: 'GET', route: '/api/v1/areas', access: 'viewer', ok: 200 },
  {
    method: 'PUT',
    route: '/api/v1/areas/:area/credentials',
    access: 'admin',
    ok: 200,
    prepare: async () => ({
      path: `/api/v1/areas/area-${unique()}/credentials`,
      body: { controller_token: `token-${unique()}` },
    }),
  },
  {
    method: 'POST',
    route: '/api/v1/deployments',
    access: 'operator',
    ok: 202,
    prepare: async (t) => ({ body: { type: 'restart', devices: [await newDevice(t)] } }),
  },
  { method: 'GET', route: '/api/v1/deployments', access: 'viewer', ok: 200 },
  {
    method: 'GET',
    route: '/api/v1/deployments/:id',
    access: 'viewer',
    ok: 200,
    prepare: async (t) => ({ path: `/api/v1/deployments/${(await newDeployment(t, 'queued')).id}` }),
  },
  {
    method: 'GET',
    route: '/api/v1/deployments/:id/events',
    access: 'viewer',
    ok: 200,
    // Finished: the stream sends it and ends.
    prepare: async (t) => ({
      path: `/api/v1/deployments/${(await newDeployment(t, 'cancelled')).id}/events`,
    }),
  },
  {
    method: 'POST',
    route: '/api/v1/deployments/:id/cancel',
    access: 'operator',
    ok: 200,
    prepare: async (t) => ({ path: `/api/v1/deployments/${(await newDeployment(t, 'queued')).id}/cancel` }),
  },
  {
    method: 'POST',
    route: '/api/v1/deployments/:id/retry',
    access: 'operator',
    ok: 202,
    prepare: async (t) => ({ path: `/api/v1/deployments/${(await newDeployment(t, 'cancelled')).id}/retry` }),
  },
  {
    method: 'GET',
    route: '/api/v1/rollouts/:id',
    access: 'viewer',
    ok: 200,
    prepare: async (t) => ({ path: `/api/v1/rollouts/${(await newDeployment(t, 'queued')).rolloutId}` }),
  },
  {
    method: 'POST',
    route: '/api/v1/rollouts/:id/cancel',
    access: 'operator',
    ok: 200,
    prepare: async (t) => ({
      path: `/api/v1/rollouts/${(await newDeployment(t, 'queued')).rolloutId}/cancel`,
    }),
  },
  { method: 'GET', route: '/api/v1/alerts', access: 'viewer', ok: 200 },
  {
    method: 'GET',
    route: '/api/v1/alerts/:id',
    access: 'viewer',
    ok: 200,
    prepare: async (t) => ({ path: `/api/v1/alerts/${await newAlert(t)}` }),
  },
  {
    method: 'POST',
    route: '/api/v1/alerts/:id/ack',
    access: 'operator',
    ok: 200,
    prepare: async (t) => ({ path: `/api/v1/alerts/${await newAlert(t)}/ack` }),
  },
  // Revocations and certificates live in etcd, which these servers have none of: a typed 503 once past auth.
  {
    method: 'POST',
    route: '/api/v1/agents/:code/revoke',
    access: 'admin',
    ok: 503,
    prepare: async () => ({ path: `/api/v1/agents/agt-${unique()}/revoke`, body: { reason: 'test' } }),
  },
  { method: 'GET', route: '/api/v1/revocations', access: 'viewer', ok: 503 },
  {
    method: 'DELETE',
    route: '/api/v1/revocations/agents/:code',
    access: 'admin',
    ok: 503,
    prepare: async () => ({ path: `/api/v1/revocations/agents/agt-${unique()}` }),
  },
  { method: 'GET', route: '/api/v1/certificates', access: 'viewer', ok: 503 },
  { method: 'GET', route: '/api/v1/silences', access: 'viewer', ok: 200 },
  {
    method: 'POST',
    route: '/api/v1/silences',
    access: 'operator',
    ok: 201,
    prepare: async () => ({ body: { kind: 'agent_offline', duration: '1h', comment: `fx-${unique()}` } }),
  },
  {
    method: 'DELETE',
    route: '/api/v1/silences/:id',
    access: 'operator',
    ok: 200,
    prepare: async (t) => {
      const s = await t.server.store.silences.create({
        kind: 'agent_offline',
        area: null,
        agentCode: null,
        comment: 'fixture',
        createdBy: 'fixture',
        expiresAt: new Date(Date.now() + 3600_000),
      });
      return { path: `/api/v1/silences/${s.id}` };
    },
  },
  { method: 'GET', route: '/api/v1/agent-bundles', access: 'viewer', ok: 200 },
  {
    method: 'POST',
    route: '/api/v1/agent-bundles',
    access: 'admin',
    ok: 201,
    prepare: async () => {
      const dir = await tempDir('opsplane-bundle-fixture-');
      try {
        const b = await packAgentBundle({
          version: `0.0.${++seq}-fixture.${randomBytes(3).toString('hex')}`,
          outDir: dir.path,
        });
        return { body: await readFile(b.path), contentType: 'application/gzip' };
      } finally {
        await dir.cleanup();
      }
    },
  },
  { method: 'GET', route: '/api/v1/artifacts', access: 'viewer', ok: 200 },
  {
    method: 'POST',
    route: '/api/v1/artifacts',
    access: 'operator',
    ok: 201,
    prepare: async () => ({
      path: '/api/v1/artifacts?kind=package',
      body: newPackage().body,
      contentType: 'application/gzip',
    }),
  },
  { method: 'GET', route: '/api/v1/artifacts/keys', access: 'viewer', ok: 200 },
  {
    method: 'GET',
    route: '/api/v1/artifacts/:sha256',
    access: 'viewer',
    ok: 200,
    prepare: async (t) => ({ path: `/api/v1/artifacts/${await newArtifact(t)}` }),
  },
  {
    method: 'GET',
    route: '/api/v1/artifacts/:sha256/content',
    access: 'viewer',
    ok: 200,
    prepare: async (t) => ({ path: `/api/v1/artifacts/${await newArtifact(t)}/content` }),
  },
  {
    method: 'DELETE',
    route: '/api/v1/artifacts/:sha256',
    access: 'operator',
    ok: 204,
    prepare: async (t) => ({ path: `/api/v1/artifacts/${await newArtifact(t)}` }),
  },
  { method: 'GET', route: '/api/v1/policies', access: 'viewer', ok: 200 },
  {
    method: 'POST',
    route: '/api/v1/policies',
    access: 'operator',
    ok: 201,
    prepare: async () => ({
      body: { name: `fx-${unique()}`.replace(/[^A-Za-z0-9._-]/g, '-'), areas: ['area-1'] },
    }),
  },
  {
    method: 'GET',
    route: '/api/v1/policies/:id',
    access: 'viewer',
    ok: 200,
    prepare: async (t) => ({ path: `/api/v1/policies/${await newPolicy(t)}` }),
  },
  {
    method: 'PATCH',
    route: '/api/v1/policies/:id',
    access: 'operator',
    ok: 200,
    prepare: async (t) => ({
      path: `/api/v1/policies/${await newPolicy(t)}`,
      body: { description: 'changed' },
    }),
  },
  {
    method: 'DELETE',
    route: '/api/v1/policies/:id',
    access: 'operator',
    ok: 204,
    prepare: async (t) => ({ path: `/api/v1/policies/${await newPolicy(t)}` }),
  },
  {
    method: 'GET',
    route: '/api/v1/policies/:id/revisions',
    access: 'viewer',
    ok: 200,
    prepare: async (t) => ({ path: `/api/v1/policies/${await newPolicy(t)}/revisions` }),
  },
  {
    method: 'GET',
    route: '/api/v1/policies/:id/agents',
    access: 'viewer',
    ok: 200,
    prepare: async (t) => ({ path: `/api/v1/policies/${await newPolicy(t)}/agents` }),
  },
  {
    method: 'POST',
    route: '/api/v1/policy-rollouts',
    access: 'operator',
    ok: 202,
    prepare: async (t) => ({ body: { policy_id: await newPolicy(t) } }),
  },
  { method: 'GET', route: '/api/v1/policy-rollouts', access: 'viewer', ok: 200 },
  {
    method: 'GET',
    route: '/api/v1/policy-rollouts/:id',
    access: 'viewer',
    ok: 200,
    prepare: async (t) => ({ path: `/api/v1/policy-rollouts/${await newRollout(t, 'running')}` }),
  },
  {
    method: 'POST',
    route: '/api/v1/policy-rollouts/:id/pause',
    access: 'operator',
    ok: 200,
    prepare: async (t) => ({ path: `/api/v1/policy-rollouts/${await newRollout(t, 'running')}/pause` }),
  },
  {
    method: 'POST',
    route: '/api/v1/policy-rollouts/:id/resume',
    access: 'operator',
    ok: 200,
    prepare: async (t) => ({ path: `/api/v1/policy-rollouts/${await newRollout(t, 'paused')}/resume` }),
  },
  {
    method: 'POST',
    route: '/api/v1/policy-rollouts/:id/cancel',
    access: 'operator',
    ok: 200,
    prepare: async (t) => ({ path: `/api/v1/policy-rollouts/${await newRollout(t, 'running')}/cancel` }),
  },
  {
    method: 'GET',
    route: '/api/v1/policy-rollouts/:id/events',
    access: 'viewer',
    ok: 200,
    // Finished: the stream sends it and ends.
    prepare: async (t) => ({ path: `/api/v1/policy-rollouts/${await newRollout(t, 'cancelled')}/events` }),
  },
];
