/**
 * TLS material from configuration: the trusted CA bundle, a certificate and its key, each given
 * as a file path or inline PEM. `TlsReloader` re-reads the files when they change (renewal by
 * the platform, an operator's rotation) so that a server swaps its certificate without a
 * restart: existing connections keep theirs, new handshakes get the new one.
 */
import { statSync } from 'node:fs';
import { readPemSync } from './files.js';

export interface TlsPaths {
  /** CA bundle to trust (path or PEM). */
  ca?: string | undefined;
  /** Own certificate (path or PEM). */
  cert?: string | undefined;
  /** Own private key (path or PEM). */
  key?: string | undefined;
}

export interface TlsMaterial {
  ca?: string;
  cert?: string;
  key?: string;
}

export function loadTlsMaterial(p: TlsPaths): TlsMaterial {
  return {
    ...(p.ca ? { ca: readPemSync(p.ca) } : {}),
    ...(p.cert ? { cert: readPemSync(p.cert) } : {}),
    ...(p.key ? { key: readPemSync(p.key) } : {}),
  };
}

function stamp(p: TlsPaths): string {
  return [p.ca, p.cert, p.key]
    .map((v) => {
      if (!v || v.includes('-----BEGIN')) return '-';
      try {
        const s = statSync(v);
        return `${s.mtimeMs}:${s.size}:${s.ino}`;
      } catch {
        return 'missing';
      }
    })
    .join('|');
}

/** Polls the files' mtime/size/inode every `intervalMs` and calls `onChange` with the new material. */
export class TlsReloader {
  private last: string;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly paths: TlsPaths,
    private readonly onChange: (m: TlsMaterial) => void,
    private readonly onError: (e: Error) => void = () => undefined,
  ) {
    this.last = stamp(paths);
  }

  start(intervalMs: number): void {
    this.timer = setInterval(() => this.check(), intervalMs);
    this.timer.unref();
  }

  /** Checks now; returns true when the material changed and was applied. */
  check(): boolean {
    const now = stamp(this.paths);
    if (now === this.last) return false;
    try {
      const m = loadTlsMaterial(this.paths);
      this.onChange(m);
      this.last = now;
      return true;
    } catch (e) {
      // Half-written (cert renamed, key not yet): try again at the next tick.
      this.onError(e as Error);
      return false;
    }
  }

  stop(): void {
    clearInterval(this.timer);
  }
}
