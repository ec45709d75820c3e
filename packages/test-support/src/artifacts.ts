/**
 * Signed artifacts for tests: a package tar.gz (package.yaml at its top plus any files) and an
 * ed25519 key to sign it with, giving the ArtifactRef a platform would hand to agents. The
 * signing is the real scheme of @opsplane/models (artifactSigningMessage), so what a test
 * makes here verifies exactly as the server's artifacts do — and a tampered copy fails alike.
 */
import { createHash, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { writeTarGz } from '@opsplane/kit';
import {
  artifactKeyId,
  artifactSigningMessage,
  formatArtifactPublicKey,
  type ArtifactArch,
  type ArtifactKind,
  type ArtifactOs,
  type ArtifactRef,
} from '@opsplane/models';

export interface ArtifactSigner {
  /** `ed25519:<base64>`: what agents and controllers pin in `artifact_keys`. */
  publicKey: string;
  keyId: string;
  privateKey: KeyObject;
}

export function createArtifactSigner(): ArtifactSigner {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const text = formatArtifactPublicKey(publicKey);
  return { publicKey: text, keyId: artifactKeyId(text), privateKey };
}

export interface SignArtifactInput {
  kind?: ArtifactKind;
  name: string;
  version: string;
  os?: ArtifactOs;
  arch?: ArtifactArch;
}

/** The ArtifactRef of `bytes`, signed by `signer`. */
export function signArtifact(signer: ArtifactSigner, bytes: Buffer, input: SignArtifactInput): ArtifactRef {
  const unsigned = {
    sha256: createHash('sha256').update(bytes).digest('hex'),
    size: bytes.length,
    kind: input.kind ?? 'package',
    name: input.name,
    version: input.version,
    os: input.os ?? 'any',
    arch: input.arch ?? 'any',
  } as const;
  const signature = sign(null, artifactSigningMessage(unsigned), signer.privateKey).toString('base64');
  return { ...unsigned, signature, key_id: signer.keyId };
}

export interface PackageArchiveInput {
  /** The package.yaml text (name and version in it should match the ref's). */
  manifest: string;
  /** Other files by relative path (e.g. `bin/run.sh`, `config/app.yaml`); executables by mode. */
  files?: Record<string, string | Buffer | { data: string | Buffer; mode: number }>;
  /** Extra bytes appended to one file to reach a size (for relay/bandwidth tests). */
  padTo?: number;
}

/** A package artifact: a tar.gz with package.yaml at its top. */
export function packageArchive(input: PackageArchiveInput): Buffer {
  const entries: { path: string; type: 'file' | 'dir'; mode?: number; data?: Buffer }[] = [
    { path: 'package.yaml', type: 'file', data: Buffer.from(input.manifest, 'utf8') },
  ];
  const dirs = new Set<string>();
  for (const [path, v] of Object.entries(input.files ?? {})) {
    const parts = path.split('/');
    for (let i = 1; i < parts.length; i++) dirs.add(parts.slice(0, i).join('/'));
    const data = typeof v === 'string' || Buffer.isBuffer(v) ? v : v.data;
    const mode = typeof v === 'string' || Buffer.isBuffer(v) ? undefined : v.mode;
    entries.push({
      path,
      type: 'file',
      data: Buffer.isBuffer(data) ? data : Buffer.from(data, 'utf8'),
      ...(mode !== undefined ? { mode } : {}),
    });
  }
  for (const d of dirs) entries.push({ path: d, type: 'dir' });
  if (input.padTo !== undefined) {
    // Random-ish filler that gzip cannot shrink, so the archive really is about padTo bytes.
    const filler = Buffer.alloc(input.padTo);
    let x = 0x2545f491;
    for (let i = 0; i < filler.length; i++) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      filler[i] = x & 0xff;
    }
    entries.push({ path: 'payload.bin', type: 'file', data: filler });
  }
  return writeTarGz(entries);
}
