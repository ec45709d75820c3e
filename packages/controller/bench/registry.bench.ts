/**
 * Micro-benchmark of the agent registry at fleet scale (default 50 000 agents), without
 * sockets: attach, the heartbeat path as the socket runs it (JSON.parse + zod validation +
 * registry update), one sweep, and a filtered list page.
 * Usage: node packages/controller/dist/bench/registry.bench.js [agents=50000]
 */
import { AgentMessageSchema } from '@opsplane/models';
import type { AgentConnection } from '../src/agent-connection.js';
import { AgentFilter } from '../src/agent-filter.js';
import { AgentRegistry } from '../src/agent-registry.js';

const N = Number(process.argv[2] ?? 50_000);
const registry = new AgentRegistry({
  controllerId: 'bench',
  area: 'bench',
  offlineAfterMs: 30_000,
  offlineRetentionMs: 86_400_000,
});
const packages = ['web', 'db', 'cache'].map((name) => ({
  name,
  version: '1.0.0',
  is_running: true,
  duration: 1e9,
  status: 'running' as const,
}));
// Only the fields the registry touches.
const conns = Array.from(
  { length: N },
  (_, i) => ({ code: `agent-${i}`, lastSeenMs: Date.now() }) as unknown as AgentConnection,
);

const time = (label: string, f: () => void) => {
  const s = performance.now();
  f();
  const ms = performance.now() - s;
  console.log(`${label}: ${ms.toFixed(1)} ms`);
  return ms;
};

time(`attach ${N}`, () => {
  for (const [i, c] of conns.entries()) {
    registry.attach(c, {
      info: {
        agent_code: c.code,
        area: 'bench',
        hostname: `h${i}`,
        address: '10.0.0.1',
        version: '1',
        os: 'linux',
        arch: 'amd64',
        labels: {},
        zone: `z${i % 10}`,
      },
      packages,
      healthStatus: 'healthy',
    });
  }
});
const frame = JSON.stringify({ type: 'heartbeat', seq: 1, packages, health_status: 'healthy' });
for (let round = 0; round < 3; round++) {
  const ms = time(`heartbeat path x${N} (round ${round + 1})`, () => {
    for (const c of conns) {
      const msg = AgentMessageSchema.parse(JSON.parse(frame));
      if (msg.type === 'heartbeat')
        registry.heartbeat(c, { packages: msg.packages, healthStatus: msg.health_status });
    }
  });
  console.log(
    `  → ${((ms * 1000) / N).toFixed(1)} µs per heartbeat; ${N} agents at 10 s use ${((ms / 10_000) * 100).toFixed(1)}% of one core`,
  );
}
for (let i = 0; i < 3; i++) time(`sweep (${i + 1})`, () => registry.sweep());
time('list page 1 (first call sorts)', () => registry.list(AgentFilter.compile({}), 1, 100));
time('list page 1 (sorted)', () => registry.list(AgentFilter.compile({}), 1, 100));
time('list filtered zone=z3 page 5', () => registry.list(AgentFilter.compile({ zone: 'z3' }), 5, 100));
time(`connectionOf x${N}`, () => {
  for (const c of conns) registry.connectionOf(c.code);
});
console.log(`heap used: ${Math.round(process.memoryUsage().heapUsed / 1e6)} MB`);
