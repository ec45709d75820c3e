/**
 * Trusting a private CA (the built-in one) for the server's HTTPS: `--ca <file>` at login
 * (stored with the credential), or OPSPLANE_CA_FILE. Requests then go through undici with that
 * CA bundle only; without one, through the global fetch and the system's CAs.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { Agent, fetch as undiciFetch } from 'undici';
import { CliError } from '../command.js';

let dispatcher: Agent | undefined;
let caPath: string | undefined;

/** Trust the CA bundle in `path` (undefined: the system's CAs). Returns the absolute path. */
export function useCaFile(path: string | undefined): string | undefined {
  if (!path) return undefined;
  const abs = resolve(path);
  if (abs === caPath) return abs;
  let ca: string;
  try {
    ca = readFileSync(abs, 'utf8');
  } catch (e) {
    throw new CliError(`cannot read the CA bundle ${abs}: ${(e as Error).message}`);
  }
  void dispatcher?.close();
  dispatcher = new Agent({ connect: { ca } });
  caPath = abs;
  return abs;
}

export function cliFetch(url: string | URL, init: RequestInit): Promise<Response> {
  if (!dispatcher) return fetch(url, init);
  return undiciFetch(url, { ...(init as object), dispatcher }) as unknown as Promise<Response>;
}
