/**
 * Host key policy: trust on first use (the fingerprint is recorded), refuse a changed key with
 * SshHostKeyChangedError unless the operator accepted the change (then it is re-recorded).
 */
import { createHash } from 'node:crypto';
import { SshHostKeyChangedError } from './ssh-errors.js';

/** Where recorded host key fingerprints live, keyed by `host:port`. */
export interface HostKeyStore {
  get(hostPort: string): Promise<string | undefined>;
  record(hostPort: string, fingerprint: string): Promise<void>;
}

export class MemoryHostKeyStore implements HostKeyStore {
  readonly #keys = new Map<string, string>();
  constructor(initial?: Iterable<[string, string]>) {
    if (initial) for (const [k, v] of initial) this.#keys.set(k, v);
  }
  get(hostPort: string): Promise<string | undefined> {
    return Promise.resolve(this.#keys.get(hostPort));
  }
  record(hostPort: string, fingerprint: string): Promise<void> {
    this.#keys.set(hostPort, fingerprint);
    return Promise.resolve();
  }
  entries(): [string, string][] {
    return [...this.#keys];
  }
}

/** `SHA256:<base64 without padding>` of the raw host key blob, as OpenSSH prints it. */
export function hostKeyFingerprint(keyBlob: Buffer): string {
  return `SHA256:${createHash('sha256').update(keyBlob).digest('base64').replace(/=+$/, '')}`;
}

/** `host:port` (`[v6]:port`), the store key. */
export function hostPortKey(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

export type HostKeyDecision = 'recorded' | 'matched' | 'replaced';

/**
 * Applies the policy to a presented key: records it on first use, accepts a match, and on a
 * change throws SshHostKeyChangedError unless acceptChangedKey (then re-records it).
 */
export async function checkHostKey(
  store: HostKeyStore,
  hostPort: string,
  presented: string,
  acceptChangedKey = false,
): Promise<HostKeyDecision> {
  const expected = await store.get(hostPort);
  if (expected === undefined) {
    await store.record(hostPort, presented);
    return 'recorded';
  }
  if (expected === presented) return 'matched';
  if (!acceptChangedKey) throw new SshHostKeyChangedError(hostPort, expected, presented);
  await store.record(hostPort, presented);
  return 'replaced';
}
