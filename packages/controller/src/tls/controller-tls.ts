/**
 * The controller's own TLS: HTTPS and wss with its certificate, client certificates requested
 * (and checked against the CA bundle) so that agents can authenticate by certificate — the
 * handshake itself never fails for a missing or unknown client certificate, because the HTTP
 * API's callers (the platform, peers, operators) authenticate by bearer token; the agent
 * socket decides (agent-socket.ts). The files are re-read when they change (renewal, CA
 * rotation) and swapped in with setSecureContext: no restart, no dropped connection.
 *
 * Renewal: in the last third of its life the certificate is renewed through the platform
 * (CertRelay: a CSR for a new key through etcd), the new key and certificate written over the
 * configured files, and picked up by the reloader.
 */
import { constants as cryptoConstants } from 'node:crypto';
import type { Server as TlsServer } from 'node:tls';
import {
  createCsr,
  loadTlsMaterial,
  renewalDue,
  TlsReloader,
  writeFileAtomic,
  type TlsMaterial,
} from '@opsplane/pki';
import type { Logger } from '@opsplane/kit';
import type { CertRelay } from './cert-relay.js';

export interface ControllerTlsConfig {
  cert: string;
  key: string;
  ca: string;
  reloadIntervalMs: number;
  renew: boolean;
}

export class ControllerTls {
  private material: TlsMaterial;
  private reloader: TlsReloader | undefined;
  private renewTimer: NodeJS.Timeout | undefined;
  private renewing = false;

  constructor(
    private readonly cfg: ControllerTlsConfig,
    private readonly log: Logger,
  ) {
    this.material = loadTlsMaterial(cfg);
  }

  /** The trusted CA bundle (also what peers' certificates are checked against). */
  get ca(): string {
    return this.material.ca ?? '';
  }

  /** Options for https.createServer / Fastify's `https`. */
  serverOptions() {
    return {
      cert: this.material.cert ?? '',
      key: this.material.key ?? '',
      ca: this.material.ca ?? '',
      requestCert: true,
      rejectUnauthorized: false,
      minVersion: 'TLSv1.2' as const,
      // No session tickets: agents hold one long connection and do not resume, and a ticket
      // costs the server ~14 KB per connection (measured: 60 → 46 KB per mutual-TLS socket).
      secureOptions: cryptoConstants.SSL_OP_NO_TICKET,
    };
  }

  /** Re-reads the files when they change and swaps the server's context. */
  watch(server: TlsServer): void {
    this.reloader = new TlsReloader(
      this.cfg,
      (m) => {
        server.setSecureContext({
          cert: m.cert ?? '',
          key: m.key ?? '',
          ca: m.ca ?? '',
          minVersion: 'TLSv1.2',
          secureOptions: cryptoConstants.SSL_OP_NO_TICKET,
        });
        this.material = m;
        this.log.info('TLS certificate or CA bundle reloaded');
      },
      (err) => this.log.warn({ err: err.message }, 'TLS files changed but cannot be loaded yet'),
    );
    this.reloader.start(this.cfg.reloadIntervalMs);
  }

  /** Renews the controller's certificate through the platform when due (checked every `everyMs`). */
  startRenewal(relay: CertRelay, id: string, everyMs = 60_000): void {
    if (!this.cfg.renew || this.cfg.cert.includes('-----BEGIN')) return;
    const tick = () => void this.renewIfDue(relay, id);
    this.renewTimer = setInterval(tick, everyMs);
    this.renewTimer.unref();
    tick();
  }

  async renewIfDue(relay: CertRelay, id: string): Promise<boolean> {
    if (this.renewing || !this.material.cert || !renewalDue(this.material.cert)) return false;
    this.renewing = true;
    try {
      const { keyPem, csrPem } = await createCsr(id);
      const { cert } = await relay.request('controller', id, csrPem);
      await writeFileAtomic(this.cfg.key, keyPem, 0o600);
      await writeFileAtomic(this.cfg.cert, cert, 0o644);
      this.reloader?.check();
      this.log.info('controller certificate renewed by the platform');
      return true;
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'controller certificate renewal failed; will retry');
      return false;
    } finally {
      this.renewing = false;
    }
  }

  stop(): void {
    this.reloader?.stop();
    clearInterval(this.renewTimer);
  }
}
