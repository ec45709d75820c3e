/**
 * A small but real controller HTTP server for client/pool/aggregation tests: node:http on
 * 127.0.0.1:0 answering the §2 API shapes from a fixture list of agents. It validates the
 * /agents query strictly (like the real controller) and records every request and socket, so
 * tests can assert on exact query strings, hit counts and keep-alive. `intercept` lets a test
 * inject failures (503s, delays, malformed bodies) before the normal handling.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import {
  AGENT_FILTER_KEYS,
  AgentListQuerySchema,
  AgentSchema,
  unknownAgentQueryParamMessage,
  paginate,
  type Agent,
  type AgentInput,
  type OperationResult,
} from '@opsplane/models';

export interface Hit {
  method: string;
  /** Raw request target, e.g. `/api/v1/agents?page=1&pageSize=20`. */
  url: string;
  headers: IncomingMessage['headers'];
  body: string;
}

/** Return true when the response was written (normal handling is skipped). */
export type Interceptor = (req: IncomingMessage, res: ServerResponse, hit: Hit) => boolean | Promise<boolean>;

export interface FakeControllerOptions {
  id?: string;
  area?: string;
  agents?: AgentInput[];
  /** Post-process batch results (to drop, duplicate or add entries). */
  mangleBatch?: (results: OperationResult[]) => OperationResult[];
}

export interface FakeController {
  readonly id: string;
  readonly area: string;
  readonly port: number;
  /** `http://127.0.0.1:<port>` */
  readonly url: string;
  /** `127.0.0.1:<port>` (what a controller registers in etcd). */
  readonly address: string;
  readonly hits: Hit[];
  /** Distinct TCP connections accepted so far. */
  connections(): number;
  agents: Agent[];
  intercept: Interceptor | undefined;
  close(): Promise<void>;
}

export function makeAgent(id: string, overrides: Partial<AgentInput> = {}): AgentInput {
  return {
    id,
    agent_code: id,
    area_id: 'area-1',
    address: '10.0.0.1',
    hostname: `host-${id}`,
    status: 'online',
    labels: {},
    version: '1.0.0',
    last_heartbeat: '2024-01-15T10:30:00Z',
    register_time: '2024-01-15T10:00:00Z',
    services: [
      { name: 'nginx', version: '1.25', is_running: true, duration: 1_000_000_000 },
      { name: 'redis', version: '7.2', is_running: false, duration: 0 },
    ],
    health_status: 'healthy',
    last_health_check: '2024-01-15T10:30:00Z',
    ...overrides,
  };
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function sendError(res: ServerResponse, status: number, code: string, message: string): void {
  sendJson(res, status, { error: { code, message } });
}

const NOW = '2024-01-15T10:30:00Z';

export async function startFakeController(opts: FakeControllerOptions = {}): Promise<FakeController> {
  const hits: Hit[] = [];
  const sockets = new Set<Socket>();
  let connectionCount = 0;
  const state: FakeController = {
    id: opts.id ?? 'ctrl-1',
    area: opts.area ?? 'area-1',
    port: 0,
    url: '',
    address: '',
    hits,
    connections: () => connectionCount,
    agents: (opts.agents ?? []).map((a) => AgentSchema.parse(a)),
    intercept: undefined,
    close: async () => {},
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const hit: Hit = {
      method: req.method ?? '',
      url: req.url ?? '',
      headers: req.headers,
      body: Buffer.concat(chunks).toString(),
    };
    hits.push(hit);
    if (state.intercept && (await state.intercept(req, res, hit))) return;
    const u = new URL(hit.url, 'http://x');
    const parts = u.pathname.split('/').filter(Boolean).map(decodeURIComponent);
    if (parts[0] !== 'api' || parts[1] !== 'v1') return sendError(res, 404, 'not_found', 'no such route');
    const rest = parts.slice(2);
    const find = (id: string) => state.agents.find((a) => a.id === id);

    if (hit.method === 'GET' && rest.length === 1 && rest[0] === 'status') {
      return sendJson(res, 200, {
        id: state.id,
        area: state.area,
        version: '1.0.0',
        start_time: NOW,
        agent_count: state.agents.length,
        uptime_seconds: 12,
      });
    }
    if (hit.method === 'GET' && rest.length === 1 && rest[0] === 'agents') {
      const raw = Object.fromEntries(u.searchParams);
      const parsed = AgentListQuerySchema.safeParse(raw);
      if (!parsed.success) {
        const known: readonly string[] = ['page', 'pageSize', ...AGENT_FILTER_KEYS];
        const unknown = Object.keys(raw).find((k) => !known.includes(k));
        if (unknown) return sendError(res, 400, 'unknown_parameter', unknownAgentQueryParamMessage(unknown));
        return sendError(res, 400, 'validation_failed', parsed.error.message);
      }
      const q = parsed.data as { page: number; pageSize: number } & Record<string, string | undefined>;
      const filtered = state.agents.filter(
        (a) => (q.status === undefined || a.status === q.status) && (q.id === undefined || a.id === q.id),
      );
      return sendJson(res, 200, {
        agents: paginate(filtered, q.page, q.pageSize),
        total: filtered.length,
        page: q.page,
        pageSize: q.pageSize,
      });
    }
    if (hit.method === 'GET' && rest[0] === 'agents' && rest.length >= 2 && rest[1] !== 'batch') {
      const agent = find(rest[1] as string);
      if (!agent) return sendError(res, 404, 'agent_not_found', `agent '${rest[1]}' not found`);
      const sub = rest.slice(2).join('/');
      if (sub === '') return sendJson(res, 200, agent);
      if (sub === 'packages') return sendJson(res, 200, { agent_id: agent.id, packages: agent.services });
      if (sub === 'health') {
        return sendJson(res, 200, {
          agent_id: agent.id,
          overall_status: 'healthy',
          services: Object.fromEntries(
            agent.services.map((s) => [
              s.name,
              { name: s.name, status: 'healthy', message: '', checked_at: NOW },
            ]),
          ),
          checked_at: NOW,
        });
      }
      if (rest[2] === 'health' && rest.length === 4) {
        const svc = agent.services.find((s) => s.name === rest[3]);
        if (!svc) return sendError(res, 404, 'package_not_found', `package '${rest[3]}' not found`);
        return sendJson(res, 200, { name: svc.name, status: 'healthy', message: 'ok', checked_at: NOW });
      }
      if (sub === 'metrics/system') {
        return sendJson(res, 200, {
          agent_id: agent.id,
          cpu_percent: 12.5,
          load_average: { load1: 0.1, load5: 0.2, load15: 0.3 },
          memory: { total_bytes: 1000, used_bytes: 500 },
          disks: [{ mount: '/', total_bytes: 100, used_bytes: 10 }],
          network: { rx_bytes: 1, tx_bytes: 2 },
          uptime_seconds: 100,
          collected_at: NOW,
        });
      }
      if (sub === 'metrics/services') {
        const pkg = u.searchParams.get('package');
        const runningOnly = u.searchParams.get('running_only') === 'true';
        const services = agent.services
          .filter((s) => (pkg === null || s.name === pkg) && (!runningOnly || s.is_running))
          .map((s) => ({
            name: s.name,
            is_running: s.is_running,
            cpu_percent: 1,
            rss_bytes: 2,
            restarts: 0,
            uptime_seconds: 3,
          }));
        return sendJson(res, 200, { agent_id: agent.id, services, collected_at: NOW });
      }
      return sendError(res, 404, 'not_found', 'no such route');
    }
    if (hit.method === 'POST' && rest[0] === 'agents' && rest[1] === 'batch' && rest.length === 3) {
      const action = rest[2] as string;
      const body = JSON.parse(hit.body) as { agents: string[]; packages?: string[] | null; package?: string };
      const results: OperationResult[] = [];
      for (const code of body.agents) {
        const agent = find(code);
        const pkgs =
          action === 'configs'
            ? [body.package ?? '']
            : body.packages && body.packages.length > 0
              ? body.packages
              : (agent?.services.map((s) => s.name) ?? ['']);
        for (const pkg of pkgs) {
          results.push(
            agent
              ? { agent_code: code, package: pkg, success: true, message: `${action} ok on ${state.id}` }
              : {
                  agent_code: code,
                  package: pkg,
                  success: false,
                  error: `agent_not_found: agent '${code}' is not connected to ${state.id}`,
                },
          );
        }
      }
      const out = opts.mangleBatch ? opts.mangleBatch(results) : results;
      const success = out.filter((r) => r.success).length;
      return sendJson(res, 200, {
        total: out.length,
        success,
        failed: out.length - success,
        results: out,
        duration_ms: 1,
      });
    }
    return sendError(res, 404, 'not_found', 'no such route');
  };

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) sendError(res, 500, 'internal', String(err));
    });
  });
  server.on('connection', (s: Socket) => {
    connectionCount++;
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  Object.assign(state, {
    port,
    url: `http://127.0.0.1:${port}`,
    address: `127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  });
  return state;
}

/** A loopback port with nothing listening (a controller that is down). */
export async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

export const delay = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Waits `ms` or until the client goes away, whichever first (so no timer outlives a test). */
export function stall(res: ServerResponse, ms: number): Promise<void> {
  return new Promise<void>((resolve) => {
    const done = () => {
      clearTimeout(timer);
      res.off('close', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    res.on('close', done);
  });
}
