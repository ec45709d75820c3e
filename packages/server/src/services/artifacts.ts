/**
 * Artifacts: upload (validated, hashed, signed, stored: the row in the database, the content in
 * the store's ArtifactContentStore — database chunks or an S3 object), list, get, content (with
 * byte ranges) and delete; also how an artifact's bytes are read for the relay.
 *
 * An upload is streamed to a temporary file while it is hashed and counted (refused past
 * artifacts.max_size), then read once to check the archive: a package has package.yaml at its
 * top (name, version, optional os/arch, a command — a relative path must be in the archive); an
 * agent artifact is an agent bundle. Nothing is stored unless all of it holds.
 */
import { createHash, randomUUID } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Transform } from 'node:stream';
import type { Logger } from 'pino';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import {
  ArtifactArchSchema,
  ArtifactOsSchema,
  ArtifactVersionSchema,
  formatIssues,
  OpsplaneError,
  PackageNameSchema,
  verifyArtifactSignature,
  type ArtifactKind,
  type ArtifactRef,
} from '@opsplane/models';
import { InvalidAgentBundleError, readAgentBundle, readTarGz, TarError, type TarEntry } from '@opsplane/kit';
import {
  AGENT_ARTIFACT_NAME,
  iso,
  type Artifact,
  type ArtifactKeysResponse,
  type ArtifactListQuery,
  type ArtifactListResponse,
  type ArtifactUploadQuery,
  type PolicySpec,
} from '@opsplane/api';
import type { ArtifactRow } from '../storage/distribution-schema.js';
import type { Store } from '../storage/store.js';
import type { ArtifactSigner } from './artifact-signing.js';
import { changesBetween, type AuditTrail } from './audit-trail.js';
import type { AreaActor } from './access.js';

export class ArtifactError extends OpsplaneError {
  constructor(code: string, message: string, status = 400, details?: unknown) {
    super(code, message, { status, ...(details !== undefined ? { details } : {}) });
  }
}

/** package.yaml as the server checks it (the agent checks the rest when it installs). */
const PackageYamlSchema = z
  .object({
    name: PackageNameSchema,
    version: z.union([z.string(), z.number()]).transform(String).pipe(ArtifactVersionSchema),
    os: ArtifactOsSchema.default('any'),
    arch: ArtifactArchSchema.default('any'),
    command: z.string().min(1, { message: 'command is required' }),
  })
  .loose();

export function toArtifact(r: ArtifactRow): Artifact {
  return {
    sha256: r.sha256,
    size: r.size,
    kind: r.kind as ArtifactKind,
    name: r.name,
    version: r.version,
    os: r.os as Artifact['os'],
    arch: r.arch as Artifact['arch'],
    signature: r.signature,
    key_id: r.keyId,
    signed_by: r.signedBy as Artifact['signed_by'],
    command: r.command,
    uploaded_by: r.uploadedBy,
    created_at: iso(r.createdAt),
  };
}

export function refOf(r: ArtifactRow): ArtifactRef {
  const { signed_by: _s, command: _c, uploaded_by: _u, created_at: _t, ...ref } = toArtifact(r);
  return ref;
}

interface Received {
  path: string;
  sha256: string;
  size: number;
}

/** Streams `body` to a temporary file, hashing and counting; 413 past `max`. */
async function receive(body: Readable, max: number): Promise<Received> {
  const path = join(tmpdir(), `opsplane-artifact-${randomUUID()}.part`);
  const hash = createHash('sha256');
  let size = 0;
  const count = new Transform({
    transform(chunk: Buffer, _enc, done) {
      size += chunk.length;
      if (size > max) {
        done(new ArtifactError('artifact_too_large', `the artifact is larger than ${max} bytes`, 413));
        return;
      }
      hash.update(chunk);
      done(null, chunk);
    },
  });
  try {
    await pipeline(body, count, createWriteStream(path, { mode: 0o600 }));
  } catch (e) {
    await rm(path, { force: true });
    if (e instanceof ArtifactError) {
      body.resume();
      throw e;
    }
    throw new ArtifactError('artifact_invalid', `the upload was interrupted: ${(e as Error).message}`);
  }
  return { path, sha256: hash.digest('hex'), size };
}

/** What an archive says of itself: its identity, how it starts, and its manifest as stored. */
interface ArchiveMeta {
  name: string;
  version: string;
  os: string;
  arch: string;
  command: string;
  manifest: unknown;
}

/** What package.yaml at the archive's top says (400s for everything wrong with it). */
function checkPackage(gz: Buffer): ArchiveMeta {
  let entries: TarEntry[];
  try {
    entries = readTarGz(gz);
  } catch (e) {
    if (e instanceof TarError)
      throw new ArtifactError('artifact_invalid', `not a valid tar.gz: ${e.message}`);
    throw e;
  }
  const yamlEntry = entries.find((e) => e.type === 'file' && e.path === 'package.yaml');
  if (!yamlEntry?.data)
    throw new ArtifactError('artifact_manifest_invalid', 'a package artifact needs package.yaml at its top');
  let doc: unknown;
  try {
    doc = parseYaml(yamlEntry.data.toString('utf8'));
  } catch (e) {
    throw new ArtifactError('artifact_manifest_invalid', `package.yaml is not YAML: ${(e as Error).message}`);
  }
  const parsed = PackageYamlSchema.safeParse(doc);
  if (!parsed.success)
    throw new ArtifactError(
      'artifact_manifest_invalid',
      `package.yaml: ${formatIssues(parsed.error.issues)}`,
      400,
      parsed.error.issues,
    );
  const m = parsed.data;
  // A command given as a relative path is one of the package's own files: it must be there.
  const cmd = m.command.trim();
  if (!cmd.startsWith('/') && cmd.includes('/')) {
    const rel = cmd.replace(/^\.\//, '');
    if (!entries.some((e) => e.type === 'file' && e.path === rel))
      throw new ArtifactError(
        'artifact_manifest_invalid',
        `package.yaml: command '${cmd}' is not a file of the archive`,
      );
  }
  return { name: m.name, version: m.version, os: m.os, arch: m.arch, command: cmd, manifest: doc };
}

/** The names and versions a policy revision uses, as `kind/name/version`. */
export function artifactsUsedBy(spec: PolicySpec): string[] {
  const out = spec.packages.map((p) => `package/${p.name}/${p.version}`);
  if (spec.agent_version) out.push(`agent/${AGENT_ARTIFACT_NAME}/${spec.agent_version}`);
  return out;
}

export class ArtifactService {
  constructor(
    private readonly store: Store,
    private readonly audit: AuditTrail,
    private readonly signer: ArtifactSigner,
    private readonly maxSize: number,
    private readonly logger?: Logger,
  ) {}

  async list(q: ArtifactListQuery): Promise<ArtifactListResponse> {
    const { rows, total } = await this.store.artifacts.list(q, q.page, q.pageSize);
    return { items: rows.map(toArtifact), total, page: q.page, pageSize: q.pageSize };
  }

  async get(sha256: string): Promise<Artifact> {
    return toArtifact(await this.row(sha256));
  }

  async row(sha256: string): Promise<ArtifactRow> {
    const r = await this.store.artifacts.get(sha256);
    if (!r) throw new ArtifactError('artifact_not_found', `artifact ${sha256} not found`, 404);
    return r;
  }

  keys(): Promise<ArtifactKeysResponse> {
    return this.signer.keys();
  }

  /** The bytes [start, end] of an artifact, chunk by chunk. */
  read(sha256: string, start: number, end: number): AsyncGenerator<Buffer> {
    return this.store.artifactContent.read(sha256, start, end);
  }

  /**
   * read(), with its first piece already fetched: a content store that is down fails here, while
   * the route can still answer with a status and a code (not halfway through a 200).
   */
  async open(sha256: string, start: number, end: number): Promise<AsyncIterable<Buffer>> {
    const it = this.read(sha256, start, end);
    const first = await it.next();
    return (async function* () {
      if (first.done) return;
      yield first.value;
      yield* it;
    })();
  }

  async upload(
    caller: AreaActor,
    q: ArtifactUploadQuery,
    body: Readable,
  ): Promise<{ artifact: Artifact; created: boolean }> {
    const got = await receive(body, this.maxSize);
    try {
      if (got.size === 0) throw new ArtifactError('artifact_invalid', 'the body is empty: send the tar.gz');
      const gz = await readFile(got.path);
      let meta: ArchiveMeta;
      if (q.kind === 'agent') {
        try {
          const b = await readAgentBundle(gz);
          meta = {
            name: AGENT_ARTIFACT_NAME,
            version: b.manifest.version,
            os: 'any',
            arch: 'any',
            command: '',
            manifest: { version: b.manifest.version, node: b.manifest.node },
          };
        } catch (e) {
          if (e instanceof InvalidAgentBundleError) throw new ArtifactError('artifact_invalid', e.message);
          throw e;
        }
        if (!ArtifactVersionSchema.safeParse(meta.version).success)
          throw new ArtifactError(
            'artifact_manifest_invalid',
            `agent version '${meta.version}' is not valid`,
          );
      } else meta = checkPackage(gz);
      const unsigned = {
        sha256: got.sha256,
        size: got.size,
        kind: q.kind,
        name: meta.name,
        version: meta.version,
        os: meta.os as ArtifactRef['os'],
        arch: meta.arch as ArtifactRef['arch'],
      };
      let ref: ArtifactRef;
      let signedBy: 'server' | 'uploader';
      if (q.signature !== undefined && q.key_id !== undefined) {
        ref = { ...unsigned, signature: q.signature, key_id: q.key_id };
        const trust = verifyArtifactSignature(ref, await this.signer.trusted());
        if (!trust.ok) throw new ArtifactError(trust.code, trust.message);
        signedBy = 'uploader';
      } else {
        ref = await this.signer.sign(unsigned);
        signedBy = 'server';
      }
      const existing = await this.store.artifacts.get(got.sha256);
      if (existing) return { artifact: toArtifact(existing), created: false };
      // An external store gets the object first and the row after it (a crash leaves at most an
      // orphan object, never a row without content); the database's chunks go in the row's
      // transaction.
      const content = this.store.artifactContent;
      const external = content.placement === 'external';
      if (external) await content.put(ref.sha256, fileChunks(got.path), got.size);
      let row: ArtifactRow;
      try {
        row = await this.audit.run(
          caller,
          {
            action: 'artifact.upload',
            targetType: 'artifact',
            targetId: ref.sha256,
            details: { kind: ref.kind, name: ref.name, version: ref.version, size: ref.size },
          },
          async (tx, spec) => {
            const clash = await tx.artifacts.byIdentity(ref);
            if (clash)
              throw new ArtifactError(
                'artifact_version_exists',
                `${ref.kind} ${ref.name} ${ref.version} (${ref.os}/${ref.arch}) is stored already with other bytes ` +
                  `(sha256 ${clash.sha256.slice(0, 12)}…): versions are immutable — upload a new version`,
                409,
              );
            await tx.artifacts.insert({
              ...ref,
              keyId: ref.key_id,
              signedBy,
              command: meta.command,
              manifest: meta.manifest ?? {},
              uploadedBy: caller.username,
            });
            if (!external) await tx.artifactContent.put(ref.sha256, fileChunks(got.path), got.size);
            const r = await tx.artifacts.markComplete(ref.sha256);
            spec.changes = changesBetween(null, toArtifact(r), ['created_at', 'signature']);
            return r;
          },
        );
      } catch (e) {
        // No row: the object is an orphan, unless the same bytes were stored meanwhile.
        if (external && !(await this.store.artifacts.get(ref.sha256).catch(() => undefined)))
          await content.delete(ref.sha256).catch((err: unknown) => this.orphan(ref.sha256, err));
        throw e;
      }
      return { artifact: toArtifact(row), created: true };
    } finally {
      await rm(got.path, { force: true });
    }
  }

  async delete(caller: AreaActor, sha256: string): Promise<void> {
    await this.audit.run(
      caller,
      { action: 'artifact.delete', targetType: 'artifact', targetId: sha256 },
      async (tx, spec) => {
        const cur = await tx.artifacts.get(sha256);
        if (!cur) throw new ArtifactError('artifact_not_found', `artifact ${sha256} not found`, 404);
        const key = `${cur.kind}/${cur.name}/${cur.version}`;
        const policies = new Map((await tx.policies.list()).map((p) => [p.id, p.name]));
        for (const rev of await tx.policies.allRevisions()) {
          if (artifactsUsedBy(rev.spec as PolicySpec).includes(key))
            throw new ArtifactError(
              'artifact_in_use',
              `${cur.kind} ${cur.name} ${cur.version} is used by revision ${rev.revision} of policy ` +
                `'${policies.get(rev.policyId) ?? rev.policyId}'`,
              409,
            );
        }
        // The row first (database chunks go with it); an external object after the commit.
        await tx.artifacts.delete(sha256);
        spec.changes = changesBetween(toArtifact(cur), null, ['created_at', 'signature']);
      },
    );
    const content = this.store.artifactContent;
    if (content.placement === 'external')
      await content.delete(sha256).catch((err: unknown) => this.orphan(sha256, err));
  }

  /** An object left behind in the store (harmless: nothing refers to it; the same bytes reuse it). */
  private orphan(sha256: string, err: unknown): void {
    this.logger?.warn(
      { sha256, err: (err as Error).message },
      'artifact object left in the artifact store (its row is gone)',
    );
  }
}

/** The spooled upload, streamed (never read whole for storing). */
async function* fileChunks(path: string): AsyncGenerator<Buffer> {
  for await (const piece of createReadStream(path, { highWaterMark: 256 * 1024 })) yield piece as Buffer;
}
