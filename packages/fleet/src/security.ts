/**
 * TLS and etcd authentication for a fleet — what `opsplane demo` runs with by default and what
 * the TLS tests use: certificates issued from a CA directory of the built-in CA (@opsplane/pki)
 * for etcd, the platform server, controllers and agents; etcd started with TLS, client
 * certificates required (`--client-cert-auth`) and its own user/role authentication enabled
 * (etcdctl), with one role per kind of client:
 *
 *   opsplane-controller  controllers/ rw · pki/csr/ rw · pki/issued/ rw · revocations/ read
 *   opsplane-server      controllers/ read · pki/ rw · revocations/ rw · election/ rw (its replicas' leader)
 *
 * plus `root` (etcd needs it to enable authentication; nobody uses it after the bootstrap).
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Agent, fetch as undiciFetch } from 'undici';
import { issueToFiles, type CertKind } from '@opsplane/pki';

/** Paths of a TLS identity: the CA bundle, a certificate, its key. */
export interface TlsFiles {
  ca: string;
  cert: string;
  key: string;
}

/** Issues `<dir>/<base>.crt|.key` and `<dir>/ca.crt` from the CA in `caDir`. */
export async function issueTlsFiles(
  caDir: string,
  dir: string,
  base: string,
  id: { kind: CertKind; name: string; area?: string; sans?: readonly string[] },
): Promise<TlsFiles> {
  const r = await issueToFiles(caDir, dir, base, {
    kind: id.kind,
    name: id.name,
    area: id.area ?? '',
    ...(id.sans ? { sans: id.sans } : {}),
  });
  return { ca: r.caPath, cert: r.certPath, key: r.keyPath };
}

export interface EtcdRole {
  name: string;
  /** [permission, key prefix] */
  grants: ReadonlyArray<readonly ['read' | 'write' | 'readwrite', string]>;
}

export const ETCD_ROLES: Readonly<Record<'controller' | 'server', EtcdRole>> = {
  controller: {
    name: 'opsplane-controller',
    grants: [
      ['readwrite', 'controllers/'],
      ['readwrite', 'pki/csr/'],
      ['readwrite', 'pki/issued/'],
      ['read', 'revocations/'],
    ],
  },
  server: {
    name: 'opsplane-server',
    grants: [
      ['read', 'controllers/'],
      ['readwrite', 'pki/'],
      ['readwrite', 'revocations/'],
      // etcd3's Election keeps its keys under election/<name>/ (the cluster leader of the replicas).
      ['readwrite', 'election/'],
    ],
  },
};

export interface EtcdUser {
  name: string;
  password: string;
  role: EtcdRole;
}

function etcdctl(
  bin: string,
  endpoint: string,
  tls: TlsFiles,
  args: readonly string[],
  user?: string,
): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      bin,
      [
        `--endpoints=${endpoint}`,
        `--cacert=${tls.ca}`,
        `--cert=${tls.cert}`,
        `--key=${tls.key}`,
        '--dial-timeout=3s',
        '--command-timeout=5s',
        ...(user ? [`--user=${user}`] : []),
        ...args,
      ],
      { env: { ...process.env, ETCDCTL_API: '3' }, timeout: 15_000 },
      (err, stdout, stderr) =>
        err
          ? reject(new Error(`etcdctl ${args.slice(0, 3).join(' ')} failed: ${stderr || err.message}`))
          : resolve(stdout),
    );
  });
}

/** Marker in the etcd data dir: authentication was set up (a re-run of the demo skips it). */
export const ETCD_AUTH_MARKER = '.opsplane-auth';

/**
 * Creates root, the roles and users, and enables etcd's authentication — once per data dir
 * (the marker). `admin` is a client certificate of the CA (etcd requires one for every
 * connection).
 */
export async function bootstrapEtcdAuth(opts: {
  endpoint: string;
  admin: TlsFiles;
  rootPassword: string;
  users: readonly EtcdUser[];
  dataDir: string;
  etcdctlBin?: string;
}): Promise<void> {
  const marker = join(opts.dataDir, ETCD_AUTH_MARKER);
  if (existsSync(marker)) return;
  const bin = opts.etcdctlBin ?? process.env.OPSPLANE_ETCDCTL_BIN ?? 'etcdctl';
  const run = (args: string[]) => etcdctl(bin, opts.endpoint, opts.admin, args);
  await run(['user', 'add', 'root', `--new-user-password=${opts.rootPassword}`]);
  await run(['user', 'grant-role', 'root', 'root']);
  const roles = new Map(opts.users.map((u) => [u.role.name, u.role]));
  for (const role of roles.values()) {
    await run(['role', 'add', role.name]);
    for (const [perm, prefix] of role.grants) {
      await run(['role', 'grant-permission', role.name, '--prefix=true', perm, prefix]);
    }
  }
  for (const u of opts.users) {
    await run(['user', 'add', u.name, `--new-user-password=${u.password}`]);
    await run(['user', 'grant-role', u.name, u.role.name]);
  }
  await run(['auth', 'enable']);
  await writeFile(marker, `${new Date().toISOString()}\n`, { mode: 0o600 });
}

/** etcd flags for TLS with client certificates required (the member's own certificate). */
export function etcdTlsArgs(server: TlsFiles): string[] {
  return [
    '--cert-file',
    server.cert,
    '--key-file',
    server.key,
    '--trusted-ca-file',
    server.ca,
    '--client-cert-auth',
  ];
}

/**
 * fetch through undici trusting `ca` only (and presenting `cert`/`key` when given). `ca` may be a
 * function: it is read at every request and a changed bundle (a CA rotation) takes effect.
 */
export function tlsFetch(tls: { ca: string | (() => string); cert?: string; key?: string }): typeof fetch {
  let agent: Agent | undefined;
  let current = '';
  const dispatcher = () => {
    const ca = typeof tls.ca === 'function' ? tls.ca() : tls.ca;
    if (!agent || ca !== current) {
      void agent?.close();
      agent = new Agent({
        connect: { ca, ...(tls.cert && tls.key ? { cert: tls.cert, key: tls.key } : {}) },
      });
      current = ca;
    }
    return agent;
  };
  return ((url: string | URL, init?: RequestInit) =>
    undiciFetch(url, { ...((init ?? {}) as object), dispatcher: dispatcher() })) as unknown as typeof fetch;
}
