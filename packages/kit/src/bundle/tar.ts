/**
 * A minimal ustar (POSIX.1-1988) writer and reader, gzip through node:zlib: regular files and
 * directories only, which is all an agent bundle holds. Owned here instead of a tar dependency
 * so the archive is byte-for-byte reproducible (fixed mtime, uid/gid 0, sorted entries) and the
 * reader refuses everything an unpacker on a device must never see: absolute paths, `..`,
 * links, devices, oversize files.
 */
import { gunzipSync, gzipSync } from 'node:zlib';
import { TarError } from './errors.js';

export interface TarEntry {
  /** Relative `/`-separated path; directories without a trailing `/`. */
  path: string;
  type: 'file' | 'dir';
  /** Permission bits; default 0o644 for files, 0o755 for directories. */
  mode?: number;
  /** File content (files only). */
  data?: Buffer;
}

export interface ReadTarOptions {
  /** Largest single file accepted. Default 256 MiB. */
  maxFileBytes?: number;
  /** Largest uncompressed archive accepted (guards against gzip bombs). Default 1 GiB. */
  maxTotalBytes?: number;
}

const BLOCK = 512;
/** 2020-01-01T00:00:00Z: fixed so equal inputs give equal bytes; not 0, which some tools read as "no time". */
export const TAR_MTIME = 1_577_836_800;
const DEFAULT_MAX_FILE = 256 * 1024 * 1024;
const DEFAULT_MAX_TOTAL = 1024 * 1024 * 1024;

// ------------------------------------------------------------------------------------ paths

/** Rejects what must never reach a file system: absolute paths, `..`, backslashes, empty segments. */
export function checkTarPath(path: string): string {
  const p = path.replace(/^(\.\/)+/, '').replace(/\/+$/, '');
  if (p === '' || p === '.') throw new TarError(`empty entry path '${path}'`);
  if (path.startsWith('/')) throw new TarError(`absolute entry path '${path}'`);
  if (/[\\\0]/.test(p)) throw new TarError(`entry path '${path}' contains a backslash or NUL`);
  for (const seg of p.split('/')) {
    if (seg === '..') throw new TarError(`entry path '${path}' contains '..'`);
    if (seg === '' || seg === '.') throw new TarError(`entry path '${path}' has an empty or '.' segment`);
  }
  return p;
}

/** ustar keeps names up to 100 bytes, or 155 bytes of prefix + '/' + 100 bytes of name. */
function splitName(name: string): { name: string; prefix: string } {
  if (Buffer.byteLength(name) <= 100) return { name, prefix: '' };
  for (let i = name.indexOf('/'); i !== -1; i = name.indexOf('/', i + 1)) {
    const prefix = name.slice(0, i);
    const rest = name.slice(i + 1);
    if (Buffer.byteLength(prefix) <= 155 && Buffer.byteLength(rest) <= 100) return { name: rest, prefix };
  }
  throw new TarError(`entry path '${name}' is too long for ustar`);
}

// ------------------------------------------------------------------------------------ writer

function octal(buf: Buffer, offset: number, length: number, value: number): void {
  const s = value.toString(8);
  if (s.length > length - 1) throw new TarError(`value ${value} does not fit a ${length}-byte tar field`);
  buf.write(s.padStart(length - 1, '0') + '\0', offset, length, 'ascii');
}

function header(path: string, type: 'file' | 'dir', mode: number, size: number): Buffer {
  const h = Buffer.alloc(BLOCK);
  const { name, prefix } = splitName(type === 'dir' ? `${path}/` : path);
  h.write(name, 0, 100, 'utf8');
  octal(h, 100, 8, mode);
  octal(h, 108, 8, 0); // uid
  octal(h, 116, 8, 0); // gid
  octal(h, 124, 12, size);
  octal(h, 136, 12, TAR_MTIME);
  h.write(type === 'dir' ? '5' : '0', 156, 1, 'ascii');
  h.write('ustar\0', 257, 6, 'ascii');
  h.write('00', 263, 2, 'ascii');
  h.write(prefix, 345, 155, 'utf8');
  // The checksum is computed with its own field read as eight spaces.
  h.fill(' ', 148, 156);
  let sum = 0;
  for (const b of h) sum += b;
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 8, 'ascii');
  return h;
}

/** An uncompressed ustar archive of `entries`, sorted by path (parents before children). */
export function writeTar(entries: readonly TarEntry[]): Buffer {
  const sorted = entries
    .map((e) => ({ ...e, path: checkTarPath(e.path) }))
    .sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const parts: Buffer[] = [];
  const seen = new Set<string>();
  for (const e of sorted) {
    if (seen.has(e.path)) throw new TarError(`duplicate entry '${e.path}'`);
    seen.add(e.path);
    const data = e.type === 'file' ? (e.data ?? Buffer.alloc(0)) : Buffer.alloc(0);
    parts.push(header(e.path, e.type, e.mode ?? (e.type === 'dir' ? 0o755 : 0o644), data.length));
    if (data.length > 0) {
      parts.push(data);
      const pad = (BLOCK - (data.length % BLOCK)) % BLOCK;
      if (pad) parts.push(Buffer.alloc(pad));
    }
  }
  parts.push(Buffer.alloc(2 * BLOCK)); // end-of-archive marker
  return Buffer.concat(parts);
}

/** writeTar + gzip (level 9; node's gzip header carries no timestamp, so the output is stable). */
export function writeTarGz(entries: readonly TarEntry[]): Buffer {
  return gzipSync(writeTar(entries), { level: 9 });
}

// ------------------------------------------------------------------------------------ reader

function cString(buf: Buffer, offset: number, length: number): string {
  const field = buf.subarray(offset, offset + length);
  const end = field.indexOf(0);
  return field.subarray(0, end === -1 ? length : end).toString('utf8');
}

function readOctal(buf: Buffer, offset: number, length: number, what: string): number {
  // A leading 0x80/0xff byte is GNU's base-256 encoding, used only for huge values.
  if ((buf[offset] ?? 0) & 0x80) throw new TarError(`${what} is out of range`);
  const s = cString(buf, offset, length).trim();
  if (s === '') return 0;
  if (!/^[0-7]+$/.test(s)) throw new TarError(`${what} is not an octal number: '${s}'`);
  return parseInt(s, 8);
}

const TYPE_NAMES: Record<string, string> = {
  '1': 'hard link',
  '2': 'symbolic link',
  '3': 'character device',
  '4': 'block device',
  '6': 'FIFO',
  '7': 'contiguous file',
  x: 'pax extended header',
  g: 'pax global header',
  L: 'GNU long name',
  K: 'GNU long link name',
};

/** Parses an uncompressed ustar archive; throws TarError on anything but safe files and directories. */
export function readTar(tar: Buffer, opts: ReadTarOptions = {}): TarEntry[] {
  const maxFile = opts.maxFileBytes ?? DEFAULT_MAX_FILE;
  const out: TarEntry[] = [];
  const seen = new Set<string>();
  let off = 0;
  for (;;) {
    if (off + BLOCK > tar.length) throw new TarError('archive is truncated (no end-of-archive marker)');
    const h = tar.subarray(off, off + BLOCK);
    if (h.every((b) => b === 0)) break;
    const stored = readOctal(h, 148, 8, 'header checksum');
    let sum = 0;
    for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : (h[i] as number);
    if (sum !== stored) throw new TarError(`bad header checksum at offset ${off}`);
    const magic = h.toString('latin1', 257, 263);
    if (magic !== 'ustar\0' && magic !== 'ustar ') throw new TarError(`not a ustar header at offset ${off}`);
    // GNU tar's own format ('ustar ' + ' \0', its default) keeps times where POSIX has the prefix.
    const prefix = magic === 'ustar\0' ? cString(h, 345, 155) : '';
    const rawName = cString(h, 0, 100);
    const rawPath = prefix ? `${prefix}/${rawName}` : rawName;
    const flag = String.fromCharCode(h[156] ?? 0);
    const size = readOctal(h, 124, 12, `size of '${rawPath}'`);
    const mode = readOctal(h, 100, 8, `mode of '${rawPath}'`);
    let type: 'file' | 'dir';
    if (flag === '0' || flag === '\0') type = 'file';
    else if (flag === '5') type = 'dir';
    else
      throw new TarError(
        `'${rawPath}' is a ${TYPE_NAMES[flag] ?? `type '${flag}' entry`}; only files and directories are allowed`,
      );
    const path = checkTarPath(rawPath);
    if (seen.has(path)) throw new TarError(`duplicate entry '${path}'`);
    seen.add(path);
    if (size > maxFile) throw new TarError(`'${path}' is ${size} bytes, more than the limit of ${maxFile}`);
    off += BLOCK;
    if (off + size > tar.length) throw new TarError(`'${path}' is truncated`);
    // Unpacked as root, set-id bits would survive: no bundle file has a reason to carry them
    // (on directories setgid only means group inheritance, common on shared build hosts).
    if (type === 'file' && mode & 0o6000)
      throw new TarError(`'${path}' has a setuid/setgid mode (${mode.toString(8)})`);
    const entry: TarEntry = { path, type, mode: mode & 0o7777 };
    if (type === 'file') entry.data = Buffer.from(tar.subarray(off, off + size));
    out.push(entry);
    off += Math.ceil(size / BLOCK) * BLOCK;
  }
  // A file that is also some entry's parent cannot be unpacked; unpackers differ in how they fail.
  const files = new Set(out.filter((e) => e.type === 'file').map((e) => e.path));
  for (const e of out) {
    for (let i = e.path.indexOf('/'); i !== -1; i = e.path.indexOf('/', i + 1)) {
      if (files.has(e.path.slice(0, i)))
        throw new TarError(`'${e.path.slice(0, i)}' is a file and a directory`);
    }
  }
  return out;
}

/** gunzip (bounded by maxTotalBytes) + readTar. */
export function readTarGz(gz: Buffer, opts: ReadTarOptions = {}): TarEntry[] {
  const maxTotal = opts.maxTotalBytes ?? DEFAULT_MAX_TOTAL;
  let tar: Buffer;
  try {
    tar = gunzipSync(gz, { maxOutputLength: maxTotal });
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (err.code === 'ERR_BUFFER_TOO_LARGE' || /Cannot create a Buffer larger/.test(err.message))
      throw new TarError(`archive unpacks to more than ${maxTotal} bytes`);
    throw new TarError(`not a gzip archive: ${err.message}`);
  }
  return readTar(tar, opts);
}
