/**
 * Host key policy: trust on first use (the fingerprint is recorded), refuse a changed key with
 * SshHostKeyChangedError unless the operator accepted the change (then it is re-recorded).
 * Pins are kept under a key the caller chooses (a target's `hostKeyId`, e.g. its device id;
 * default `host:port`): per device, a device that moves to another address keeps its pin — a
 * different key there is a changed key — and never inherits what another device trusted there.
 */
import { createHash } from 'node:crypto';
import { SshHostKeyChangedError } from './ssh-errors.js';

/** Where recorded host key fingerprints live, keyed by pin key (`host:port` or the caller's id). */
export interface HostKeyStore {
  get(pinKey: string): Promise<string | undefined>;
  record(pinKey: string, fingerprint: string): Promise<void>;
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
  pinKey: string,
  presented: string,
  acceptChangedKey = false,
  /** For the error message: where the key was presented (default: the pin key). */
  hostPort = pinKey,
): Promise<HostKeyDecision> {
  const expected = await store.get(pinKey);
  if (expected === undefined) {
    await store.record(pinKey, presented);
    return 'recorded';
  }
  if (expected === presented) return 'matched';
  if (!acceptChangedKey) throw new SshHostKeyChangedError(hostPort, expected, presented);
  await store.record(pinKey, presented);
  return 'replaced';
}
