/**
 * A separate process of lightweight simulated agents speaking the real agent protocol
 * (protocol.ts) to a controller: authenticated WebSocket upgrade, hello, heartbeats, and
 * immediate answers to requests. Used by controller.bench.ts; not a shortcut inside the
 * controller. Source addresses rotate over 127.0.0.x so that more agents than one loopback
 * address has ephemeral ports can connect.
 *
 * argv: JSON { url, area, secret, prefix, from, count, heartbeatMs, sourceIps[], concurrency }
 * stdout: one JSON line per event: {"event":"progress"|"ready"|"stats", …}
 */
import WebSocket from 'ws';
import {
  AGENT_AREA_HEADER,
  AGENT_CODE_HEADER,
  AGENT_CONNECT_PATH,
  ControllerMessageSchema,
  PROTOCOL_VERSION,
  type AgentRequest,
  type PackageStatus,
} from '@opsplane/models';
import { agentToken } from '@opsplane/platform';

interface SimOptions {
  url: string;
  area: string;
  secret: string;
  prefix: string;
  from: number;
  count: number;
  heartbeatMs: number;
  sourceIps: string[];
  concurrency: number;
}

const opts = JSON.parse(process.argv[2] ?? '{}') as SimOptions;
const PACKAGES = ['collector', 'web'];
const emit = (o: Record<string, unknown>) => process.stdout.write(`${JSON.stringify(o)}\n`);

const pkgStatus = (): PackageStatus[] =>
  PACKAGES.map((name) => ({ name, version: '1.0.0', is_running: true, duration: 0, status: 'running' }));

let connected = 0;
let failed = 0;
let heartbeatsSent = 0;
let requestsAnswered = 0;
const sockets: WebSocket[] = [];

function answer(ws: WebSocket, id: string, req: AgentRequest): void {
  requestsAnswered++;
  let result: unknown;
  if (req.op === 'action') {
    const pkgs = req.packages.length > 0 ? req.packages : PACKAGES;
    result = {
      results: pkgs.map((p) =>
        PACKAGES.includes(p)
          ? { package: p, success: true, message: `${req.action}ed` }
          : { package: p, success: false, error: `package_not_found: ${p}` },
      ),
    };
  } else if (req.op === 'packages') {
    result = { packages: pkgStatus() };
  } else {
    ws.send(
      JSON.stringify({
        type: 'response',
        id,
        ok: false,
        error: { code: 'bad_request', message: 'not simulated' },
      }),
    );
    return;
  }
  ws.send(JSON.stringify({ type: 'response', id, ok: true, result }));
}

function connectOne(i: number): Promise<void> {
  const code = `${opts.prefix}${String(i).padStart(6, '0')}`;
  const localAddress = opts.sourceIps[i % opts.sourceIps.length];
  return new Promise((resolve) => {
    const ws = new WebSocket(`${opts.url.replace(/^http/, 'ws')}${AGENT_CONNECT_PATH}`, {
      headers: {
        [AGENT_CODE_HEADER]: code,
        [AGENT_AREA_HEADER]: opts.area,
        authorization: `Bearer ${agentToken(opts.secret, opts.area, code)}`,
      },
      ...(localAddress ? { localAddress } : {}),
      perMessageDeflate: false,
    });
    let settled = false;
    const settle = () => {
      if (!settled) {
        settled = true;
        resolve();
      }
    };
    ws.on('open', () => {
      ws.send(
        JSON.stringify({
          type: 'hello',
          protocol: PROTOCOL_VERSION,
          agent: {
            agent_code: code,
            area: opts.area,
            hostname: `sim-${i}`,
            address: localAddress ?? '127.0.0.1',
            version: 'sim',
            os: 'linux',
            arch: 'amd64',
            labels: {},
          },
          packages: pkgStatus(),
          health_status: 'healthy',
        }),
      );
    });
    ws.on('message', (data) => {
      let msg;
      try {
        msg = ControllerMessageSchema.parse(JSON.parse(String(data)));
      } catch {
        return;
      }
      if (msg.type === 'welcome') {
        connected++;
        sockets.push(ws);
        settle();
      } else {
        answer(ws, msg.id, msg.request);
      }
    });
    ws.on('error', () => {
      failed++;
      settle();
    });
    ws.on('close', () => settle());
  });
}

// Heartbeats: one timer walks the socket list in slices so each agent beats once per interval.
let seq = 0;
function startHeartbeats(): void {
  const tickMs = 100;
  const ticksPerInterval = Math.max(1, Math.round(opts.heartbeatMs / tickMs));
  let tick = 0;
  const frame = (s: number) =>
    JSON.stringify({ type: 'heartbeat', seq: s, packages: pkgStatus(), health_status: 'healthy' });
  setInterval(() => {
    const n = sockets.length;
    const per = Math.ceil(n / ticksPerInterval);
    const start = (tick % ticksPerInterval) * per;
    const msg = frame(seq++);
    for (let k = start; k < Math.min(n, start + per); k++) {
      const ws = sockets[k];
      if (ws && ws.readyState === WebSocket.OPEN) {
        ws.send(msg);
        heartbeatsSent++;
      }
    }
    tick++;
  }, tickMs);
}

async function main(): Promise<void> {
  let next = 0;
  let lastReport = Date.now();
  const worker = async () => {
    while (next < opts.count) {
      const i = opts.from + next++;
      await connectOne(i);
      if (Date.now() - lastReport > 1000) {
        lastReport = Date.now();
        emit({ event: 'progress', connected, failed });
      }
    }
  };
  await Promise.all(Array.from({ length: opts.concurrency }, worker));
  emit({ event: 'ready', connected, failed });
  startHeartbeats();
  setInterval(
    () =>
      emit({
        event: 'stats',
        connected: sockets.filter((s) => s.readyState === WebSocket.OPEN).length,
        heartbeatsSent,
        requestsAnswered,
      }),
    1000,
  );
}

process.on('SIGTERM', () => process.exit(0));
void main();
