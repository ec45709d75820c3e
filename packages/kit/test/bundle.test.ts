/**
 * Agent bundles: our writer and reader agree, GNU tar reads what we write (and we read what it
 * writes), and every kind of bad archive is refused with InvalidAgentBundleError.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import { OpsplaneError } from '@opsplane/models';
import {
  InvalidAgentBundleError,
  agentBundleFileName,
  readAgentBundle,
  writeAgentBundle,
  writeTar,
  writeTarGz,
  type TarEntry,
} from '../src/index.js';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const AGENT = Buffer.from('console.log("agent");\n');
const UTIL = Buffer.from('export const x = 1;\n'.repeat(100));
const FILES: Record<string, Buffer> = {
  'agent.mjs': AGENT,
  'lib/util.js': UTIL,
  'README.txt': Buffer.alloc(0),
};

/** A raw ustar header, for entries our writer refuses to produce (`..`, links). */
function rawHeader(name: string, typeflag: string, size = 0, linkname = ''): Buffer {
  const h = Buffer.alloc(512);
  h.write(name, 0, 100);
  h.write('0000644\0', 100);
  h.write('0000000\0', 108);
  h.write('0000000\0', 116);
  h.write(size.toString(8).padStart(11, '0') + '\0', 124);
  h.write('00000000000\0', 136);
  h.write(typeflag, 156);
  h.write(linkname, 157, 100);
  h.write('ustar\0' + '00', 257);
  h.fill(' ', 148, 156);
  let sum = 0;
  for (const b of h) sum += b;
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148);
  return h;
}

/** A valid bundle's tar entries plus `extra` raw tar bytes appended before the end marker. */
function withRawEntry(extra: Buffer): Buffer {
  const tar = writeTar(bundleEntries('1.0.0'));
  return gzipSync(Buffer.concat([tar.subarray(0, tar.length - 1024), extra, Buffer.alloc(1024)]));
}

function manifestFor(version: string, files: Record<string, Buffer>) {
  return {
    format: 1,
    name: 'opsplane-agent',
    version,
    entry: 'agent.mjs',
    node: '>=20.18',
    files: Object.fromEntries(
      Object.entries(files).map(([p, d]) => [p, { sha256: sha(d), bytes: d.length }]),
    ),
  };
}

/** The entries of a bundle, built by hand so tests can get any part wrong. */
function bundleEntries(
  version: string,
  {
    top = `opsplane-agent-${version}`,
    manifest = manifestFor(version, FILES) as unknown,
    files = FILES,
  } = {},
): TarEntry[] {
  const entries: TarEntry[] = [{ path: top, type: 'dir' }];
  for (const [p, data] of Object.entries(files)) entries.push({ path: `${top}/${p}`, type: 'file', data });
  // null: no manifest.json at all.
  if (manifest !== null)
    entries.push({ path: `${top}/manifest.json`, type: 'file', data: Buffer.from(JSON.stringify(manifest)) });
  return entries;
}

async function rejects(source: Buffer, pattern: RegExp): Promise<void> {
  await assert.rejects(readAgentBundle(source), (e: unknown) => {
    assert.ok(e instanceof InvalidAgentBundleError, `not an InvalidAgentBundleError: ${String(e)}`);
    assert.ok(e instanceof OpsplaneError);
    assert.equal(e.code, 'invalid_agent_bundle');
    assert.equal(e.status, 400);
    assert.match(e.message, pattern);
    return true;
  });
}

describe('agent bundle', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'opsplane-bundle-test-'));
    cleanup = () => rm(dir, { recursive: true, force: true });
  });
  after(() => cleanup());

  it('round-trips, deterministically', async () => {
    const outFile = join(dir, agentBundleFileName('1.2.3-rc.1'));
    const w = await writeAgentBundle({ version: '1.2.3-rc.1', files: FILES, node: '>=20.18', outFile });
    assert.equal(w.path, outFile);
    const gz = await readFile(outFile);
    assert.equal(w.sha256, sha(gz));
    assert.equal(w.bytes, gz.length);
    assert.deepEqual(w.manifest, manifestFor('1.2.3-rc.1', FILES));

    const r = await readAgentBundle(outFile);
    assert.deepEqual(r, {
      manifest: w.manifest,
      sha256: w.sha256,
      bytes: w.bytes,
      topDir: 'opsplane-agent-1.2.3-rc.1',
    });
    assert.deepEqual(await readAgentBundle(gz), r);

    const again = await writeAgentBundle({
      version: '1.2.3-rc.1',
      files: FILES,
      node: '>=20.18',
      outFile: join(dir, 'again.tar.gz'),
    });
    assert.equal(again.sha256, w.sha256, 'same inputs, same bytes');
  });

  it('is read by the system tar, byte for byte', async () => {
    const outFile = join(dir, agentBundleFileName('2.0.0'));
    const w = await writeAgentBundle({ version: '2.0.0', files: FILES, node: '>=20.18', outFile });
    const listing = execFileSync('tar', ['-tzvf', outFile], { encoding: 'utf8' });
    const names = execFileSync('tar', ['-tzf', outFile], { encoding: 'utf8' }).trim().split('\n');
    assert.deepEqual(names, [
      'opsplane-agent-2.0.0/',
      'opsplane-agent-2.0.0/README.txt',
      'opsplane-agent-2.0.0/agent.mjs',
      'opsplane-agent-2.0.0/lib/',
      'opsplane-agent-2.0.0/lib/util.js',
      'opsplane-agent-2.0.0/manifest.json',
    ]);
    assert.match(listing, /^drwxr-xr-x 0\/0 +0 2020-01-01/m);
    assert.match(listing, /^-rw-r--r-- 0\/0 +\d+ 2020-01-01/m);

    const x = join(dir, 'x');
    await mkdir(x);
    execFileSync('tar', ['-xzf', outFile, '-C', x]);
    for (const [p, data] of Object.entries(FILES))
      assert.deepEqual(await readFile(join(x, 'opsplane-agent-2.0.0', p)), data, p);
    const manifest: unknown = JSON.parse(
      await readFile(join(x, 'opsplane-agent-2.0.0', 'manifest.json'), 'utf8'),
    );
    assert.deepEqual(manifest, w.manifest);
  });

  it('reads bundles packed by the system tar', async () => {
    const src = join(dir, 'src');
    const top = join(src, 'opsplane-agent-3.0.0');
    await mkdir(join(top, 'lib'), { recursive: true });
    for (const [p, data] of Object.entries(FILES)) await writeFile(join(top, p), data);
    await writeFile(join(top, 'manifest.json'), JSON.stringify(manifestFor('3.0.0', FILES)));
    const out = join(dir, 'by-tar.tar.gz');
    // GNU tar's default format and POSIX ustar.
    for (const format of ['gnu', 'ustar']) {
      execFileSync('tar', [`--format=${format}`, '-czf', out, '-C', src, 'opsplane-agent-3.0.0']);
      const r = await readAgentBundle(out);
      assert.equal(r.manifest.version, '3.0.0');
      assert.equal(r.topDir, 'opsplane-agent-3.0.0');
    }
  });

  it('refuses a file whose checksum does not match', async () => {
    const manifest = manifestFor('1.0.0', FILES);
    manifest.files['agent.mjs'] = { sha256: sha(Buffer.from('other')), bytes: AGENT.length };
    await rejects(writeTarGz(bundleEntries('1.0.0', { manifest })), /'agent\.mjs' does not match its sha256/);
    const resized = manifestFor('1.0.0', FILES);
    resized.files['agent.mjs'] = { sha256: sha(AGENT), bytes: 1 };
    await rejects(writeTarGz(bundleEntries('1.0.0', { manifest: resized })), /'agent\.mjs' has \d+ bytes/);
  });

  it('refuses missing, unlisted and malformed content', async () => {
    await rejects(writeTarGz(bundleEntries('1.0.0', { manifest: null })), /manifest\.json is missing/);
    await rejects(
      writeTarGz(bundleEntries('1.0.0', { files: { ...FILES, 'extra.js': Buffer.from('x') } })),
      /'extra\.js' is not listed/,
    );
    const { 'lib/util.js': _gone, ...fewer } = FILES;
    await rejects(
      writeTarGz(bundleEntries('1.0.0', { files: fewer })),
      /'lib\/util\.js' is listed .* but missing/,
    );
    await rejects(
      writeTarGz(bundleEntries('1.0.0', { manifest: { ...manifestFor('1.0.0', FILES), format: 2 } })),
      /manifest\.json: format/,
    );
    const noEntry = { 'lib/util.js': UTIL };
    await rejects(
      writeTarGz(bundleEntries('1.0.0', { files: noEntry, manifest: manifestFor('1.0.0', noEntry) })),
      /entry 'agent\.mjs' is not listed/,
    );
    await rejects(Buffer.from('not gzip at all'), /not a gzip archive/);
    await rejects(gzipSync(Buffer.alloc(100)), /truncated/);
  });

  it('refuses a wrong top directory', async () => {
    await rejects(
      writeTarGz(bundleEntries('1.0.0', { top: 'opsplane-agent-1.0.1' })),
      /does not match version 1\.0\.0/,
    );
    await rejects(
      writeTarGz(bundleEntries('1.0.0', { top: 'agent-1.0.0' })),
      /not named opsplane-agent-<version>/,
    );
    const two = [
      ...bundleEntries('1.0.0'),
      { path: 'other/file', type: 'file' as const, data: Buffer.from('x') },
    ];
    await rejects(writeTarGz(two), /one top directory, found opsplane-agent-1\.0\.0, other/);
  });

  it('refuses `..`, absolute paths, links, devices and oversize files', async () => {
    await rejects(withRawEntry(rawHeader('opsplane-agent-1.0.0/../evil', '0')), /contains '\.\.'/);
    await rejects(withRawEntry(rawHeader('../evil', '0')), /contains '\.\.'/);
    await rejects(withRawEntry(rawHeader('/etc/evil', '0')), /absolute entry path/);
    await rejects(
      withRawEntry(rawHeader('opsplane-agent-1.0.0/link', '2', 0, '/etc/passwd')),
      /symbolic link/,
    );
    await rejects(
      withRawEntry(rawHeader('opsplane-agent-1.0.0/hard', '1', 0, 'opsplane-agent-1.0.0/agent.mjs')),
      /hard link/,
    );
    await rejects(withRawEntry(rawHeader('opsplane-agent-1.0.0/dev', '3')), /character device/);
    await rejects(
      withRawEntry(rawHeader('opsplane-agent-1.0.0/agent.mjs/x', '0')),
      /is a file and a directory/,
    );
    const suid = rawHeader('opsplane-agent-1.0.0/suid', '0');
    suid.write('0004755', 100);
    suid.fill(' ', 148, 156);
    suid.write(
      [...suid]
        .reduce((a, b) => a + b, 0)
        .toString(8)
        .padStart(6, '0') + '\0 ',
      148,
    );
    await rejects(withRawEntry(suid), /setuid\/setgid/);

    // A real symlink packed by the system tar.
    const src = join(dir, 'sym');
    await mkdir(join(src, 'opsplane-agent-1.0.0'), { recursive: true });
    await symlink('/etc/passwd', join(src, 'opsplane-agent-1.0.0', 'agent.mjs'));
    const out = join(dir, 'sym.tar.gz');
    execFileSync('tar', ['--format=ustar', '-czf', out, '-C', src, 'opsplane-agent-1.0.0']);
    await rejects(await readFile(out), /'opsplane-agent-1\.0\.0\/agent\.mjs' is a symbolic link/);

    const big = writeTarGz(bundleEntries('1.0.0'));
    await assert.rejects(readAgentBundle(big, { maxFileBytes: 100 }), /more than the limit of 100/);
    await assert.rejects(readAgentBundle(big, { maxTotalBytes: 2048 }), /unpacks to more than 2048 bytes/);
  });

  it('refuses to write a bundle without an entry or with a bad version', async () => {
    const outFile = join(dir, 'bad.tar.gz');
    await assert.rejects(
      writeAgentBundle({ version: '1.0', files: FILES, node: '>=20.18', outFile }),
      InvalidAgentBundleError,
    );
    await assert.rejects(
      writeAgentBundle({ version: '1.0.0', files: { 'x.js': Buffer.from('') }, node: '>=20.18', outFile }),
      /no agent\.mjs/,
    );
    await assert.rejects(
      writeAgentBundle({
        version: '1.0.0',
        files: { ...FILES, '../x': Buffer.from('') },
        node: '>=20.18',
        outFile,
      }),
      /'\.\.' segments/,
    );
  });
});
