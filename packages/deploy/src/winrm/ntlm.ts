/**
 * The client side of NTLMv2 (MS-NLMP) as WinRM's HTTP "Negotiate"/"NTLM" authentication uses it:
 * NEGOTIATE → CHALLENGE → AUTHENTICATE messages and the NTLMv2 response computation. No signing
 * or sealing (message encryption) is negotiated: over HTTPS TLS protects the messages, and over
 * plain HTTP the WinRM client only allows NTLM when the operator opted into unencrypted traffic
 * (see winrm-client.ts). Channel binding (Extended Protection) is not sent either, which the
 * WinRM service accepts at its default CbtHardeningLevel=Relaxed.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { md4 } from './md4.js';

const SIGNATURE = Buffer.from('NTLMSSP\0', 'latin1');

// MS-NLMP 2.2.2.5 NEGOTIATE flags.
export const NTLM_FLAGS = {
  UNICODE: 0x00000001,
  REQUEST_TARGET: 0x00000004,
  NTLM: 0x00000200,
  ALWAYS_SIGN: 0x00008000,
  EXTENDED_SESSIONSECURITY: 0x00080000,
  TARGET_INFO: 0x00800000,
  VERSION: 0x02000000,
  N128: 0x20000000,
  N56: 0x80000000,
} as const;

/** What this client asks for: Unicode, NTLMv2 (extended session security), no sign/seal/key exchange. */
export const CLIENT_FLAGS =
  (NTLM_FLAGS.UNICODE |
    NTLM_FLAGS.REQUEST_TARGET |
    NTLM_FLAGS.NTLM |
    NTLM_FLAGS.ALWAYS_SIGN |
    NTLM_FLAGS.EXTENDED_SESSIONSECURITY |
    NTLM_FLAGS.TARGET_INFO |
    NTLM_FLAGS.VERSION |
    NTLM_FLAGS.N128 |
    NTLM_FLAGS.N56) >>>
  0;

// AV pair ids (MS-NLMP 2.2.2.1).
export const AV_EOL = 0;
export const AV_NB_COMPUTER = 1;
export const AV_NB_DOMAIN = 2;
export const AV_TIMESTAMP = 7;

// Version field: 10.0, NTLM revision 15 (informational only, MS-NLMP 2.2.2.10).
const VERSION = Buffer.from([10, 0, 0, 0, 0, 0, 0, 15]);

export class NtlmProtocolError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'NtlmProtocolError';
  }
}

const utf16 = (s: string): Buffer => Buffer.from(s, 'utf16le');
const hmacMd5 = (key: Buffer, ...data: Buffer[]): Buffer => {
  const h = createHmac('md5', key);
  for (const d of data) h.update(d);
  return h.digest();
};

/** NTOWFv2 = HMAC_MD5(MD4(UNICODE(password)), UNICODE(UPPER(user) ‖ domain)) (MS-NLMP 3.3.2). */
export function ntowfv2(password: string, user: string, domain: string): Buffer {
  return hmacMd5(md4(utf16(password)), utf16(user.toUpperCase() + domain));
}

/**
 * The NTLMv2 client blob ("temp" in MS-NLMP 3.3.2): version 1.1, timestamp, client challenge and
 * the server's AV pairs (ending in MsvAvEOL), followed by 4 zero bytes.
 */
export function ntlmv2Blob(timestamp: Buffer, clientChallenge: Buffer, targetInfo: Buffer): Buffer {
  return Buffer.concat([
    Buffer.from([1, 1, 0, 0, 0, 0, 0, 0]),
    timestamp,
    clientChallenge,
    Buffer.alloc(4),
    targetInfo,
    Buffer.alloc(4),
  ]);
}

/** NTProofStr = HMAC_MD5(ResponseKeyNT, ServerChallenge ‖ temp). The server recomputes this to verify. */
export function ntProofStr(responseKeyNt: Buffer, serverChallenge: Buffer, blob: Buffer): Buffer {
  return hmacMd5(responseKeyNt, serverChallenge, blob);
}

/** LMv2 response = HMAC_MD5(ResponseKeyLM, ServerChallenge ‖ ClientChallenge) ‖ ClientChallenge. */
export function lmv2Response(
  responseKeyLm: Buffer,
  serverChallenge: Buffer,
  clientChallenge: Buffer,
): Buffer {
  return Buffer.concat([hmacMd5(responseKeyLm, serverChallenge, clientChallenge), clientChallenge]);
}

/** SessionBaseKey = HMAC_MD5(ResponseKeyNT, NTProofStr). */
export function sessionBaseKey(responseKeyNt: Buffer, proof: Buffer): Buffer {
  return hmacMd5(responseKeyNt, proof);
}

/** Now as a Windows FILETIME (100 ns ticks since 1601-01-01), little-endian. */
export function fileTimeNow(now = Date.now()): Buffer {
  const ticks = (BigInt(now) + 11_644_473_600_000n) * 10_000n;
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(ticks);
  return b;
}

/** Splits `DOMAIN\user` (or takes `domain`); a UPN `user@domain` stays whole with an empty domain. */
export function splitUser(username: string, domain?: string): { user: string; domain: string } {
  const i = username.indexOf('\\');
  if (i >= 0) return { user: username.slice(i + 1), domain: username.slice(0, i) };
  return { user: username, domain: domain ?? '' };
}

/** NEGOTIATE_MESSAGE (type 1): flags and version, no domain/workstation supplied. */
export function negotiateMessage(): Buffer {
  const b = Buffer.alloc(40);
  SIGNATURE.copy(b, 0);
  b.writeUInt32LE(1, 8);
  b.writeUInt32LE(CLIENT_FLAGS, 12);
  // DomainNameFields and WorkstationFields: empty, offset at the end of the header.
  b.writeUInt32LE(40, 20);
  b.writeUInt32LE(40, 28);
  VERSION.copy(b, 32);
  return b;
}

export interface ChallengeMessage {
  flags: number;
  serverChallenge: Buffer;
  targetName: string;
  /** The raw AV pairs, MsvAvEOL included: echoed into the NTLMv2 blob. */
  targetInfo: Buffer;
  /** MsvAvTimestamp, when the server sent one (then the client must use it). */
  timestamp: Buffer | undefined;
}

/** Reads a security buffer (len u16, maxlen u16, offset u32) at `at`, bounds-checked. */
export function readSecBuf(msg: Buffer, at: number): Buffer {
  if (msg.length < at + 8) throw new NtlmProtocolError('NTLM message truncated');
  const len = msg.readUInt16LE(at);
  const off = msg.readUInt32LE(at + 4);
  if (off + len > msg.length) throw new NtlmProtocolError('NTLM field out of bounds');
  return msg.subarray(off, off + len);
}

/** Parses AV pairs into id → value (the last MsvAvEOL ends them). */
export function parseAvPairs(info: Buffer): Map<number, Buffer> {
  const pairs = new Map<number, Buffer>();
  for (let at = 0; at + 4 <= info.length;) {
    const id = info.readUInt16LE(at);
    const len = info.readUInt16LE(at + 2);
    if (id === AV_EOL) break;
    if (at + 4 + len > info.length) throw new NtlmProtocolError('NTLM AV pair out of bounds');
    pairs.set(id, info.subarray(at + 4, at + 4 + len));
    at += 4 + len;
  }
  return pairs;
}

/** CHALLENGE_MESSAGE (type 2) from the server's WWW-Authenticate token. */
export function parseChallengeMessage(msg: Buffer): ChallengeMessage {
  if (msg.length < 32 || !msg.subarray(0, 8).equals(SIGNATURE) || msg.readUInt32LE(8) !== 2) {
    throw new NtlmProtocolError('not an NTLM CHALLENGE message');
  }
  const flags = msg.readUInt32LE(20);
  const targetName = readSecBuf(msg, 12);
  const targetInfo = msg.length >= 48 ? readSecBuf(msg, 40) : Buffer.alloc(0);
  return {
    flags,
    serverChallenge: Buffer.from(msg.subarray(24, 32)),
    targetName: flags & NTLM_FLAGS.UNICODE ? targetName.toString('utf16le') : targetName.toString('latin1'),
    targetInfo: Buffer.from(targetInfo),
    timestamp: parseAvPairs(targetInfo).get(AV_TIMESTAMP),
  };
}

export interface AuthenticateInput {
  challenge: ChallengeMessage;
  username: string;
  password: string;
  domain?: string;
  workstation?: string;
  /** Fixed values for tests; random / now otherwise. */
  clientChallenge?: Buffer;
  timestamp?: Buffer;
}

/** AUTHENTICATE_MESSAGE (type 3) with the NTLMv2 response to `challenge`. */
export function authenticateMessage(input: AuthenticateInput): Buffer {
  const { challenge } = input;
  const { user, domain } = splitUser(input.username, input.domain);
  const key = ntowfv2(input.password, user, domain);
  const clientChallenge = input.clientChallenge ?? randomBytes(8);
  // MS-NLMP 3.1.5.1.2: with a server timestamp, use it and send Z(24) as the LM response.
  const timestamp = input.timestamp ?? challenge.timestamp ?? fileTimeNow();
  const blob = ntlmv2Blob(timestamp, clientChallenge, challenge.targetInfo);
  const proof = ntProofStr(key, challenge.serverChallenge, blob);
  const nt = Buffer.concat([proof, blob]);
  const lm = challenge.timestamp
    ? Buffer.alloc(24)
    : lmv2Response(key, challenge.serverChallenge, clientChallenge);
  const fields = [
    lm,
    nt,
    utf16(domain),
    utf16(user),
    utf16(input.workstation ?? ''),
    Buffer.alloc(0), // EncryptedRandomSessionKey: no key exchange negotiated
  ];
  const header = Buffer.alloc(72);
  SIGNATURE.copy(header, 0);
  header.writeUInt32LE(3, 8);
  let offset = header.length;
  fields.forEach((f, i) => {
    const at = 12 + i * 8;
    header.writeUInt16LE(f.length, at);
    header.writeUInt16LE(f.length, at + 2);
    header.writeUInt32LE(offset, at + 4);
    offset += f.length;
  });
  header.writeUInt32LE((CLIENT_FLAGS & challenge.flags) >>> 0, 60);
  VERSION.copy(header, 64);
  return Buffer.concat([header, ...fields]);
}
