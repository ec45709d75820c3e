/**
 * MD4 (RFC 1320) in plain JS. NTLM's NT hash is MD4(UTF-16LE(password)), and Node 20's OpenSSL 3
 * only offers MD4 through the legacy provider, which is not loaded by default — so the NTLM code
 * cannot rely on `createHash('md4')`. Used for password hashing only; never for integrity.
 */

const S1 = [3, 7, 11, 19];
const S2 = [3, 5, 9, 13];
const S3 = [3, 9, 11, 15];
// Word order of round 3 (RFC 1320 §3.4).
const R3 = [0, 8, 4, 12, 2, 10, 6, 14, 1, 9, 5, 13, 3, 11, 7, 15];

const rotl = (x: number, n: number): number => (x << n) | (x >>> (32 - n));

/** The 16-byte MD4 digest of `data`. */
export function md4(data: Buffer | Uint8Array): Buffer {
  const bitLen = data.length * 8;
  // Pad: 0x80, zeros up to 56 mod 64, then the bit length as a 64-bit little-endian integer.
  const padded = Buffer.alloc((((data.length + 8) >> 6) + 1) * 64);
  padded.set(data);
  padded[data.length] = 0x80;
  padded.writeUInt32LE(bitLen >>> 0, padded.length - 8);
  padded.writeUInt32LE(Math.floor(bitLen / 0x1_0000_0000) >>> 0, padded.length - 4);

  let a = 0x67452301;
  let b = 0xefcdab89;
  let c = 0x98badcfe;
  let d = 0x10325476;
  const x = new Array<number>(16);
  for (let off = 0; off < padded.length; off += 64) {
    for (let i = 0; i < 16; i++) x[i] = padded.readUInt32LE(off + i * 4);
    const w = (i: number): number => x[i]!;
    const [aa, bb, cc, dd] = [a, b, c, d];
    // Round 1: F(x,y,z) = (x & y) | (~x & z)
    for (let i = 0; i < 16; i++) {
      const t = rotl((a + ((b & c) | (~b & d)) + w(i)) | 0, S1[i % 4]!);
      [a, b, c, d] = [d, t, b, c];
    }
    // Round 2: G(x,y,z) = (x & y) | (x & z) | (y & z), constant sqrt(2)
    for (let i = 0; i < 16; i++) {
      const k = (i % 4) * 4 + Math.floor(i / 4);
      const t = rotl((a + ((b & c) | (b & d) | (c & d)) + w(k) + 0x5a827999) | 0, S2[i % 4]!);
      [a, b, c, d] = [d, t, b, c];
    }
    // Round 3: H(x,y,z) = x ^ y ^ z, constant sqrt(3)
    for (let i = 0; i < 16; i++) {
      const t = rotl((a + (b ^ c ^ d) + w(R3[i]!) + 0x6ed9eba1) | 0, S3[i % 4]!);
      [a, b, c, d] = [d, t, b, c];
    }
    a = (a + aa) | 0;
    b = (b + bb) | 0;
    c = (c + cc) | 0;
    d = (d + dd) | 0;
  }
  const out = Buffer.alloc(16);
  out.writeInt32LE(a, 0);
  out.writeInt32LE(b, 4);
  out.writeInt32LE(c, 8);
  out.writeInt32LE(d, 12);
  return out;
}
