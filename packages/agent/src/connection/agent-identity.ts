/**
 * The agent's TLS identity: the pinned CA bundle and its own certificate and key (mutual TLS).
 * The platform writes them at deployment (agent.yaml's `tls`); renewals (a CSR for a new key,
 * sent over the control channel, signed by the platform) are kept in `data_dir/tls/agent.crt`
 * and `agent.key` and win over the configured pair from then on — as long as they are valid
 * and last longer. A renewal that brings a new CA bundle (after a CA rotation) is kept in
 * `data_dir/tls/ca.crt` and trusted alongside the pinned one.
 */
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { certInfo, createCsr, renewalDue, splitPemBundle, writeFileAtomic } from '@opsplane/pki';
import type { Logger } from '../log.js';
import type { AgentConfig } from '../config.js';

export interface TlsMaterial {
  ca: string;
  cert?: string;
  key?: string;
}

const pem = (v: string) => (v.includes('-----BEGIN') ? v : readFileSync(v, 'utf8'));

function readOptional(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

function pairValid(cert: string, key: string, now = new Date()): boolean {
  try {
    const x = new X509Certificate(cert);
    return x.checkPrivateKey(createPrivateKey(key)) && new Date(x.validTo) > now;
  } catch {
    return false;
  }
}

export class AgentIdentity {
  private current: TlsMaterial;
  private pendingKey: string | undefined;
  private readonly dir: string;

  constructor(
    private readonly tls: NonNullable<AgentConfig['tls']>,
    dataDir: string,
    private readonly log: Logger,
  ) {
    this.dir = join(dataDir, 'tls');
    this.current = this.load();
  }

  private load(): TlsMaterial {
    const pinned = pem(this.tls.ca);
    const extraCa = readOptional(join(this.dir, 'ca.crt'));
    const ca = extraCa ? mergeBundles(pinned, extraCa) : pinned;
    let cert = this.tls.cert ? pem(this.tls.cert) : undefined;
    let key = this.tls.key ? pem(this.tls.key) : undefined;
    const renewedCert = readOptional(join(this.dir, 'agent.crt'));
    const renewedKey = readOptional(join(this.dir, 'agent.key'));
    if (renewedCert && renewedKey && pairValid(renewedCert, renewedKey)) {
      const later = !cert || certInfo(renewedCert).notAfter.getTime() > certInfo(cert).notAfter.getTime();
      if (later) {
        cert = renewedCert;
        key = renewedKey;
      }
    }
    return { ca, ...(cert ? { cert } : {}), ...(key ? { key } : {}) };
  }

  get material(): TlsMaterial {
    return this.current;
  }

  get hasCertificate(): boolean {
    return this.current.cert !== undefined;
  }

  /** When the certificate expires, if there is one. */
  get notAfter(): Date | undefined {
    return this.current.cert ? certInfo(this.current.cert).notAfter : undefined;
  }

  renewalDue(now = new Date()): boolean {
    return this.tls.renew && this.current.cert !== undefined && renewalDue(this.current.cert, now);
  }

  /** A new key (kept until the answer) and its CSR. */
  async request(agentCode: string): Promise<string> {
    const { keyPem, csrPem } = await createCsr(agentCode);
    this.pendingKey = keyPem;
    return csrPem;
  }

  /** Stores a renewed certificate (must match the pending key) and uses it from the next connection on. */
  async accept(certPem: string, caPem?: string): Promise<void> {
    const key = this.pendingKey;
    if (!key) throw new Error('no renewal in progress');
    if (!pairValid(certPem, key)) throw new Error('the renewed certificate does not match the requested key');
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    // The CA bundle first (trusting one more CA early is harmless, and whoever sees the new
    // certificate sees the bundle it came with); then the key: a crash between key and
    // certificate leaves a pair that does not match, which load() ignores (the configured pair
    // is used and renewal happens again).
    if (caPem && splitPemBundle(caPem).length > 0) {
      await writeFileAtomic(join(this.dir, 'ca.crt'), caPem, 0o644);
    }
    await writeFileAtomic(join(this.dir, 'agent.key'), key, 0o600);
    await writeFileAtomic(join(this.dir, 'agent.crt'), certPem, 0o644);
    this.pendingKey = undefined;
    this.current = this.load();
    this.log.info({ not_after: this.notAfter?.toISOString() }, 'certificate renewed');
  }
}

/** `a` then the certificates of `b` not already in `a`. */
function mergeBundles(a: string, b: string): string {
  const seen = new Set<string>();
  const out: string[] = [];
  for (const p of [...splitPemBundle(a), ...splitPemBundle(b)]) {
    const fp = new X509Certificate(p).fingerprint256;
    if (seen.has(fp)) continue;
    seen.add(fp);
    out.push(p);
  }
  return out.join('');
}
