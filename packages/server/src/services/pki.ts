/**
 * The platform's side of the PKI: it holds the built-in CA (`server.pki.ca_dir` — the CA key
 * stays there, never in etcd, never on a controller), and
 *
 * - issues each agent its certificate at deployment (identity = its code and area, 30 days);
 * - signs renewals: controllers relay CSRs through etcd (`pki/csr/<kind>/<area>/<name>`, written
 *   only by controllers, which checked the requester's mutually authenticated identity), the
 *   server answers at `pki/issued/…` — refusing revoked agents — and records the latest
 *   certificate of each identity at `pki/certs/…` (serial and expiry, for the API);
 * - publishes revocations (`revocations/agents/<code>`), which every controller watches: the
 *   agent is disconnected at once and refused from then on. Revoking and reinstating are
 *   audited.
 *
 * With several server replicas each signer sees every request; a transaction that deletes the
 * request only if it is unchanged lets exactly one answer.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Etcd3, IKeyValue, Watcher } from 'etcd3';
import {
  AgentRevocationSchema,
  CertRecordSchema,
  OpsplaneError,
  PKI_CERTS_PREFIX,
  PKI_CSR_PREFIX,
  PKI_ISSUED_PREFIX,
  REVOCATIONS_PREFIX,
  RelayedCsrSchema,
  type AgentRevocation,
  type CertRecord,
} from '@opsplane/models';
import { CA_BUNDLE_FILE, CA_CERT_FILE, CertificateAuthority, certInfo, isCertKind } from '@opsplane/pki';
import type { Logger } from '@opsplane/kit';
import type { ServerConfig } from '../config.js';
import type { Actor, AuditTrail } from './audit-trail.js';
import type { PlatformServices } from './platform.js';

/** The trust bundle of a CA dir (ca-bundle.crt, else ca.crt), or undefined when there is none. */
export function caBundleOf(caDir: string): string | undefined {
  for (const f of [CA_BUNDLE_FILE, CA_CERT_FILE]) {
    try {
      return readFileSync(join(caDir, f), 'utf8');
    } catch {
      /* next */
    }
  }
  return undefined;
}

/** The TLS part of an agent's config written at deployment. */
export interface AgentTlsFiles {
  ca: string;
  cert: string;
  key: string;
}

/** etcd did not answer: the API says 503 (revocations and certificates live in etcd). */
async function inEtcd<T>(what: string, op: () => Promise<T>, timeoutMs = 5000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      op(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
      }),
    ]);
  } catch (e) {
    if (e instanceof OpsplaneError) throw e;
    throw new OpsplaneError('etcd_unavailable', `${what}: etcd is unavailable (${(e as Error).message})`, {
      status: 503,
    });
  } finally {
    clearTimeout(timer);
  }
}

export class PkiNotConfiguredError extends OpsplaneError {
  constructor() {
    super('not_configured', 'the server has no certificate authority (server.pki.ca_dir)', { status: 409 });
  }
}

export interface PkiServiceOptions {
  config: ServerConfig;
  platform: PlatformServices;
  audit: AuditTrail;
  logger: Logger;
}

export class PkiService {
  private ca: CertificateAuthority | undefined;
  private watcher: Watcher | undefined;
  private stopped = false;
  private retryTimer: NodeJS.Timeout | undefined;
  private readonly log: Logger;

  constructor(private readonly opts: PkiServiceOptions) {
    this.log = opts.logger.child({ component: 'pki' });
  }

  private get etcd(): Etcd3 {
    return this.opts.platform.etcdClient;
  }

  get enabled(): boolean {
    return this.ca !== undefined;
  }

  /** Loads the CA (when configured) and starts answering relayed renewals in the background. */
  async start(): Promise<void> {
    const pki = this.opts.config.server.pki;
    if (!pki) return;
    try {
      this.ca = await CertificateAuthority.load(pki.ca_dir);
    } catch (e) {
      throw new OpsplaneError(
        'validation_failed',
        `server.pki.ca_dir ${pki.ca_dir}: cannot load the CA (${(e as Error).message}); create it with \`opsplane ca init --dir ${pki.ca_dir}\``,
      );
    }
    this.log.info(
      { ca_dir: pki.ca_dir, ca_not_after: this.ca.notAfter.toISOString() },
      'certificate authority loaded',
    );
    if (pki.sign_renewals) void this.watchRequests();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    await this.watcher?.cancel().catch(() => undefined);
  }

  private retry(): void {
    if (this.stopped) return;
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => void this.watchRequests(), 1000);
    this.retryTimer.unref();
  }

  private async watchRequests(): Promise<void> {
    if (this.stopped) return;
    try {
      const pending = await this.etcd.getAll().prefix(PKI_CSR_PREFIX).exec();
      const w = await this.etcd
        .watch()
        .prefix(PKI_CSR_PREFIX)
        .startRevision(String(Number(pending.header.revision) + 1))
        .create();
      if (this.stopped) return void (await w.cancel());
      this.watcher = w;
      w.on('put', (kv: IKeyValue) => void this.answer(kv));
      w.on('error', (err: Error) => {
        this.log.warn({ err: err.message }, 'renewal watch failed; re-reading');
        void w.cancel().catch(() => undefined);
        this.retry();
      });
      for (const kv of pending.kvs) void this.answer(kv);
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'cannot watch renewal requests in etcd yet; retrying');
      this.retry();
    }
  }

  /** Answers one relayed CSR (exactly once across replicas). */
  private async answer(kv: IKeyValue): Promise<void> {
    const key = kv.key.toString();
    const [kind = '', area = '', name = '', ...rest] = key.slice(PKI_CSR_PREFIX.length).split('/');
    const issuedKey = `${PKI_ISSUED_PREFIX}${kind}/${area}/${name}`;
    let reply: { cert?: string; ca?: string; error?: string };
    let record: CertRecord | undefined;
    try {
      if (!this.ca) throw new Error('no certificate authority');
      if (rest.length || (kind !== 'agent' && kind !== 'controller') || !isCertKind(kind) || !area || !name)
        throw new Error(`malformed request key ${key}`);
      const req = RelayedCsrSchema.parse(JSON.parse(kv.value.toString()));
      if (kind === 'agent' && (await this.revocation(name))) throw new Error(`agent '${name}' is revoked`);
      const days =
        kind === 'agent'
          ? this.opts.config.server.pki?.agent_cert_days
          : this.opts.config.server.pki?.controller_cert_days;
      // Controllers keep their SANs (the names they are dialled by); agents need none.
      let sans: string[] | undefined;
      if (kind === 'controller') sans = await this.previousSans(kind, area, name);
      const signed = await this.ca.signCsr(req.csr, {
        kind,
        area,
        name,
        ...(days ? { days } : {}),
        ...(sans ? { sans } : {}),
      });
      reply = { cert: signed.certPem, ca: this.ca.bundlePem };
      record = {
        kind,
        area,
        name,
        serial: signed.serial,
        not_after: signed.notAfter.toISOString(),
        issued_at: new Date().toISOString(),
        source: 'renewal',
      };
      this.log.info({ kind, area, name, via: req.via, serial: signed.serial }, 'certificate renewed');
    } catch (e) {
      reply = { error: (e as Error).message };
      this.log.warn({ key, err: (e as Error).message }, 'renewal refused');
    }
    const value = JSON.stringify({ ...reply, issued_at: new Date().toISOString() });
    // Only if the request is still the one we read: another replica may have answered it.
    const txn = this.etcd
      .if(key, 'Mod', '==', kv.mod_revision)
      .then(
        this.etcd.delete().key(key),
        this.etcd.put(issuedKey).value(value),
        ...(record
          ? [this.etcd.put(`${PKI_CERTS_PREFIX}${kind}/${area}/${name}`).value(JSON.stringify(record))]
          : []),
      );
    await txn
      .commit()
      .catch((err: Error) => this.log.warn({ key, err: err.message }, 'cannot answer a renewal'));
  }

  /** The DNS/IP names of the certificate a controller presents now (so that a renewal keeps them). */
  private async previousSans(kind: string, area: string, name: string): Promise<string[] | undefined> {
    void kind;
    const c = this.opts.platform.listControllers().find((x) => x.area === area && x.id === name);
    if (!c) return undefined;
    try {
      const host = new URL(/^[a-z]+:\/\//i.test(c.address) ? c.address : `https://${c.address}`).hostname;
      return [...new Set(['localhost', '127.0.0.1', '::1', host.replace(/^\[|\]$/g, '')])];
    } catch {
      return undefined;
    }
  }

  /** An agent's key, certificate and the CA bundle, for its config (deployment). */
  async issueAgent(code: string, area: string): Promise<AgentTlsFiles | undefined> {
    if (!this.ca) return undefined;
    const days = this.opts.config.server.pki?.agent_cert_days;
    const issued = await this.ca.issue({ kind: 'agent', name: code, area, ...(days ? { days } : {}) });
    const record: CertRecord = {
      kind: 'agent',
      area,
      name: code,
      serial: issued.serial,
      not_after: issued.notAfter.toISOString(),
      issued_at: new Date().toISOString(),
      source: 'deployment',
    };
    await this.etcd
      .put(`${PKI_CERTS_PREFIX}agent/${area}/${code}`)
      .value(JSON.stringify(record))
      .catch((err: Error) => this.log.warn({ err: err.message }, 'cannot record an issued certificate'));
    return { ca: this.ca.bundlePem, cert: issued.certPem, key: issued.keyPem };
  }

  private async revocation(code: string): Promise<AgentRevocation | undefined> {
    const v = await this.etcd.get(`${REVOCATIONS_PREFIX}${code}`).string();
    if (v === null) return undefined;
    try {
      return AgentRevocationSchema.parse(JSON.parse(v));
    } catch {
      return { agent_code: code, reason: '', revoked_at: '' };
    }
  }

  /** Publishes a revocation: every controller drops the agent within moments and refuses it from then on. */
  async revokeAgent(actor: Actor, code: string, reason: string): Promise<AgentRevocation> {
    // Looked up before the audit transaction: on the embedded database a query outside the
    // transaction would wait for it.
    const area = await this.opts.platform
      .locate(code)
      .then((l) => l.area)
      .catch(() => undefined);
    return this.opts.audit.run(
      actor,
      { action: 'agent.revoke', targetType: 'agent', targetId: code, details: { reason } },
      async () => {
        const rev: AgentRevocation = {
          agent_code: code,
          ...(area ? { area } : {}),
          reason,
          revoked_at: new Date().toISOString(),
          revoked_by: actor.username,
        };
        await inEtcd('revoking the agent', () =>
          this.etcd.put(`${REVOCATIONS_PREFIX}${code}`).value(JSON.stringify(rev)).exec(),
        );
        this.log.warn({ agent: code, area, by: actor.username }, 'agent revoked');
        return rev;
      },
    );
  }

  /** Lifts a revocation (the agent needs a valid certificate or token to come back: redeploy it). */
  async reinstateAgent(actor: Actor, code: string): Promise<void> {
    await this.opts.audit.run(
      actor,
      { action: 'agent.reinstate', targetType: 'agent', targetId: code },
      async () => {
        const res = await inEtcd('reinstating the agent', () =>
          this.etcd.delete().key(`${REVOCATIONS_PREFIX}${code}`).exec(),
        );
        if (Number(res.deleted) === 0) {
          throw new OpsplaneError('not_found', `agent '${code}' is not revoked`, { status: 404 });
        }
      },
    );
  }

  async listRevocations(): Promise<AgentRevocation[]> {
    const all = await inEtcd('listing revocations', () =>
      this.etcd.getAll().prefix(REVOCATIONS_PREFIX).strings(),
    );
    return Object.entries(all)
      .map(([k, v]) => {
        try {
          return AgentRevocationSchema.parse(JSON.parse(v));
        } catch {
          return { agent_code: k.slice(REVOCATIONS_PREFIX.length), reason: '', revoked_at: '' };
        }
      })
      .sort((a, b) => b.revoked_at.localeCompare(a.revoked_at));
  }

  async listCertificates(): Promise<{
    ca: { not_after: string; fingerprint256: string } | null;
    certificates: CertRecord[];
  }> {
    const all = await inEtcd('listing certificates', () =>
      this.etcd.getAll().prefix(PKI_CERTS_PREFIX).strings(),
    );
    const certificates = Object.values(all)
      .flatMap((v) => {
        const p = CertRecordSchema.safeParse(JSON.parse(v));
        return p.success ? [p.data] : [];
      })
      .sort((a, b) => a.not_after.localeCompare(b.not_after));
    const ca = this.ca ? certInfo(this.ca.certPem) : undefined;
    return {
      ca: ca ? { not_after: ca.notAfter.toISOString(), fingerprint256: ca.fingerprint256 } : null,
      certificates,
    };
  }
}
