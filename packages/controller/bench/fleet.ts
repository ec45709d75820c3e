/**
 * A simulated fleet for the agents benchmark, run as its own process (so that its sockets and
 * CPU are not counted against the controller): opens N agent connections speaking the real
 * protocol, heartbeating at the interval the controller hands out, answering requests.
 * Usage: node fleet.js <controller-url> <count> <area> <secret>
 */
import { FakeAgent } from '../test/support/fake-agent.js';

const [url, countArg, area, secret] = process.argv.slice(2);
if (!url || !countArg || !area || !secret) {
  console.error('usage: fleet.js <controller-url> <count> <area> <secret>');
  process.exit(2);
}
const count = Number(countArg);
const agents: FakeAgent[] = [];
const started = Date.now();
const CHUNK = 250;
for (let i = 0; i < count; i += CHUNK) {
  const batch = await Promise.all(
    Array.from({ length: Math.min(CHUNK, count - i) }, (_, j) =>
      FakeAgent.connect({
        url,
        code: `bench-${String(i + j).padStart(6, '0')}`,
        area,
        secret,
        packages: ['web', 'db', 'cache'],
        info: { zone: `z${(i + j) % 10}`, mode: 'prod', group: `g${(i + j) % 100}` },
      }),
    ),
  );
  agents.push(...batch);
}
process.stdout.write(`${JSON.stringify({ connected: agents.length, ms: Date.now() - started })}\n`);
process.on('SIGTERM', () => {
  for (const a of agents) a.ws.terminate();
  process.exit(0);
});
