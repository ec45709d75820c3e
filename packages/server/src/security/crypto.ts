/**
 * Secrets at rest: AES-256-GCM under one master key. Ciphertext is self-describing text,
 * `v1:<key id>:<base64(iv ‖ tag ‖ data)>`, so a wrong or rotated key is reported by name instead
 * of as a garbled plaintext, and a future `v2` can coexist. Each ciphertext is bound (AAD) to
 * what it protects, e.g. `device:<id>:password`, so values cannot be swapped between rows.
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { chmod, mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Logger } from 'pino';
import { OpsplaneError } from '@opsplane/models';

const KEY_BYTES = 32;
const IV_BYTES = 12;
const TAG_BYTES = 16;
const VERSION = 'v1';

export class CryptoError extends OpsplaneError {
  constructor(message: string) {
    super('internal', message);
  }
}

/** Parses a 32-byte key written as base64 (44 chars) or hex (64 chars). */
export function parseMasterKey(text: string, source: string): Buffer {
  const s = text.trim();
  const key = /^[0-9a-fA-F]{64}$/.test(s) ? Buffer.from(s, 'hex') : Buffer.from(s, 'base64');
  if (key.length !== KEY_BYTES) {
    throw new CryptoError(
      `${source}: master key must be 32 bytes, base64 or hex encoded (got ${key.length} bytes)`,
    );
  }
  return key;
}

/** Short public id of a key (first 8 hex chars of its SHA-256) stored with each ciphertext. */
export function keyId(key: Buffer): string {
  return createHash('sha256').update('opsplane-master-key').update(key).digest('hex').slice(0, 8);
}

export class SecretBox {
  readonly keyId: string;
  readonly #key: Buffer;

  constructor(key: Buffer) {
    if (key.length !== KEY_BYTES) throw new CryptoError('master key must be 32 bytes');
    this.#key = Buffer.from(key);
    this.keyId = keyId(key);
  }

  encrypt(plaintext: string, aad: string): string {
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.#key, iv);
    cipher.setAAD(Buffer.from(aad, 'utf8'));
    const data = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    const blob = Buffer.concat([iv, cipher.getAuthTag(), data]).toString('base64');
    return `${VERSION}:${this.keyId}:${blob}`;
  }

  decrypt(ciphertext: string, aad: string): string {
    const [version, kid, blob, ...rest] = ciphertext.split(':');
    if (version !== VERSION || kid === undefined || blob === undefined || rest.length > 0) {
      throw new CryptoError('unsupported ciphertext format');
    }
    if (kid !== this.keyId) {
      throw new CryptoError(
        `secret was encrypted with master key ${kid}, but the configured key is ${this.keyId}`,
      );
    }
    const raw = Buffer.from(blob, 'base64');
    if (raw.length < IV_BYTES + TAG_BYTES) throw new CryptoError('ciphertext too short');
    const decipher = createDecipheriv('aes-256-gcm', this.#key, raw.subarray(0, IV_BYTES));
    decipher.setAAD(Buffer.from(aad, 'utf8'));
    decipher.setAuthTag(raw.subarray(IV_BYTES, IV_BYTES + TAG_BYTES));
    try {
      return Buffer.concat([decipher.update(raw.subarray(IV_BYTES + TAG_BYTES)), decipher.final()]).toString(
        'utf8',
      );
    } catch {
      throw new CryptoError('secret failed authentication (tampered, or bound to another record)');
    }
  }
}

export interface MasterKeySource {
  /** The key itself (OPSPLANE_MASTER_KEY). */
  env?: string | undefined;
  /** A key file (server.master_key_file / OPSPLANE_MASTER_KEY_FILE). */
  file?: string | undefined;
  /** Where the embedded default keeps its generated key. */
  dataDir: string;
  /** Only the embedded default may invent a key: with an external database the key must be given. */
  mayGenerate: boolean;
}

export interface LoadedMasterKey {
  box: SecretBox;
  source: 'env' | 'file' | 'generated';
  path?: string;
}

/**
 * Finds the master key: env, then the configured file, then `<data_dir>/master.key`; creates
 * that file (mode 0600) when allowed and absent. Losing this key loses every stored secret.
 */
export async function loadMasterKey(src: MasterKeySource, logger?: Logger): Promise<LoadedMasterKey> {
  if (src.env) return { box: new SecretBox(parseMasterKey(src.env, 'OPSPLANE_MASTER_KEY')), source: 'env' };
  const configured = src.file;
  const path = configured ?? join(src.dataDir, 'master.key');
  let text: string | undefined;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw new CryptoError(`cannot read master key file ${path}: ${(e as Error).message}`);
    }
  }
  if (text !== undefined) {
    const st = await stat(path);
    if ((st.mode & 0o077) !== 0)
      logger?.warn({ path }, 'master key file is readable by group/others; chmod 600 it');
    return { box: new SecretBox(parseMasterKey(text, path)), source: 'file', path };
  }
  if (configured) throw new CryptoError(`master key file ${configured} does not exist`);
  if (!src.mayGenerate) {
    throw new CryptoError(
      'no master key: set OPSPLANE_MASTER_KEY or OPSPLANE_MASTER_KEY_FILE (server.master_key_file) when using DATABASE_URL',
    );
  }
  const key = randomBytes(KEY_BYTES);
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  // 'wx': never overwrite a key another process created meanwhile.
  await writeFile(path, key.toString('base64') + '\n', { mode: 0o600, flag: 'wx' });
  await chmod(path, 0o600);
  logger?.warn({ path }, 'generated a new master key; back it up — secrets cannot be decrypted without it');
  return { box: new SecretBox(key), source: 'generated', path };
}
