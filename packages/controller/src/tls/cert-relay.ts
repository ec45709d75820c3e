/**
 * Certificate renewal through the platform. The CA key lives with the platform server only; a
 * controller never signs. It relays a request through etcd — `pki/csr/<kind>/<area>/<name>` —
 * and waits for the platform's answer at `pki/issued/<kind>/<area>/<name>`, which it consumes
 * (deletes). Used for agents' requests (after checking that the request comes over the agent's
 * own mutually authenticated connection) and for the controller's own certificate.
 */
import type { Etcd3, IKeyValue, Watcher } from 'etcd3';
import {
  IssuedCertSchema,
  OpsplaneError,
  PKI_CSR_PREFIX,
  PKI_ISSUED_PREFIX,
  RequestTimeoutError,
  type RelayedCsr,
} from '@opsplane/models';
import type { Logger } from '@opsplane/kit';

export interface CertRelayOptions {
  etcd: Etcd3;
  area: string;
  controllerId: string;
  timeoutMs: number;
  logger: Logger;
}

interface Pending {
  resolve: (v: { cert: string; ca?: string }) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

export class CertRelay {
  private readonly pending = new Map<string, Pending>();
  private watcher: Promise<Watcher> | undefined;
  private closed = false;

  constructor(private readonly opts: CertRelayOptions) {}

  private ensureWatch(): Promise<Watcher> {
    this.watcher ??= (async () => {
      const w = await this.opts.etcd.watch().prefix(PKI_ISSUED_PREFIX).create();
      w.on('put', (kv: IKeyValue) => this.onIssued(kv.key.toString(), kv.value.toString()));
      w.on('error', (err: Error) => {
        this.opts.logger.warn({ err: err.message }, 'renewal watch failed');
        void w.cancel().catch(() => undefined);
        this.watcher = undefined;
      });
      return w;
    })().catch((e: unknown) => {
      this.watcher = undefined;
      throw e;
    });
    return this.watcher;
  }

  private onIssued(key: string, value: string): void {
    const p = this.pending.get(key);
    if (!p) return;
    this.pending.delete(key);
    clearTimeout(p.timer);
    void this.opts.etcd
      .delete()
      .key(key)
      .catch(() => undefined);
    let parsed;
    try {
      parsed = IssuedCertSchema.parse(JSON.parse(value));
    } catch {
      p.reject(
        new OpsplaneError('upstream_error', 'the platform answered the renewal with an unreadable value'),
      );
      return;
    }
    if (parsed.error || !parsed.cert) {
      p.reject(
        new OpsplaneError(
          'forbidden',
          `the platform refused the renewal: ${parsed.error ?? 'no certificate'}`,
        ),
      );
      return;
    }
    p.resolve({ cert: parsed.cert, ...(parsed.ca ? { ca: parsed.ca } : {}) });
  }

  /** Relays a CSR for `<kind>/<area>/<name>` and resolves with the signed certificate. */
  async request(
    kind: 'agent' | 'controller',
    name: string,
    csrPem: string,
  ): Promise<{ cert: string; ca?: string }> {
    if (this.closed) throw new OpsplaneError('controller_unavailable', 'controller is shutting down');
    const suffix = `${kind}/${this.opts.area}/${name}`;
    const issuedKey = `${PKI_ISSUED_PREFIX}${suffix}`;
    if (this.pending.has(issuedKey))
      throw new OpsplaneError('conflict', `a renewal for ${suffix} is in flight`);
    await this.ensureWatch();
    await this.opts.etcd.delete().key(issuedKey);
    const result = new Promise<{ cert: string; ca?: string }>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(issuedKey);
        reject(
          new RequestTimeoutError(`certificate renewal of ${suffix} by the platform`, this.opts.timeoutMs),
        );
      }, this.opts.timeoutMs);
      this.pending.set(issuedKey, { resolve, reject, timer });
    });
    const value: RelayedCsr = {
      csr: csrPem,
      requested_at: new Date().toISOString(),
      via: this.opts.controllerId,
    };
    try {
      await this.opts.etcd.put(`${PKI_CSR_PREFIX}${suffix}`).value(JSON.stringify(value));
    } catch (e) {
      const p = this.pending.get(issuedKey);
      if (p) {
        clearTimeout(p.timer);
        this.pending.delete(issuedKey);
      }
      throw e;
    }
    this.opts.logger.info({ identity: suffix }, 'certificate renewal relayed to the platform');
    return result;
  }

  async stop(): Promise<void> {
    this.closed = true;
    for (const [k, p] of this.pending) {
      clearTimeout(p.timer);
      p.reject(new OpsplaneError('controller_unavailable', 'controller is shutting down'));
      this.pending.delete(k);
    }
    const w = await this.watcher?.catch(() => undefined);
    await w?.cancel().catch(() => undefined);
  }
}
