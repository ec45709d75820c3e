/**
 * Simulated controllers for the platform benchmark, run as a separate process (so that their
 * work does not share the event loop with the server being measured): N real HTTP servers that
 * each serve the controller API's GET /api/v1/agents (page, pageSize, the ten filters; unknown
 * parameters are 400s, as the real controller does) and GET /api/v1/status over M generated
 * agents, each registered in etcd with a lease like a real controller.
 *
 *   node sim-controllers.js <etcd endpoints, comma-separated> [controllers=10] [agentsPerController=10000]
 *
 * Prints one line `READY {"controllers":[{area,id,url}…]}` on stdout once every controller
 * serves and is registered; exits on SIGTERM (deregistering) or when its parent goes away.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import { AGENT_FILTER_KEYS, type Agent } from '@opsplane/models';
import { ControllerRegistration, createEtcdClient } from '@opsplane/platform';

const [endpointsArg, countArg, perArg] = process.argv.slice(2);
if (!endpointsArg) {
  process.stderr.write('usage: sim-controllers <etcd endpoints> [controllers] [agents per controller]\n');
  process.exit(2);
}
const CONTROLLERS = Number(countArg ?? 10);
const PER = Number(perArg ?? 10_000);
const log = pino({ level: process.env.OPSPLANE_LOG_LEVEL ?? 'warn' }, pino.destination(2));

let seed = 12345;
const rnd = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
const HEALTH = ['healthy', 'healthy', 'healthy', 'degraded', 'unhealthy', 'unknown'];

function makeAgents(area: string, ctl: string, n: number): Agent[] {
  const now = Date.now();
  return Array.from({ length: n }, (_, j) => {
    const id = `sim-${area}-${String(j).padStart(5, '0')}`;
    const online = rnd() < 0.9;
    const hb = new Date(now - Math.floor(rnd() * (online ? 30_000 : 3_600_000))).toISOString();
    return {
      id,
      agent_code: id,
      area_id: area,
      address: `10.${area.length}.${Math.floor(j / 250)}.${j % 250}`,
      hostname: `host-${area}-${j}`,
      status: online ? 'online' : 'offline',
      labels: { rack: `r${j % 40}`, env: j % 3 ? 'prod' : 'staging' },
      version: j % 10 === 0 ? '1.1.0' : '1.2.0',
      last_heartbeat: hb,
      register_time: new Date(now - 86_400_000).toISOString(),
      services: [
        {
          name: 'web',
          version: '2.0.1',
          is_running: true,
          duration: 3_600_000_000_000,
          status: 'running',
          pid: 1000 + j,
          restarts: 0,
        },
        {
          name: 'collector',
          version: '0.9.0',
          is_running: online,
          duration: 0,
          status: online ? 'running' : 'stopped',
          restarts: j % 5,
        },
      ],
      health_status: HEALTH[Math.floor(rnd() * HEALTH.length)] as string,
      last_health_check: hb,
      zone: `${area}-z${j % 2}`,
      mode: 'standard',
      group: `g${j % 8}`,
      deployment: 'blue',
      os: 'linux',
      arch: 'amd64',
      controller_id: ctl,
    };
  });
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function handler(area: string, id: string, agents: Agent[]) {
  const started = new Date().toISOString();
  return (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://sim');
    if (url.pathname === '/api/v1/status') {
      return send(res, 200, {
        id,
        area,
        version: 'sim-1',
        start_time: started,
        agent_count: agents.length,
        uptime_seconds: 1,
      });
    }
    if (url.pathname !== '/api/v1/agents')
      return send(res, 404, { error: { code: 'not_found', message: 'not here' } });
    const known = new Set<string>(['page', 'pageSize', ...AGENT_FILTER_KEYS]);
    for (const k of url.searchParams.keys())
      if (!known.has(k))
        return send(res, 400, {
          error: { code: 'unknown_parameter', message: `unknown query parameter '${k}'` },
        });
    const page = Math.max(1, Number(url.searchParams.get('page') ?? 1));
    const pageSize = Math.min(1000, Math.max(1, Number(url.searchParams.get('pageSize') ?? 20)));
    let list = agents;
    for (const k of AGENT_FILTER_KEYS) {
      const v = url.searchParams.get(k);
      if (v === null || v === '') continue;
      const field = k === 'area' ? 'area_id' : k;
      list = list.filter((a) => (a as unknown as Record<string, unknown>)[field] === v);
    }
    send(res, 200, {
      agents: list.slice((page - 1) * pageSize, page * pageSize),
      total: list.length,
      page,
      pageSize,
    });
  };
}

async function main(): Promise<void> {
  const etcd = createEtcdClient({ endpoints: endpointsArg!.split(',') });
  const regs: ControllerRegistration[] = [];
  const servers: ReturnType<typeof createServer>[] = [];
  const out: { area: string; id: string; url: string }[] = [];
  for (let i = 0; i < CONTROLLERS; i++) {
    const area = `area-${i}`;
    const id = `sim-ctl-${i}`;
    const agents = makeAgents(area, id, PER);
    const server = createServer({ keepAlive: true }, handler(area, id, agents));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    servers.push(server);
    const address = `127.0.0.1:${(server.address() as AddressInfo).port}`;
    const reg = new ControllerRegistration(etcd, {
      area,
      id,
      address,
      version: 'sim-1',
      ttlSeconds: 10,
      refreshIntervalMs: 5000,
      agentCount: () => agents.length,
      logger: log,
    });
    await reg.start();
    regs.push(reg);
    out.push({ area, id, url: `http://${address}` });
  }
  const stop = async () => {
    await Promise.allSettled(regs.map((r) => r.stop()));
    for (const s of servers) s.closeAllConnections();
    etcd.close();
    process.exit(0);
  };
  process.once('SIGTERM', () => void stop());
  process.once('SIGINT', () => void stop());
  // Die with the benchmark.
  const parent = process.ppid;
  setInterval(() => {
    try {
      process.kill(parent, 0);
    } catch {
      void stop();
    }
  }, 1000).unref();
  process.stdout.write(`READY ${JSON.stringify({ controllers: out })}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`sim-controllers failed: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
