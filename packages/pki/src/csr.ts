/**
 * PKCS#10 certificate requests built with node:crypto alone (a few lines of DER), so that the
 * agent — which creates them to renew its certificate — carries no ASN.1 library. The CA side
 * parses and verifies them with @peculiar/x509 (ca.ts).
 *
 *   CertificationRequest ::= SEQUENCE {
 *     certificationRequestInfo SEQUENCE { version INTEGER 0, subject Name (CN only),
 *                                         subjectPKInfo (from node's SPKI export), attributes [0] {} },
 *     signatureAlgorithm SEQUENCE { ecdsa-with-SHA256 },
 *     signature BIT STRING (DER ECDSA signature) }
 */
import { generateKeyPairSync, sign } from 'node:crypto';

function len(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

const tlv = (tag: number, ...content: Buffer[]) => {
  const body = Buffer.concat(content);
  return Buffer.concat([Buffer.from([tag]), len(body.length), body]);
};

const OID_CN = Buffer.from([0x06, 0x03, 0x55, 0x04, 0x03]);
const OID_ECDSA_SHA256 = Buffer.from([0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02]);

function pemOf(label: string, der: Buffer): string {
  return `-----BEGIN ${label}-----\n${der
    .toString('base64')
    .replace(/(.{64})/g, '$1\n')
    .replace(/\n$/, '')}\n-----END ${label}-----\n`;
}

/** A new P-256 key and a PKCS#10 request naming `name` (what agents and controllers renew with). */
export async function createCsr(name: string): Promise<{ keyPem: string; csrPem: string }> {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const subject = tlv(0x30, tlv(0x31, tlv(0x30, OID_CN, tlv(0x0c, Buffer.from(name, 'utf8')))));
  const spki = publicKey.export({ type: 'spki', format: 'der' });
  const info = tlv(0x30, Buffer.from([0x02, 0x01, 0x00]), subject, spki, Buffer.from([0xa0, 0x00]));
  const signature = sign('sha256', info, privateKey); // DER-encoded ECDSA signature
  const csr = tlv(0x30, info, tlv(0x30, OID_ECDSA_SHA256), tlv(0x03, Buffer.from([0x00]), signature));
  return {
    keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    csrPem: pemOf('CERTIFICATE REQUEST', csr),
  };
}
