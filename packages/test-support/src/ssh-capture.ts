/**
 * A fake SSH server that captures credentials: it completes the SSH handshake with a host key of
 * its own, records every authentication attempt (method, user, and the password when one is
 * sent) and refuses them all. What an attacker would run at an address a device was re-pointed
 * to; tests assert that no stored password ever reaches it.
 */
import { createHash } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import ssh2, { type Connection } from 'ssh2';

// ssh2 is CommonJS and only its Client is a named export Node can see.
const { Server, utils } = ssh2;

export interface CapturedAuth {
  method: string;
  username: string;
  password?: string;
}

export interface CaptureSshServer {
  readonly host: string;
  readonly port: number;
  /** Its host key's fingerprint as OpenSSH prints it (`SHA256:…`). */
  readonly fingerprint: string;
  /** Every authentication attempt so far. */
  readonly attempts: readonly CapturedAuth[];
  /** The passwords received so far. */
  passwords(): string[];
  stop(): Promise<void>;
}

export async function startCaptureSshServer(
  opts: { host?: string; port?: number } = {},
): Promise<CaptureSshServer> {
  const host = opts.host ?? '127.0.0.1';
  // ssh2 fails to parse a small share of the ed25519 keys it generates itself (about 0.5 %
  // measured here — a flaky test otherwise): take the next one.
  let privateKey = '';
  let parsed: ReturnType<typeof utils.parseKey> = new Error('no key');
  for (let i = 0; i < 20 && parsed instanceof Error; i++) {
    privateKey = utils.generateKeyPairSync('ed25519').private;
    parsed = utils.parseKey(privateKey);
  }
  if (parsed instanceof Error) throw parsed;
  const blob = (Array.isArray(parsed) ? parsed[0] : parsed)!.getPublicSSH();
  const fingerprint = `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
  const attempts: CapturedAuth[] = [];
  const clients = new Set<Connection>();
  const server = new Server({ hostKeys: [privateKey] }, (client) => {
    clients.add(client);
    client.on('close', () => clients.delete(client));
    client.on('error', () => undefined);
    client.on('authentication', (ctx) => {
      attempts.push({
        method: ctx.method,
        username: ctx.username,
        ...(ctx.method === 'password' ? { password: ctx.password } : {}),
      });
      ctx.reject(['password', 'publickey']);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    host,
    port,
    fingerprint,
    attempts,
    passwords: () => attempts.flatMap((a) => (a.password !== undefined ? [a.password] : [])),
    async stop() {
      for (const c of clients) c.end();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
