/**
 * A separate process of lightweight simulated agents speaking the real agent protocol
 * (packages/models/src/protocol.ts) to one controller — not a shortcut inside the controller:
 *
 *   - authenticated WebSocket upgrade (agent code + area headers, `agentToken` from
 *     @opsplane/platform as the bearer token), a refused upgrade counted with its HTTP status;
 *   - `hello` with the agent's info and package states, `welcome` validated with the models' schema;
 *   - `heartbeat`s at the interval the controller hands out in `welcome`, with per-agent
 *     increasing `seq`;
 *   - every `request` frame validated with ControllerMessageSchema and answered with a real
 *     `response` frame (same id) shaped like the real agent's results, for every op.
 *
 * Lightweight: no timer per agent. One ticker walks heartbeat buckets (agent i beats in bucket
 * i mod (interval / tick)), so N agents send a smooth N / interval heartbeats per second, and the
 * ticker catches up on ticks it missed so a busy loop does not lower the rate. Heartbeat frames are
 * encoded once per tick and shared by the bucket's agents.
 *
 * Source addresses rotate over `sourceIps` (127.0.0.x) so that more agents than one loopback
 * address has ephemeral ports can connect. Each process also has its own RLIMIT_NOFILE, so a big
 * fleet is several of these processes, each with its own agent-code range.
 *
 * Usage: node agent-simulator.js '<json SimOptions>'
 * stdout: one JSON object per line: {"event":"start"|"progress"|"ready"|"stats"|"closed", …}
 * It exits on SIGTERM/SIGINT, and by itself if its parent goes away.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createSecureContext, type SecureContext } from 'node:tls';
import { pathToFileURL } from 'node:url';
import WebSocket from 'ws';
import { CertificateAuthority } from '@opsplane/pki';
import {
  AGENT_AREA_HEADER,
  AGENT_CODE_HEADER,
  AGENT_CONNECT_PATH,
  ControllerMessageSchema,
  PROTOCOL_VERSION,
  type PackageStatus,
} from '@opsplane/models';
import { agentToken } from '@opsplane/models';
import { SimulatedJournal, simulatedAnswer } from '../test/support/simulated-answer.js';

export interface SimOptions {
  /** Controller base URL, e.g. http://127.0.0.1:8081 */
  url: string;
  area: string;
  secret: string;
  /** Agent codes are `${prefix}${index padded to 6}` for index in [from, from + count). */
  prefix: string;
  from: number;
  count: number;
  /** Local addresses to connect from (agent i uses sourceIps[i % length]); empty = kernel's choice. */
  sourceIps: string[];
  /** Connection attempts in flight. */
  concurrency: number;
  /** Package names every agent has (all running). */
  packages: string[];
  /** Heartbeat ticker resolution. */
  tickMs?: number;
  /** How often a stats line is printed. */
  statsIntervalMs?: number;
  /**
   * Mutual TLS: each agent gets a certificate of the CA in `caDir` naming it (issued before
   * `start`, all sharing one key so that key generation is not what is measured), verifies the
   * controller against the CA bundle, and sends no token.
   */
  tls?: { caDir: string };
}

/** One line of the simulator's stdout. */
export type SimEvent =
  | { event: 'start'; t: number }
  | { event: 'progress'; t: number; connected: number; failed: number }
  | {
      event: 'ready';
      t: number;
      connected: number;
      failed: number;
      connectMs: number;
      failures: Record<string, number>;
    }
  | {
      event: 'stats';
      t: number;
      open: number;
      closed: number;
      heartbeatsSent: number;
      requestsAnswered: number;
      invalidFrames: number;
    };

export const agentCode = (prefix: string, i: number) => `${prefix}${String(i).padStart(6, '0')}`;

/** The simulated agents' certificates (tls mode), written by the bench into the CA dir. */
export const SIM_CERTS_FILE = 'sim-certs.json';
export interface SimCerts {
  keyPem: string;
  /** By agent index. */
  certs: string[];
}

/** Imported by the bench for `agentCode` and the types; runs only as a process's entry point. */
const isMain = process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href;
const opts = (isMain ? JSON.parse(process.argv[2] ?? '{}') : { packages: [] }) as SimOptions;
const TICK_MS = opts.tickMs ?? 50;
const emit = (e: SimEvent) => process.stdout.write(`${JSON.stringify(e)}\n`);

const packages: PackageStatus[] = opts.packages.map((name) => ({
  name,
  version: '1.0.0',
  is_running: true,
  duration: 1_000_000_000,
  status: 'running',
}));

interface SimAgent {
  readonly code: string;
  readonly index: number;
  readonly ws: WebSocket;
}

let connected = 0;
let failed = 0;
let closed = 0;
let heartbeatsSent = 0;
let requestsAnswered = 0;
let invalidFrames = 0;
const failures: Record<string, number> = {};
const fail = (why: string) => {
  failed++;
  failures[why] = (failures[why] ?? 0) + 1;
};

// ---- heartbeats ------------------------------------------------------------------------------

let heartbeatMs = 0;
let buckets: SimAgent[][] = [];
let ticker: NodeJS.Timeout | undefined;

/** Called on the first welcome: the interval comes from the controller, as for a real agent. */
function startHeartbeats(intervalMs: number): void {
  heartbeatMs = intervalMs;
  const slots = Math.max(1, Math.round(intervalMs / TICK_MS));
  buckets = Array.from({ length: slots }, () => []);
  const t0 = performance.now();
  let done = 0; // ticks processed
  ticker = setInterval(() => {
    const due = Math.floor((performance.now() - t0) / TICK_MS);
    // Catch up on missed ticks (bounded to one interval: beyond that an agent would beat twice).
    if (due - done > slots) done = due - slots;
    for (; done < due; done++) {
      const bucket = buckets[done % slots] as SimAgent[];
      if (bucket.length === 0) continue;
      // seq = how many intervals have passed: increases by one per heartbeat of each agent.
      const frame = Buffer.from(
        JSON.stringify({
          type: 'heartbeat',
          seq: Math.floor(done / slots),
          packages,
          health_status: 'healthy',
        }),
      );
      for (const a of bucket) {
        if (a.ws.readyState !== WebSocket.OPEN) continue;
        a.ws.send(frame, { binary: false });
        heartbeatsSent++;
      }
    }
  }, TICK_MS);
}

function addToHeartbeats(a: SimAgent): void {
  (buckets[a.index % buckets.length] as SimAgent[]).push(a);
}

// ---- requests --------------------------------------------------------------------------------

// ---- connections -----------------------------------------------------------------------------

const wsUrl = () => `${opts.url.replace(/^http/, 'ws')}${AGENT_CONNECT_PATH}`;

/** Per agent (by index − from): its TLS context (CA bundle, own certificate, the shared key). */
let contexts: SecureContext[] = [];

async function prepareTls(): Promise<void> {
  if (!opts.tls) return;
  const ca = await CertificateAuthority.load(opts.tls.caDir);
  // Issued once per run by the bench (sim-certs.json: one shared key, a certificate per index):
  // issuing costs a few ms each, which is not what is measured.
  const issued = JSON.parse(readFileSync(join(opts.tls.caDir, SIM_CERTS_FILE), 'utf8')) as SimCerts;
  const bundle = ca.bundlePem;
  contexts = Array.from({ length: opts.count }, (_, i) => {
    const cert = issued.certs[opts.from + i];
    if (!cert) throw new Error(`no simulated certificate for index ${opts.from + i}`);
    return createSecureContext({ ca: bundle, cert, key: issued.keyPem });
  });
}

/** Resolves once welcomed (true) or failed (false); never rejects. */
function connectOne(index: number): Promise<boolean> {
  const code = agentCode(opts.prefix, index);
  const localAddress = opts.sourceIps.length > 0 ? opts.sourceIps[index % opts.sourceIps.length] : undefined;
  return new Promise((resolve) => {
    const secureContext = contexts[index - opts.from];
    const ws = new WebSocket(wsUrl(), {
      headers: {
        [AGENT_CODE_HEADER]: code,
        [AGENT_AREA_HEADER]: opts.area,
        ...(secureContext ? {} : { authorization: `Bearer ${agentToken(opts.secret, opts.area, code)}` }),
      },
      ...(secureContext ? { secureContext, servername: 'localhost' } : {}),
      perMessageDeflate: false,
      handshakeTimeout: 60_000,
      ...(localAddress ? { localAddress } : {}),
    });
    const agent: SimAgent = { code, index, ws };
    // Each simulated agent journals operation ids like a real one (in memory).
    const journal = new SimulatedJournal();
    let welcomed = false;
    let settled = false;
    const settle = (ok: boolean, why?: string) => {
      if (settled) return;
      settled = true;
      if (!ok) fail(why ?? 'unknown');
      resolve(ok);
    };
    ws.on('open', () => {
      ws.send(
        JSON.stringify({
          type: 'hello',
          protocol: PROTOCOL_VERSION,
          agent: {
            agent_code: code,
            area: opts.area,
            hostname: `sim-${index}`,
            address: localAddress ?? '127.0.0.1',
            version: '1.0.0-sim',
            os: 'linux',
            arch: 'amd64',
            labels: { sim: 'true' },
            zone: `z${index % 10}`,
            mode: 'prod',
            group: `g${index % 100}`,
          },
          packages,
          health_status: 'healthy',
        }),
      );
    });
    ws.on('message', (data, isBinary) => {
      let parsed;
      try {
        parsed = isBinary ? undefined : ControllerMessageSchema.safeParse(JSON.parse(String(data)));
      } catch {
        parsed = undefined;
      }
      if (!parsed?.success) {
        invalidFrames++;
        return;
      }
      const msg = parsed.data;
      if (msg.type === 'welcome') {
        if (welcomed) return;
        welcomed = true;
        connected++;
        if (!ticker) startHeartbeats(msg.heartbeat_interval_ms);
        else if (msg.heartbeat_interval_ms !== heartbeatMs) invalidFrames++; // one controller, one interval
        addToHeartbeats(agent);
        settle(true);
        return;
      }
      if (msg.type !== 'request') return;
      requestsAnswered++;
      ws.send(
        JSON.stringify({
          type: 'response',
          id: msg.id,
          ...simulatedAnswer(code, packages, msg.request, journal),
        }),
      );
    });
    ws.on('unexpected-response', (_req, res) => {
      settle(false, `http_${res.statusCode ?? 0}`);
      res.resume();
      ws.terminate();
    });
    ws.on('error', (err: NodeJS.ErrnoException) => settle(false, err.code ?? err.message.slice(0, 40)));
    ws.on('close', (closeCode) => {
      if (welcomed) {
        closed++;
        connected--;
      }
      settle(false, `closed_${closeCode}`);
    });
  });
}

async function main(): Promise<void> {
  await prepareTls();
  const started = Date.now();
  emit({ event: 'start', t: started });
  let next = 0;
  let lastReport = Date.now();
  const worker = async () => {
    while (next < opts.count) {
      await connectOne(opts.from + next++);
      if (Date.now() - lastReport >= 1000) {
        lastReport = Date.now();
        emit({ event: 'progress', t: lastReport, connected, failed });
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, opts.concurrency) }, worker));
  const t = Date.now();
  emit({ event: 'ready', t, connected, failed, connectMs: t - started, failures });
  setInterval(
    () =>
      emit({
        event: 'stats',
        t: Date.now(),
        open: connected,
        closed,
        heartbeatsSent,
        requestsAnswered,
        invalidFrames,
      }),
    opts.statsIntervalMs ?? 1000,
  );
}

if (isMain) {
  const exit = () => process.exit(0);
  process.on('SIGTERM', exit);
  process.on('SIGINT', exit);
  // Never outlive the bench that started us (its exit hook kills us, but not if it was SIGKILLed).
  const parent = process.ppid;
  setInterval(() => {
    if (process.ppid !== parent) process.exit(0);
  }, 1000).unref();
  void main();
}
