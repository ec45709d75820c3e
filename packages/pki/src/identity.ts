/**
 * Who a certificate names. Every leaf the Opsplane CA issues carries one URI SAN
 * `urn:opsplane:<kind>:<area>:<name>` (area empty for the server and clients): a controller
 * reads an agent's code and area from it (node:crypto only, no ASN.1 library on that path),
 * and the common name repeats the name for humans.
 */
import { X509Certificate } from 'node:crypto';

export const CERT_KINDS = ['server', 'controller', 'agent', 'client'] as const;
export type CertKind = (typeof CERT_KINDS)[number];

export interface CertIdentity {
  kind: CertKind;
  /** Agent code, controller id, server or client name. */
  name: string;
  /** The area of an agent or controller; '' for the server and clients. */
  area: string;
}

/** Lifetimes of leaf certificates in days: short, because the platform renews them. */
export const DEFAULT_CERT_DAYS: Readonly<Record<CertKind, number>> = {
  server: 90,
  controller: 90,
  agent: 30,
  client: 90,
};

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

export function isCertKind(v: string): v is CertKind {
  return (CERT_KINDS as readonly string[]).includes(v);
}

/** Throws a RangeError unless `name` (and `area`) are safe inside a certificate and an etcd key. */
export function checkIdentity(id: CertIdentity): void {
  if (!isCertKind(id.kind)) throw new RangeError(`unknown certificate kind '${String(id.kind)}'`);
  if (!NAME_RE.test(id.name)) throw new RangeError(`invalid certificate name '${id.name}'`);
  if (id.area !== '' && !NAME_RE.test(id.area)) throw new RangeError(`invalid area '${id.area}'`);
  if ((id.kind === 'agent' || id.kind === 'controller') && id.area === '') {
    throw new RangeError(`a ${id.kind} certificate needs an area`);
  }
}

export function identityUri(id: CertIdentity): string {
  return `urn:opsplane:${id.kind}:${id.area}:${id.name}`;
}

const URI_RE = /URI:"?urn:opsplane:([a-z]+):([A-Za-z0-9._-]*):([A-Za-z0-9._-]+)"?/;

/** The identity in a subjectAltName string as node prints it (`DNS:…, URI:urn:opsplane:…`). */
export function identityFromSubjectAltName(san: string | undefined): CertIdentity | undefined {
  const m = URI_RE.exec(san ?? '');
  if (!m) return undefined;
  const [, kind = '', area = '', name = ''] = m;
  return isCertKind(kind) ? { kind, area, name } : undefined;
}

/** The identity a certificate (PEM, DER or parsed) names, if it is one of ours. */
export function identityOf(cert: string | Buffer | X509Certificate): CertIdentity | undefined {
  const x = cert instanceof X509Certificate ? cert : new X509Certificate(cert);
  return identityFromSubjectAltName(x.subjectAltName);
}

export interface CertInfo {
  serial: string;
  notBefore: Date;
  notAfter: Date;
  subject: string;
  issuer: string;
  fingerprint256: string;
  identity: CertIdentity | undefined;
}

/** What a certificate says, read with node:crypto. */
export function certInfo(pem: string | Buffer): CertInfo {
  const x = new X509Certificate(pem);
  return {
    serial: x.serialNumber.toLowerCase(),
    notBefore: new Date(x.validFrom),
    notAfter: new Date(x.validTo),
    subject: x.subject,
    issuer: x.issuer,
    fingerprint256: x.fingerprint256,
    identity: identityOf(x),
  };
}

/**
 * Whether a certificate should be renewed now: less than `fraction` of its lifetime is left
 * (default one third: day 20 of an agent's 30, day 60 of a controller's 90), or it is past.
 */
export function renewalDue(pem: string | Buffer, now = new Date(), fraction = 1 / 3): boolean {
  const { notBefore, notAfter } = certInfo(pem);
  const lifetime = notAfter.getTime() - notBefore.getTime();
  return notAfter.getTime() - now.getTime() < lifetime * fraction;
}

/** The PEM blocks of a bundle, in order. */
export function splitPemBundle(pem: string): string[] {
  return (
    pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g)?.map((b) => `${b}\n`) ?? []
  );
}
