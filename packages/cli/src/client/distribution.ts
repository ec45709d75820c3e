/**
 * What the distribution commands (`artifacts`, `policies`, `rollouts`) share: finding an
 * artifact by sha256, prefix or `name@version`, a policy by name or id, and turning the API's
 * distribution error codes into a message that says what to do next.
 */
import type { Artifact, Policy } from '@opsplane/api';
import { CliError } from '../command.js';
import { ApiError, type ApiClient } from './api.js';

/** What to do about a distribution error, by the API's error code. */
const HINTS: Record<string, string> = {
  artifact_not_found:
    "upload it first: opsplane artifacts upload <file.tar.gz> (see 'opsplane artifacts list')",
  artifact_in_use: "a revision of a policy names it: change the policy first (see 'opsplane policies list')",
  artifact_version_exists:
    'a version is immutable once stored: give the new archive another version in its manifest',
  artifact_bad_signature: 'the signature does not verify for these bytes and metadata',
  artifact_untrusted_key: "the key is not among the server's artifacts.trusted_keys",
  artifact_too_large: 'the server limits the size of an artifact (artifacts.max_bytes)',
  rollout_active:
    "a rollout of this policy is running: follow it with 'opsplane rollouts list --policy <name>', or cancel it",
};

/** Runs `work`; an ApiError with a known distribution code gets its hint appended. */
export async function withHints<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (e) {
    if (e instanceof ApiError && HINTS[e.code])
      throw new ApiError(e.status, e.code, `${e.message}; ${HINTS[e.code]}`);
    throw e;
  }
}

const SHA256 = /^[0-9a-f]{64}$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** `kind name version os/arch` for messages. */
export const artifactLabel = (a: Pick<Artifact, 'kind' | 'name' | 'version' | 'os' | 'arch'>): string =>
  `${a.kind} ${a.name} ${a.version} (${a.os}/${a.arch})`;

/**
 * The artifact `ref` names: a sha256, a unique prefix of one (at least 8 hex digits), or
 * `name@version` (unique across os/arch). CliError when none or several match.
 */
export async function resolveArtifact(api: ApiClient, ref: string): Promise<Artifact> {
  if (SHA256.test(ref)) return api.call('GET /artifacts/:sha256', { params: { sha256: ref } });
  const at = ref.lastIndexOf('@');
  let found: Artifact[];
  if (at > 0) {
    const name = ref.slice(0, at);
    const version = ref.slice(at + 1);
    found = (await api.call('GET /artifacts', { query: { name, version, pageSize: 500 } })).items;
  } else if (/^[0-9a-f]{8,63}$/.test(ref)) {
    found = [];
    for (let page = 1; ; page++) {
      const r = await api.call('GET /artifacts', { query: { page, pageSize: 500 } });
      found.push(...r.items.filter((a) => a.sha256.startsWith(ref)));
      if (page * r.pageSize >= r.total || r.items.length === 0) break;
    }
  } else {
    throw new CliError(`'${ref}' is neither a sha256 (or a prefix of 8+ hex digits) nor name@version`);
  }
  if (found.length === 0) throw new CliError(`no artifact matches '${ref}' (see 'opsplane artifacts list')`);
  if (found.length > 1)
    throw new CliError(
      `'${ref}' matches ${found.length} artifacts; give the sha256:\n` +
        found.map((a) => `  ${a.sha256}  ${artifactLabel(a)}`).join('\n'),
    );
  return found[0] as Artifact;
}

/** The policy named `ref` (its name or its id). */
export async function resolvePolicy(api: ApiClient, ref: string): Promise<Policy> {
  if (UUID.test(ref)) return api.call('GET /policies/:id', { params: { id: ref } });
  const r = await api.call('GET /policies');
  const p = r.items.find((x) => x.name === ref);
  if (!p) throw new CliError(`no policy named '${ref}' (see 'opsplane policies list')`);
  return p;
}
