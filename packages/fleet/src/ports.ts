/**
 * Loopback ports for the processes a fleet starts — the one port picker of the repository
 * (@opsplane/test-support re-exports it).
 *
 * - `freePort`: any free port (from the kernel's ephemeral range), never handed out twice by
 *   this process.
 * - `stablePort`: a free port BELOW the ephemeral range, for anything that is killed and
 *   restarted on the same port (a package on restart, a controller or agent by start()): an
 *   ephemeral port may meanwhile become the local end of some outgoing connection on a busy
 *   machine, and the restarted process would fail with EADDRINUSE.
 */
import { randomInt } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';

const handedOut = new Set<number>();

/** True when `host:port` can be listened on right now (exclusively). */
export function canListen(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.unref();
    srv.once('error', () => resolve(false));
    srv.listen({ port, host, exclusive: true }, () => srv.close(() => resolve(true)));
  });
}

/** A TCP port on 127.0.0.1 that was free a moment ago and not handed out before in this process. */
export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = await new Promise<number>((resolve, reject) => {
      const srv = createServer();
      srv.unref();
      srv.once('error', reject);
      srv.listen(0, '127.0.0.1', () => {
        const addr = srv.address();
        const p = typeof addr === 'object' && addr ? addr.port : 0;
        srv.close(() => resolve(p));
      });
    });
    if (!handedOut.has(port)) {
      handedOut.add(port);
      return port;
    }
  }
  throw new Error('could not find a free loopback port');
}

/** The kernel's ephemeral port range (ports it hands out for outgoing connections and port 0). */
function ephemeralRange(): [number, number] {
  try {
    const [lo, hi] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8')
      .trim()
      .split(/\s+/)
      .map(Number);
    if (lo !== undefined && hi !== undefined && lo > 1024 && hi > lo) return [lo, hi];
  } catch {
    /* not Linux */
  }
  return [32768, 60999];
}

/** A free loopback port below the ephemeral range (see the header); falls back to freePort(). */
export async function stablePort(): Promise<number> {
  const min = 10_000;
  const max = ephemeralRange()[0] - 1;
  if (max - min >= 1000) {
    for (let i = 0; i < 200; i++) {
      const p = min + randomInt(max - min);
      if (handedOut.has(p)) continue;
      if (await canListen(p)) {
        handedOut.add(p);
        return p;
      }
    }
  }
  return freePort();
}
