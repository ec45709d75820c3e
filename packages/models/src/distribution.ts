/**
 * Distribution over the control channel: signed artifacts, the desired state a policy gives an
 * agent, and the status an agent reports back. Shapes and pure functions only (hashing and
 * ed25519 verification are computation, not I/O).
 *
 * Trust: the server signs every artifact with its ed25519 key. Agents and controllers pin the
 * server's public key(s) in their own configuration (`artifact_keys`, written at install time),
 * never learn it from the channel, and refuse an artifact whose bytes, size or metadata do not
 * match a valid signature. The signature covers the metadata too, so a signed v1 cannot be
 * relabelled v2 or moved to another package name.
 */
import { createHash, createPublicKey, verify as cryptoVerify, type KeyObject } from 'node:crypto';
import { z } from 'zod';
import { ConfigItemSchema } from './batch.js';
import { PackageNameSchema } from './names.js';
import { OperationIdSchema } from './operations.js';

export const Sha256Schema = z
  .string()
  .regex(/^[0-9a-f]{64}$/, { message: 'sha256 must be 64 lowercase hex digits' });

/** `package`: a tar.gz with `package.yaml` at its top; `agent`: an agent bundle (manifest.json). */
export const ArtifactKindSchema = z.enum(['package', 'agent']);
export type ArtifactKind = z.infer<typeof ArtifactKindSchema>;

export const ArtifactOsSchema = z.enum(['linux', 'windows', 'any']);
export type ArtifactOs = z.infer<typeof ArtifactOsSchema>;
export const ArtifactArchSchema = z.enum(['x64', 'arm64', 'any']);
export type ArtifactArch = z.infer<typeof ArtifactArchSchema>;

/** A package or agent version: also a directory name on hosts (`versions/<version>/`). */
export const ArtifactVersionSchema = z
  .string()
  .min(1)
  .max(64, { message: 'version must be at most 64 characters' })
  .regex(/^[0-9A-Za-z][0-9A-Za-z._+-]*$/, {
    message: "version may contain only letters, digits, '.', '_', '+' and '-'",
  })
  .refine((s) => !s.includes('..'), { message: "version must not contain '..'" });

/** `ed25519:<base64 of the 32-byte raw public key>` — how keys are written in configs. */
export const ArtifactPublicKeySchema = z.string().regex(/^ed25519:[A-Za-z0-9+/]{43}=$/, {
  message: "artifact keys look like 'ed25519:<base64 of 32 bytes>'",
});

/** Everything an agent or controller needs to fetch and trust one artifact. */
export const ArtifactRefSchema = z.object({
  sha256: Sha256Schema,
  size: z.number().int().nonnegative(),
  kind: ArtifactKindSchema,
  name: PackageNameSchema,
  version: ArtifactVersionSchema,
  os: ArtifactOsSchema,
  arch: ArtifactArchSchema,
  /** base64 ed25519 signature over `artifactSigningMessage(ref)`. */
  signature: z.string().min(1).max(200),
  /** keyId() of the key that signed. */
  key_id: z.string().regex(/^[0-9a-f]{16}$/),
});
export type ArtifactRef = z.infer<typeof ArtifactRefSchema>;

/** The exact bytes signed for an artifact: its content hash plus all the metadata it is used by. */
export function artifactSigningMessage(ref: Omit<ArtifactRef, 'signature' | 'key_id'>): Buffer {
  return Buffer.from(
    `opsplane-artifact/1\n${ref.sha256}\n${ref.size}\n${ref.kind}\n${ref.name}\n${ref.version}\n${ref.os}\n${ref.arch}\n`,
    'utf8',
  );
}

const ED25519_SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

/** Parses `ed25519:<base64>` into a KeyObject; throws a RangeError for anything else. */
export function parseArtifactPublicKey(text: string): KeyObject {
  if (!ArtifactPublicKeySchema.safeParse(text).success) throw new RangeError('not an ed25519 artifact key');
  const raw = Buffer.from(text.slice('ed25519:'.length), 'base64');
  if (raw.length !== 32) throw new RangeError('an ed25519 public key is 32 bytes');
  return createPublicKey({ key: Buffer.concat([ED25519_SPKI_PREFIX, raw]), format: 'der', type: 'spki' });
}

/** `ed25519:<base64>` of a public KeyObject (the inverse of parseArtifactPublicKey). */
export function formatArtifactPublicKey(key: KeyObject): string {
  const der = key.export({ format: 'der', type: 'spki' });
  return `ed25519:${der.subarray(der.length - 32).toString('base64')}`;
}

/** First 16 hex digits of sha256 over the raw 32-byte key. */
export function artifactKeyId(text: string): string {
  const raw = Buffer.from(text.slice('ed25519:'.length), 'base64');
  return createHash('sha256').update(raw).digest('hex').slice(0, 16);
}

export type ArtifactTrust =
  | { ok: true }
  | {
      ok: false;
      code: 'artifact_unsigned' | 'artifact_untrusted_key' | 'artifact_bad_signature';
      message: string;
    };

/**
 * Is `ref`'s signature valid under one of `trustedKeys` (`ed25519:<base64>` strings)? Checks the
 * metadata signature only; the caller checks the bytes against `ref.sha256` and `ref.size`.
 */
export function verifyArtifactSignature(ref: ArtifactRef, trustedKeys: readonly string[]): ArtifactTrust {
  if (ref.signature === '')
    return { ok: false, code: 'artifact_unsigned', message: 'the artifact is not signed' };
  const key = trustedKeys.find((k) => artifactKeyId(k) === ref.key_id);
  if (key === undefined)
    return {
      ok: false,
      code: 'artifact_untrusted_key',
      message: `the artifact is signed by key ${ref.key_id}, which is not among the trusted artifact_keys`,
    };
  let good = false;
  try {
    good = cryptoVerify(
      null,
      artifactSigningMessage(ref),
      parseArtifactPublicKey(key),
      Buffer.from(ref.signature, 'base64'),
    );
  } catch {
    good = false;
  }
  return good
    ? { ok: true }
    : {
        ok: false,
        code: 'artifact_bad_signature',
        message: `the signature of ${ref.kind} ${ref.name} ${ref.version} (sha256 ${ref.sha256.slice(0, 12)}…) does not verify: tampered or mislabelled`,
      };
}

/**
 * Hash of a package's effective config: sha256 over the files sorted by name, each as
 * `<file_name>\0<sha256 of content>\n`. Agents report it; the platform compares it with the
 * policy's to see drift.
 */
export function configHash(files: readonly { file_name: string; content: string }[]): string {
  const h = createHash('sha256');
  for (const f of [...files].sort((a, b) =>
    a.file_name < b.file_name ? -1 : a.file_name > b.file_name ? 1 : 0,
  )) {
    h.update(`${f.file_name}\0${createHash('sha256').update(f.content, 'utf8').digest('hex')}\n`);
  }
  return h.digest('hex');
}

export const DesiredPackageSchema = z.object({
  name: PackageNameSchema,
  version: ArtifactVersionSchema,
  artifact: ArtifactRefSchema,
  /** Files written into the package's config_dir before it starts (empty = the artifact's own). */
  configs: z.array(ConfigItemSchema).default([]),
  /** configHash(configs); '' when configs is empty. */
  config_hash: z.string().default(''),
});
export type DesiredPackage = z.infer<typeof DesiredPackageSchema>;

export const DesiredAgentSchema = z.object({
  version: ArtifactVersionSchema,
  artifact: ArtifactRefSchema,
});
export type DesiredAgent = z.infer<typeof DesiredAgentSchema>;

/**
 * What one agent should run, as a policy revision gives it. The agent persists it (so it
 * converges after restarts without the platform) and converges on it package by package.
 */
export const DesiredStateSchema = z.object({
  policy: z.string().min(1).max(128),
  revision: z.number().int().nonnegative(),
  packages: z.array(DesiredPackageSchema),
  agent: DesiredAgentSchema.optional(),
  /** Rewrite config files that differ from the policy's (else only report drift). */
  correct_drift: z.boolean().default(false),
  /** How long a freshly switched version has to become healthy before it is rolled back. */
  health_timeout_ms: z.number().int().min(1_000).max(3_600_000).default(60_000),
});
export type DesiredState = z.infer<typeof DesiredStateSchema>;
export type DesiredStateInput = z.input<typeof DesiredStateSchema>;

export const ConvergenceStateSchema = z.enum(['none', 'applying', 'applied', 'failed']);
export type ConvergenceState = z.infer<typeof ConvergenceStateSchema>;

export const DistributionErrorSchema = z.object({ code: z.string(), message: z.string() });

export const PackageDistributionSchema = z.object({
  name: z.string(),
  desired_version: z.string(),
  /** The version running now ('' = none installed). After a rollback, the previous one. */
  version: z.string().default(''),
  state: ConvergenceStateSchema,
  /** The version was installed but failed its health gate and the previous one was restored. */
  rolled_back: z.boolean().default(false),
  /** configHash of the files in the package's config_dir now. */
  config_hash: z.string().default(''),
  /** The effective config differs from the policy's. */
  drift: z.boolean().default(false),
  error: DistributionErrorSchema.optional(),
});
export type PackageDistribution = z.infer<typeof PackageDistributionSchema>;

/** What an agent reports (in hello, heartbeats and the desired_state answer). */
export const DistributionStatusSchema = z.object({
  policy: z.string().default(''),
  revision: z.number().int().nonnegative().default(0),
  /** applied: every package (and the agent version) converged; failed: one of them failed. */
  state: ConvergenceStateSchema,
  packages: z.array(PackageDistributionSchema).default([]),
  agent: z
    .object({
      desired_version: z.string(),
      version: z.string(),
      state: ConvergenceStateSchema,
      rolled_back: z.boolean().default(false),
      error: DistributionErrorSchema.optional(),
    })
    .optional(),
  updated_at: z.string(),
});
export type DistributionStatus = z.infer<typeof DistributionStatusSchema>;

/** Controller API: POST /api/v1/agents/desired-state — the platform hands desired states to agents. */
export const DesiredStatePushRequestSchema = z.object({
  items: z
    .array(z.object({ agent_code: z.string().min(1), desired: DesiredStateSchema }))
    .min(1)
    .max(10_000),
  operation_id: OperationIdSchema.optional(),
});
export type DesiredStatePushRequest = z.infer<typeof DesiredStatePushRequestSchema>;

export const DesiredStatePushResultSchema = z.object({
  results: z.array(
    z.object({
      agent_code: z.string(),
      /** The agent accepted (persisted) the desired state; convergence is reported later. */
      success: z.boolean(),
      error: DistributionErrorSchema.optional(),
      status: DistributionStatusSchema.optional(),
    }),
  ),
});
export type DesiredStatePushResult = z.infer<typeof DesiredStatePushResultSchema>;

/** Controller API: HEAD/PUT /api/v1/artifacts/{sha256} — what the controller's cache holds. */
export const ArtifactCacheStatusSchema = z.object({
  sha256: Sha256Schema,
  /** Bytes held so far (a partial upload resumes at this offset). */
  bytes: z.number().int().nonnegative(),
  complete: z.boolean(),
});
export type ArtifactCacheStatus = z.infer<typeof ArtifactCacheStatusSchema>;

/** Controller API: GET /api/v1/artifacts — one artifact of the controller's cache. */
export const ArtifactCacheEntrySchema = ArtifactCacheStatusSchema.extend({
  /** The ref it was uploaded with (absent for a partial upload whose ref was not kept). */
  ref: ArtifactRefSchema.optional(),
  /** Last upload or download (ISO time): least recently used complete artifacts are evicted first. */
  last_used: z.string(),
});
export type ArtifactCacheEntry = z.infer<typeof ArtifactCacheEntrySchema>;

export const ArtifactCacheListSchema = z.object({
  artifacts: z.array(ArtifactCacheEntrySchema),
  /** Bytes held (complete and partial). */
  total_bytes: z.number().int().nonnegative(),
  /** The cache's limit (`artifacts.max_bytes`); 0 = unlimited. */
  max_bytes: z.number().int().nonnegative(),
});
export type ArtifactCacheList = z.infer<typeof ArtifactCacheListSchema>;

/** Headers of the artifact relay. */
export const ARTIFACT_REF_HEADER = 'x-opsplane-artifact-ref';
export const ARTIFACT_BYTES_HEADER = 'x-opsplane-artifact-bytes';
export const ARTIFACT_COMPLETE_HEADER = 'x-opsplane-artifact-complete';
/** Where agents download artifacts on their controller (same authentication as the socket). */
export const AGENT_ARTIFACT_PATH = '/api/v1/agents/artifacts';
