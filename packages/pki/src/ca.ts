/**
 * The built-in certificate authority: an ECDSA P-256 CA (10 years) that issues short-lived leaf
 * certificates for the server, controllers, agents and clients, and signs the CSRs they send to
 * renew. X.509 is built with @peculiar/x509 over WebCrypto: node:crypto parses certificates but
 * cannot create or sign them.
 *
 * A CA directory holds `ca.key` (0600, PKCS#8), `ca.crt` (the current CA certificate) and
 * `ca-bundle.crt` — what everyone trusts: the current CA and, after a rotation, the previous one
 * until its certificates have been renewed (see initCa's `rotate`).
 */
import { randomBytes, webcrypto, X509Certificate as NodeX509 } from 'node:crypto';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type * as X509 from '@peculiar/x509';
import { writeFileAtomic } from './files.js';
import {
  checkIdentity,
  DEFAULT_CERT_DAYS,
  identityUri,
  splitPemBundle,
  type CertIdentity,
  type CertKind,
} from './identity.js';

/**
 * @peculiar/x509, loaded on first use: the agent imports this package for identities and CSRs
 * (node:crypto only) and its bundle leaves the ASN.1 library out. tsyringe, which it resolves
 * its parts with, needs the Reflect metadata polyfill first.
 */
let lib: Promise<typeof X509> | undefined;
function x509lib(): Promise<typeof X509> {
  return (lib ??= (async () => {
    await import('reflect-metadata');
    const m = await import('@peculiar/x509');
    m.cryptoProvider.set(webcrypto as never);
    return m;
  })());
}

type CryptoKey = webcrypto.CryptoKey;
type CryptoKeyPair = webcrypto.CryptoKeyPair;

const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const DAY_MS = 86_400_000;
/** Certificates start a little in the past, so that a clock a bit behind still accepts them. */
const BACKDATE_MS = 5 * 60_000;

export const CA_KEY_FILE = 'ca.key';
export const CA_CERT_FILE = 'ca.crt';
export const CA_BUNDLE_FILE = 'ca-bundle.crt';

export interface IssueOptions extends CertIdentity {
  /** Extra DNS names or IP addresses (server and controller certificates). */
  sans?: readonly string[];
  /** Lifetime; default DEFAULT_CERT_DAYS of the kind. */
  days?: number;
  /** Lifetime in milliseconds (tests of renewal); wins over `days`. */
  lifetimeMs?: number;
  now?: Date;
}

export interface SignedCert {
  certPem: string;
  serial: string;
  notAfter: Date;
}

export interface IssuedCert extends SignedCert {
  keyPem: string;
}

function pem(label: string, der: ArrayBuffer): string {
  const b64 = Buffer.from(der).toString('base64');
  return `-----BEGIN ${label}-----\n${b64.replace(/(.{64})/g, '$1\n').replace(/\n$/, '')}\n-----END ${label}-----\n`;
}

function derOf(pemText: string, label: string): Buffer {
  const m = new RegExp(`-----BEGIN ${label}-----([\\s\\S]+?)-----END ${label}-----`).exec(pemText);
  if (!m?.[1]) throw new Error(`no ${label} in PEM`);
  return Buffer.from(m[1].replace(/\s+/g, ''), 'base64');
}

/** A positive 128-bit serial in hex. */
function newSerial(): string {
  const b = randomBytes(16);
  b[0] = ((b[0] ?? 0) & 0x7f) | 0x10;
  return b.toString('hex');
}

const isIp = (s: string) =>
  /^\d{1,3}(\.\d{1,3}){3}$/.test(s) || (s.includes(':') && /^[0-9a-fA-F:.]+$/.test(s));

/** Default SANs of a server or controller certificate: what loopback clients dial. */
export const LOOPBACK_SANS = ['localhost', '127.0.0.1', '::1'] as const;

async function generateKeys(): Promise<CryptoKeyPair> {
  return (await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify'])) as unknown as CryptoKeyPair;
}

async function exportKeyPem(key: CryptoKey): Promise<string> {
  return pem('PRIVATE KEY', (await webcrypto.subtle.exportKey('pkcs8', key as never)) as ArrayBuffer);
}

export interface CreateCaOptions {
  commonName?: string;
  days?: number;
  now?: Date;
}

export class CertificateAuthority {
  private constructor(
    private readonly cert: X509.X509Certificate,
    private readonly key: CryptoKey,
    private readonly keyPemText: string,
    /** Certificates trusted besides this CA's own (a previous CA during a rotation). */
    private readonly alsoTrusted: readonly string[],
  ) {}

  /** A new CA (not saved). */
  static async create(opts: CreateCaOptions = {}): Promise<CertificateAuthority> {
    const x509 = await x509lib();
    const now = opts.now ?? new Date();
    const keys = await generateKeys();
    const cn =
      opts.commonName ?? `Opsplane CA ${now.toISOString().slice(0, 10)} ${randomBytes(3).toString('hex')}`;
    const cert = await x509.X509CertificateGenerator.createSelfSigned({
      serialNumber: newSerial(),
      name: [{ CN: [cn] }, { O: ['Opsplane'] }],
      notBefore: new Date(now.getTime() - BACKDATE_MS),
      notAfter: new Date(now.getTime() + (opts.days ?? 3650) * DAY_MS),
      keys,
      signingAlgorithm: ALG,
      extensions: [
        new x509.BasicConstraintsExtension(true, 0, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      ],
    });
    return new CertificateAuthority(cert, keys.privateKey, await exportKeyPem(keys.privateKey), []);
  }

  /** Reads a CA directory (ca.key, ca.crt, ca-bundle.crt when present). */
  static async load(dir: string): Promise<CertificateAuthority> {
    const [certPem, keyPem] = await Promise.all([
      readFile(join(dir, CA_CERT_FILE), 'utf8'),
      readFile(join(dir, CA_KEY_FILE), 'utf8'),
    ]);
    const bundle = await readFile(join(dir, CA_BUNDLE_FILE), 'utf8').catch(() => certPem);
    return CertificateAuthority.fromPem(certPem, keyPem, bundle);
  }

  static async fromPem(certPem: string, keyPem: string, bundlePem?: string): Promise<CertificateAuthority> {
    const x509 = await x509lib();
    const cert = new x509.X509Certificate(certPem);
    const key = (await webcrypto.subtle.importKey('pkcs8', derOf(keyPem, 'PRIVATE KEY'), ALG, true, [
      'sign',
    ])) as unknown as CryptoKey;
    const own = new NodeX509(certPem).fingerprint256;
    const others = splitPemBundle(bundlePem ?? '').filter((b) => new NodeX509(b).fingerprint256 !== own);
    return new CertificateAuthority(cert, key, keyPem, others);
  }

  /** This CA's certificate. */
  get certPem(): string {
    return this.cert.toString('pem') + '\n';
  }

  /** What clients and servers trust: this CA, then any still-trusted previous one. */
  get bundlePem(): string {
    return [this.certPem, ...this.alsoTrusted].join('');
  }

  get notAfter(): Date {
    return this.cert.notAfter;
  }

  /** The same CA trusting also `pems` (a previous CA during a rotation), expired ones dropped. */
  withTrusted(pems: readonly string[], now = new Date()): CertificateAuthority {
    const own = new NodeX509(this.certPem).fingerprint256;
    const seen = new Set([own]);
    const keep: string[] = [];
    for (const p of [...this.alsoTrusted, ...pems]) {
      const x = new NodeX509(p);
      if (seen.has(x.fingerprint256) || new Date(x.validTo) < now) continue;
      seen.add(x.fingerprint256);
      keep.push(p);
    }
    return new CertificateAuthority(this.cert, this.key, this.keyPemText, keep);
  }

  /** Writes ca.key (0600), ca.crt and ca-bundle.crt into `dir` (0700). */
  async save(dir: string): Promise<void> {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    await writeFileAtomic(join(dir, CA_KEY_FILE), this.keyPemText, 0o600);
    await writeFileAtomic(join(dir, CA_CERT_FILE), this.certPem, 0o644);
    await writeFileAtomic(join(dir, CA_BUNDLE_FILE), this.bundlePem, 0o644);
  }

  /** A new key pair and its certificate. */
  async issue(opts: IssueOptions): Promise<IssuedCert> {
    const keys = await generateKeys();
    const signed = await this.sign(keys.publicKey, opts);
    return { ...signed, keyPem: await exportKeyPem(keys.privateKey) };
  }

  /**
   * Many certificates sharing one new key (simulated fleets in benchmarks: generating a key per
   * simulated agent would measure key generation). Never for real identities.
   */
  async issueSharedKey(list: readonly IssueOptions[]): Promise<{ keyPem: string; certs: SignedCert[] }> {
    const x509 = await x509lib();
    const keys = await generateKeys();
    const ski = await x509.SubjectKeyIdentifierExtension.create(keys.publicKey as never);
    const certs: SignedCert[] = [];
    for (const o of list) certs.push(await this.sign(keys.publicKey, o, ski));
    return { keyPem: await exportKeyPem(keys.privateKey), certs };
  }

  /**
   * Signs a PKCS#10 request for `opts`' identity. Only the request's public key is used (after
   * its signature — the proof that the requester holds the private key — checks out): the name,
   * area and kind come from the caller, who has authenticated the requester.
   */
  async signCsr(csrPem: string, opts: IssueOptions): Promise<SignedCert> {
    const x509 = await x509lib();
    let csr: X509.Pkcs10CertificateRequest;
    try {
      csr = new x509.Pkcs10CertificateRequest(csrPem);
    } catch (e) {
      throw new Error(`not a certificate request: ${(e as Error).message}`);
    }
    if (!(await csr.verify())) throw new Error('the certificate request is not signed by its key');
    const alg = csr.publicKey.algorithm as { name?: string; namedCurve?: string };
    if (alg.name !== 'ECDSA' || alg.namedCurve !== 'P-256') {
      throw new Error('certificate requests must use an ECDSA P-256 key');
    }
    return this.sign(await csr.publicKey.export(ALG, ['verify']), opts);
  }

  private aki: Promise<X509.AuthorityKeyIdentifierExtension> | undefined;

  private async sign(
    publicKey: CryptoKey,
    opts: IssueOptions,
    ski?: X509.SubjectKeyIdentifierExtension,
  ): Promise<SignedCert> {
    const x509 = await x509lib();
    checkIdentity(opts);
    const now = opts.now ?? new Date();
    const lifetime = opts.lifetimeMs ?? (opts.days ?? DEFAULT_CERT_DAYS[opts.kind]) * DAY_MS;
    let notAfter = new Date(now.getTime() + lifetime);
    // A leaf never outlives its CA.
    if (notAfter > this.cert.notAfter) notAfter = this.cert.notAfter;
    const serial = newSerial();
    const names: X509.JsonGeneralName[] = [{ type: 'url', value: identityUri(opts) }];
    const serving = opts.kind === 'server' || opts.kind === 'controller';
    const sans = opts.sans ?? (serving ? LOOPBACK_SANS : []);
    for (const s of sans) names.push({ type: isIp(s) ? 'ip' : 'dns', value: s });
    const eku: string[] =
      opts.kind === 'agent'
        ? [x509.ExtendedKeyUsage.clientAuth]
        : [x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth];
    const cert = await x509.X509CertificateGenerator.create({
      serialNumber: serial,
      subject: [{ CN: [opts.name] }, { OU: [opts.kind] }, { O: ['Opsplane'] }],
      issuer: this.cert.subjectName,
      notBefore: new Date(Math.min(now.getTime() - BACKDATE_MS, notAfter.getTime() - 1000)),
      notAfter,
      publicKey: publicKey as never,
      signingKey: this.key as never,
      signingAlgorithm: ALG,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(
          x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyAgreement,
          true,
        ),
        new x509.ExtendedKeyUsageExtension(eku),
        new x509.SubjectAlternativeNameExtension(names),
        await (this.aki ??= x509.AuthorityKeyIdentifierExtension.create(this.cert)),
        ski ?? (await x509.SubjectKeyIdentifierExtension.create(publicKey as never)),
      ],
    });
    return { certPem: cert.toString('pem') + '\n', serial, notAfter };
  }
}

/** The CN of a certificate request (for checks before relaying it), or undefined if unreadable. */
export async function csrCommonName(csrPem: string): Promise<string | undefined> {
  try {
    const x509 = await x509lib();
    const csr = new x509.Pkcs10CertificateRequest(csrPem);
    return csr.subjectName.getField('CN')[0];
  } catch {
    return undefined;
  }
}

export interface InitCaOptions {
  /** Replace an existing CA outright (its certificates stop being trusted). */
  force?: boolean;
  /**
   * Rotate: a new CA key and certificate, the old certificate kept in ca-bundle.crt so that what
   * it issued stays trusted until renewed by the new one.
   */
  rotate?: boolean;
  commonName?: string;
  days?: number;
}

export interface InitCaResult {
  dir: string;
  certPath: string;
  keyPath: string;
  bundlePath: string;
  /** false when a CA was there already and kept. */
  created: boolean;
  rotated: boolean;
}

async function exists(path: string): Promise<boolean> {
  return readFile(path).then(
    () => true,
    () => false,
  );
}

/**
 * `opsplane ca init`: creates a CA in `dir` unless one is there (then it is kept, `created:
 * false`), or replaces it (`force`), or rotates it (`rotate`).
 */
export async function initCa(dir: string, opts: InitCaOptions = {}): Promise<InitCaResult> {
  const paths = {
    dir,
    certPath: join(dir, CA_CERT_FILE),
    keyPath: join(dir, CA_KEY_FILE),
    bundlePath: join(dir, CA_BUNDLE_FILE),
  };
  const present = await exists(paths.keyPath);
  if (present && !opts.force && !opts.rotate) return { ...paths, created: false, rotated: false };
  let ca = await CertificateAuthority.create({
    ...(opts.commonName ? { commonName: opts.commonName } : {}),
    ...(opts.days ? { days: opts.days } : {}),
  });
  if (present && opts.rotate) {
    const old = await readFile(paths.bundlePath, 'utf8').catch(() => readFile(paths.certPath, 'utf8'));
    ca = ca.withTrusted(splitPemBundle(old));
  }
  await ca.save(dir);
  return { ...paths, created: true, rotated: present && !!opts.rotate };
}

/** Issues a leaf from the CA in `caDir` and writes `<outDir>/<base>.crt`, `<base>.key` (0600) and `ca.crt` (the bundle). */
export async function issueToFiles(
  caDir: string,
  outDir: string,
  base: string,
  opts: IssueOptions,
): Promise<{ certPath: string; keyPath: string; caPath: string; issued: IssuedCert }> {
  const ca = await CertificateAuthority.load(caDir);
  const issued = await ca.issue(opts);
  await mkdir(outDir, { recursive: true, mode: 0o700 });
  const certPath = join(outDir, `${base}.crt`);
  const keyPath = join(outDir, `${base}.key`);
  const caPath = join(outDir, 'ca.crt');
  await writeFileAtomic(keyPath, issued.keyPem, 0o600);
  await writeFileAtomic(certPath, issued.certPem, 0o644);
  await writeFileAtomic(caPath, ca.bundlePem, 0o644);
  return { certPath, keyPath, caPath, issued };
}

export type { CertKind };
