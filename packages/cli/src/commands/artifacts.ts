/**
 * `opsplane artifacts upload|list|show|delete|keys` — the signed packages and agent bundles the
 * server distributes: upload a tar.gz (the server signs it with its ed25519 key, or keeps the
 * signature it came with), list and inspect them, delete one no policy uses, and print the
 * public key(s) agents and controllers pin in `artifact_keys`.
 */
import { readFile } from 'node:fs/promises';
import type { Artifact } from '@opsplane/api';
import { ArtifactKindSchema } from '@opsplane/models';
import { CliError, EXIT, UsageError, defineCommand, type CliIO, actionOf } from '../command.js';
import { connect } from '../client/api.js';
import { outputOption, serverOption, wantsJson } from '../client/common-options.js';
import { artifactLabel, resolveArtifact, withHints } from '../client/distribution.js';
import { ago, json, table } from '../client/format.js';
import { sanitize } from '../client/progress.js';

const ACTIONS = ['upload', 'list', 'show', 'delete', 'keys'] as const;

export function fmtSize(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

function printArtifact(a: Artifact, io: CliIO): void {
  io.out(`artifact ${a.sha256}`);
  for (const [k, val] of [
    ['kind', a.kind],
    ['name', a.name],
    ['version', a.version],
    ['platform', `${a.os}/${a.arch}`],
    ['size', `${fmtSize(a.size)} (${a.size} bytes)`],
    ['command', a.command || '-'],
    ['signed by', `${a.signed_by} (key ${a.key_id})`],
    ['signature', a.signature],
    ['uploaded by', a.uploaded_by],
    ['uploaded', `${a.created_at} (${ago(a.created_at)})`],
  ] as const)
    io.out(`  ${`${k}:`.padEnd(13)}${sanitize(val)}`);
}

export default defineCommand({
  name: 'artifacts',
  summary: 'Upload, list, show or delete signed artifacts (packages, agent bundles); the key to pin.',
  positionals: '<upload|list|show|delete|keys> [file|sha256|name@version]',
  options: {
    server: serverOption,
    kind: {
      type: 'string',
      value: '<package|agent>',
      description: 'upload: what the archive is (default package); list: only this kind',
    },
    signature: {
      type: 'string',
      value: '<base64>',
      description: 'upload: an ed25519 signature made elsewhere (with --key-id; the key must be trusted)',
    },
    'key-id': { type: 'string', value: '<hex>', description: 'upload: the id of the key that signed' },
    name: { type: 'string', value: '<name>', description: 'list: only this package name' },
    version: { type: 'string', value: '<version>', description: 'list: only this version' },
    page: { type: 'string', value: '<n>', description: 'list: page (from 1)' },
    output: outputOption,
    json: { type: 'boolean', description: 'same as --output json' },
  },
  details: [
    'A package archive is a tar.gz with package.yaml at its top (name, version, os/arch, how to start',
    'it, health check, config files); an agent artifact is an agent bundle (--kind agent). The server',
    'stores it by sha256 and signs it; agents verify the signature with the key `keys` prints, pinned',
    'in their artifact_keys. show and delete take a sha256, a prefix of one, or name@version.',
    '',
    'Examples:',
    '  opsplane artifacts upload web-1.2.0.tar.gz',
    '  opsplane artifacts upload opsplane-agent-1.5.0.tar.gz --kind agent',
    '  opsplane artifacts list --name web',
    '  opsplane artifacts show web@1.2.0',
    '  opsplane artifacts delete 3f2a9c01',
    '  opsplane artifacts keys',
  ].join('\n'),
  async run(v, io) {
    const [action, arg, ...extra] = v._;
    actionOf(ACTIONS, action, 'artifacts');
    if (extra.length) throw new UsageError(`unexpected argument '${extra[0]}'`, 'artifacts');
    const asJson = wantsJson(v, 'artifacts');
    const kind = v.kind;
    if (kind !== undefined && !(ArtifactKindSchema.options as readonly string[]).includes(kind))
      throw new UsageError(`--kind must be package or agent (got '${kind}')`, 'artifacts');
    if ((v.signature !== undefined || v['key-id'] !== undefined) && action !== 'upload')
      throw new UsageError('--signature and --key-id go with upload', 'artifacts');
    if ((v.signature === undefined) !== (v['key-id'] === undefined))
      throw new UsageError('--signature and --key-id go together', 'artifacts');

    if (action === 'keys' || action === 'list') {
      if (arg) throw new UsageError(`unexpected argument '${arg}'`, 'artifacts');
    } else if (!arg)
      throw new UsageError(
        action === 'upload'
          ? 'upload needs a file: opsplane artifacts upload <file.tar.gz>'
          : `${action} needs an artifact`,
        'artifacts',
      );

    if (action === 'upload') {
      const file = arg as string;
      let bytes: Buffer;
      try {
        bytes = await readFile(file);
      } catch (e) {
        throw new CliError(`cannot read ${file}: ${(e as Error).message}`);
      }
      if (bytes.length < 2 || bytes[0] !== 0x1f || bytes[1] !== 0x8b)
        throw new CliError(`${file} is not a gzip file (an artifact is a .tar.gz)`);
      const api = await connect(v.server);
      const res = await withHints(() =>
        api.send(
          'POST /artifacts',
          {
            query: {
              kind: (kind ?? 'package') as Artifact['kind'],
              signature: v.signature,
              key_id: v['key-id'],
            },
          },
          { upload: bytes, contentType: 'application/gzip', timeoutMs: 10 * 60_000 },
        ),
      );
      const a = res.body;
      if (asJson) io.out(json(a));
      else
        io.out(
          `${res.status === 201 ? 'uploaded' : 'the server already had'} ${artifactLabel(a)}: ` +
            `${fmtSize(a.size)}, sha256 ${a.sha256}, signed by ${a.signed_by} (key ${a.key_id})`,
        );
      return EXIT.ok;
    }

    const api = await connect(v.server);
    if (action === 'keys') {
      const r = await api.call('GET /artifacts/keys');
      if (asJson) io.out(json(r));
      else {
        // The keys alone on stdout (a script pins them); what they are on stderr.
        for (const k of r.keys) io.out(k.key);
        for (const k of r.keys)
          io.err(
            `key ${k.key_id} (${k.source === 'server' ? "the server's signing key" : 'trusted uploader key'})`,
          );
        io.err('pin these in artifact_keys of every agent and controller configuration');
      }
      return EXIT.ok;
    }

    if (action === 'list') {
      const r = await api.call('GET /artifacts', {
        query: {
          kind: kind as Artifact['kind'] | undefined,
          name: v.name,
          version: v.version,
          page: v.page,
        },
      });
      if (asJson) {
        io.out(json(r));
        return EXIT.ok;
      }
      for (const l of table(
        ['SHA256', 'KIND', 'NAME', 'VERSION', 'PLATFORM', 'SIZE', 'SIGNED', 'BY', 'UPLOADED'],
        r.items.map((a) => [
          a.sha256.slice(0, 12),
          a.kind,
          a.name,
          a.version,
          `${a.os}/${a.arch}`,
          fmtSize(a.size),
          a.signed_by,
          a.uploaded_by,
          ago(a.created_at),
        ]),
      ))
        io.out(sanitize(l));
      io.out(`${r.total} artifact(s); page ${r.page} of ${Math.max(1, Math.ceil(r.total / r.pageSize))}`);
      return EXIT.ok;
    }

    const a = await resolveArtifact(api, arg as string);
    if (action === 'show') {
      if (asJson) io.out(json(a));
      else printArtifact(a, io);
      return EXIT.ok;
    }
    // delete
    await withHints(() => api.call('DELETE /artifacts/:sha256', { params: { sha256: a.sha256 } }));
    if (asJson) io.out(json({ deleted: a.sha256 }));
    else io.out(`deleted ${artifactLabel(a)}, sha256 ${a.sha256}`);
    return EXIT.ok;
  },
});
