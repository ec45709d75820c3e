/**
 * A process of simulated agents that converge on a desired state the way a real agent does,
 * over the real protocol and the real relay: authenticated WebSocket upgrade, hello, heartbeats;
 * a `desired_state` request is accepted at once (status `applying`, as the agent persists it and
 * converges in the background), then each package's artifact is downloaded from the controller
 * (AGENT_ARTIFACT_PATH, agent-token authenticated, resuming with Range after a broken transfer,
 * retrying a 404 while the controller does not hold it yet), hashed as it streams and checked
 * against the ref's sha256 and size; a verified download is reported `applied` in a heartbeat
 * sent right away. Nothing is installed: what is measured is the distribution, not unpacking.
 *
 * Usage: node distribution-simulator.js '<json DistSimOptions>'
 * stdout: one JSON object per line: {"event":"ready"|"stats", …}. Exits on SIGTERM/SIGINT and
 * when its parent goes away.
 */
import { createHash } from 'node:crypto';
import { pathToFileURL } from 'node:url';
import WebSocket from 'ws';
import { Agent as UndiciAgent, request } from 'undici';
import {
  AGENT_AREA_HEADER,
  AGENT_ARTIFACT_PATH,
  AGENT_CODE_HEADER,
  AGENT_CONNECT_PATH,
  ControllerMessageSchema,
  PROTOCOL_VERSION,
  agentToken,
  type ArtifactRef,
  type DesiredState,
  type DistributionStatus,
} from '@opsplane/models';

export interface DistSimOptions {
  url: string;
  area: string;
  secret: string;
  prefix: string;
  count: number;
  /** Downloads in flight at once across this process's agents. */
  downloadConcurrency: number;
  heartbeatTickMs?: number;
}

export type DistSimEvent =
  | { event: 'ready'; t: number; connected: number; failed: number }
  | {
      event: 'stats';
      t: number;
      applied: number;
      downloads: number;
      bytesDownloaded: number;
      hashFailures: number;
      retries: number;
      resumed: number;
    };

export const distAgentCode = (prefix: string, i: number) => `${prefix}${String(i).padStart(5, '0')}`;

const isMain = process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href;
const opts = (isMain ? JSON.parse(process.argv[2] ?? '{}') : {}) as DistSimOptions;
const emit = (e: DistSimEvent) => process.stdout.write(`${JSON.stringify(e)}\n`);
const now = () => new Date().toISOString();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface SimAgent {
  code: string;
  ws: WebSocket;
  distribution: DistributionStatus | undefined;
  seq: number;
}

let applied = 0;
let downloads = 0;
let bytesDownloaded = 0;
let hashFailures = 0;
let retries = 0;
let resumed = 0;

const dispatcher = new UndiciAgent({ connections: null, pipelining: 0, keepAliveTimeout: 30_000 });

/** A FIFO of download slots shared by every agent of the process. */
let inFlight = 0;
const waiting: (() => void)[] = [];
async function slot<T>(fn: () => Promise<T>): Promise<T> {
  if (inFlight >= opts.downloadConcurrency) await new Promise<void>((r) => waiting.push(r));
  inFlight++;
  try {
    return await fn();
  } finally {
    inFlight--;
    waiting.shift()?.();
  }
}

/** Downloads and verifies one artifact, resuming after a broken transfer; never gives up. */
async function fetchArtifact(agent: SimAgent, ref: ArtifactRef): Promise<void> {
  const headers = {
    [AGENT_CODE_HEADER]: agent.code,
    [AGENT_AREA_HEADER]: opts.area,
    authorization: `Bearer ${agentToken(opts.secret, opts.area, agent.code)}`,
  };
  for (let attempt = 1; ; attempt++) {
    const hash = createHash('sha256');
    let got = 0;
    // A resumed download re-reads nothing it has: the hash carries on over the new range.
    const ok = await slot(async () => {
      for (;;) {
        let res;
        try {
          res = await request(`${opts.url}${AGENT_ARTIFACT_PATH}/${ref.sha256}`, {
            dispatcher,
            headers: got > 0 ? { ...headers, range: `bytes=${got}-` } : headers,
          });
        } catch {
          return false;
        }
        if (res.statusCode === 404) {
          await res.body.dump();
          return false;
        }
        if (res.statusCode !== 200 && res.statusCode !== 206) {
          await res.body.dump();
          return false;
        }
        try {
          for await (const chunk of res.body as AsyncIterable<Buffer>) {
            hash.update(chunk);
            got += chunk.length;
            bytesDownloaded += chunk.length;
          }
          return true;
        } catch {
          if (got === 0) return false;
          resumed++;
        }
      }
    });
    if (ok) {
      downloads++;
      if (got === ref.size && hash.digest('hex') === ref.sha256) return;
      hashFailures++;
    }
    retries++;
    await sleep(Math.min(5000, 100 * 2 ** Math.min(attempt, 6)));
  }
}

function heartbeat(agent: SimAgent): void {
  if (agent.ws.readyState !== WebSocket.OPEN) return;
  agent.ws.send(
    JSON.stringify({
      type: 'heartbeat',
      seq: ++agent.seq,
      packages: [],
      health_status: 'healthy',
      ...(agent.distribution ? { distribution: agent.distribution } : {}),
    }),
  );
}

/** Accepts a desired state (answering `applying`) and converges on it in the background. */
function acceptDesired(agent: SimAgent, desired: DesiredState): DistributionStatus {
  const status: DistributionStatus = {
    policy: desired.policy,
    revision: desired.revision,
    state: 'applying',
    packages: desired.packages.map((p) => ({
      name: p.name,
      desired_version: p.version,
      version: '',
      state: 'applying' as const,
      rolled_back: false,
      config_hash: p.config_hash,
      drift: false,
    })),
    updated_at: now(),
  };
  agent.distribution = status;
  void (async () => {
    for (const p of desired.packages) await fetchArtifact(agent, p.artifact);
    if (agent.distribution?.revision !== desired.revision) return;
    agent.distribution = {
      ...status,
      state: 'applied',
      packages: status.packages.map((p) => ({ ...p, version: p.desired_version, state: 'applied' as const })),
      updated_at: now(),
    };
    applied++;
    // Reported at once (a real agent reports in its next heartbeat).
    heartbeat(agent);
  })();
  return status;
}

function connect(index: number): Promise<SimAgent | undefined> {
  const code = distAgentCode(opts.prefix, index);
  return new Promise((resolve) => {
    const ws = new WebSocket(`${opts.url.replace(/^http/, 'ws')}${AGENT_CONNECT_PATH}`, {
      headers: {
        [AGENT_CODE_HEADER]: code,
        [AGENT_AREA_HEADER]: opts.area,
        authorization: `Bearer ${agentToken(opts.secret, opts.area, code)}`,
      },
      perMessageDeflate: false,
    });
    const agent: SimAgent = { code, ws, distribution: undefined, seq: 0 };
    ws.on('open', () =>
      ws.send(
        JSON.stringify({
          type: 'hello',
          protocol: PROTOCOL_VERSION,
          agent: {
            agent_code: code,
            area: opts.area,
            hostname: `dist-${index}`,
            address: '127.0.0.1',
            version: '1.0.0-sim',
            os: 'linux',
            arch: 'amd64',
            labels: { role: 'web' },
          },
          packages: [],
          health_status: 'healthy',
        }),
      ),
    );
    ws.on('message', (data) => {
      const parsed = ControllerMessageSchema.safeParse(JSON.parse(String(data)));
      if (!parsed.success) return;
      const msg = parsed.data;
      if (msg.type === 'welcome') {
        resolve(agent);
        return;
      }
      if (msg.type !== 'request') return;
      const req = msg.request;
      const answer =
        req.op === 'desired_state'
          ? { ok: true, result: acceptDesired(agent, req.desired) }
          : req.op === 'distribution' && agent.distribution
            ? { ok: true, result: agent.distribution }
            : { ok: false, error: { code: 'unsupported_op', message: `not simulated: ${req.op}` } };
      ws.send(JSON.stringify({ type: 'response', id: msg.id, ...answer }));
    });
    ws.on('unexpected-response', (_req, res) => {
      res.resume();
      resolve(undefined);
    });
    ws.on('error', () => resolve(undefined));
  });
}

async function main(): Promise<void> {
  const agents: SimAgent[] = [];
  let failed = 0;
  let next = 0;
  await Promise.all(
    Array.from({ length: 64 }, async () => {
      while (next < opts.count) {
        const a = await connect(next++);
        if (a) agents.push(a);
        else failed++;
      }
    }),
  );
  // Heartbeats every 10 s, spread over the interval, as production agents send them.
  let i = 0;
  setInterval(() => {
    for (let k = 0; k < Math.ceil(agents.length / 100); k++) {
      const a = agents[i++ % Math.max(1, agents.length)];
      if (a) heartbeat(a);
    }
  }, opts.heartbeatTickMs ?? 100);
  emit({ event: 'ready', t: Date.now(), connected: agents.length, failed });
  setInterval(
    () =>
      emit({
        event: 'stats',
        t: Date.now(),
        applied,
        downloads,
        bytesDownloaded,
        hashFailures,
        retries,
        resumed,
      }),
    500,
  );
}

if (isMain) {
  const exit = () => process.exit(0);
  process.on('SIGTERM', exit);
  process.on('SIGINT', exit);
  const parent = process.ppid;
  setInterval(() => {
    if (process.ppid !== parent) process.exit(0);
  }, 1000).unref();
  void main();
}
