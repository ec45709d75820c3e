/**
 * The server side of NTLMv2 for the WinRM fake: a CHALLENGE message (fresh server challenge, AV
 * pairs with a timestamp) and the verification a Windows server does on the AUTHENTICATE
 * message — recompute NTProofStr from the client's blob with the known password (MS-NLMP
 * 3.3.2), via the client's own NTLM primitives, whose MS-NLMP §4.2.4 test vector is checked in
 * winrm.test.ts.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import {
  AV_EOL,
  AV_NB_COMPUTER,
  AV_NB_DOMAIN,
  AV_TIMESTAMP,
  fileTimeNow,
  NTLM_FLAGS,
  ntowfv2,
  ntProofStr,
  readSecBuf,
} from '../../src/winrm/ntlm.js';

/** Per connection: NTLM authenticates the connection the handshake ran on. */
export interface NtlmConnState {
  serverChallenge?: Buffer;
  targetInfo?: Buffer;
  timestamp?: Buffer;
  authed: boolean;
}

const av = (id: number, v: Buffer): Buffer => {
  const h = Buffer.alloc(4);
  h.writeUInt16LE(id);
  h.writeUInt16LE(v.length, 2);
  return Buffer.concat([h, v]);
};

/** CHALLENGE_MESSAGE (type 2), remembering its challenge, AV pairs and timestamp in `state`. */
export function challengeMessage(state: NtlmConnState): Buffer {
  const name = Buffer.from('WIN-FAKE', 'utf16le');
  state.serverChallenge = randomBytes(8);
  state.timestamp = fileTimeNow();
  state.targetInfo = Buffer.concat([
    av(AV_NB_DOMAIN, name),
    av(AV_NB_COMPUTER, name),
    av(AV_TIMESTAMP, state.timestamp),
    av(AV_EOL, Buffer.alloc(0)),
  ]);
  const flags =
    NTLM_FLAGS.UNICODE |
    NTLM_FLAGS.NTLM |
    NTLM_FLAGS.EXTENDED_SESSIONSECURITY |
    NTLM_FLAGS.TARGET_INFO |
    NTLM_FLAGS.N128;
  const head = Buffer.alloc(56);
  head.write('NTLMSSP\0', 0, 'latin1');
  head.writeUInt32LE(2, 8);
  head.writeUInt16LE(name.length, 12);
  head.writeUInt16LE(name.length, 14);
  head.writeUInt32LE(56, 16);
  head.writeUInt32LE(flags >>> 0, 20);
  state.serverChallenge.copy(head, 24);
  head.writeUInt16LE(state.targetInfo.length, 40);
  head.writeUInt16LE(state.targetInfo.length, 42);
  head.writeUInt32LE(56 + name.length, 44);
  return Buffer.concat([head, name, state.targetInfo]);
}

/**
 * Verifies an AUTHENTICATE_MESSAGE (type 3) against `username`/`password`: `ok` when the
 * NTProofStr is right; `problems` lists protocol deviations (reported by the fake as errors).
 */
export function verifyAuthenticate(
  msg: Buffer,
  state: NtlmConnState,
  username: string,
  password: string,
): { ok: boolean; problems: string[] } {
  const problems: string[] = [];
  if (!state.serverChallenge || !state.timestamp || !state.targetInfo) return { ok: false, problems };
  const lm = readSecBuf(msg, 12);
  const nt = readSecBuf(msg, 20);
  const domain = readSecBuf(msg, 28).toString('utf16le');
  const user = readSecBuf(msg, 36).toString('utf16le');
  const want = username.includes('\\') ? username.split('\\')[1]! : username;
  if (user.toLowerCase() !== want.toLowerCase() || nt.length < 16 + 28) return { ok: false, problems };
  const proof = nt.subarray(0, 16);
  const blob = nt.subarray(16);
  // The blob must carry this connection's timestamp and AV pairs (MS-NLMP 3.1.5.1.2).
  if (!blob.subarray(8, 16).equals(state.timestamp))
    problems.push('ntlm: blob timestamp is not the server one');
  if (!blob.subarray(28, 28 + state.targetInfo.length).equals(state.targetInfo)) {
    problems.push('ntlm: blob does not echo the target info');
  }
  if (!lm.equals(Buffer.alloc(24)))
    problems.push('ntlm: LM response must be Z(24) when a timestamp is given');
  const expected = ntProofStr(ntowfv2(password, user, domain), state.serverChallenge, blob);
  return { ok: timingSafeEqual(expected, proof), problems };
}
