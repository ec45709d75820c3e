/**
 * A single-member etcd as a child process, for `opsplane demo` (data kept in a dir of the
 * caller's, so a re-run finds its registrations and the server's state again). The tests have
 * their own, richer etcd helper (@opsplane/test-support: clusters, outages, compaction) and pass
 * its endpoints to the fleet instead.
 */
import { mkdir } from 'node:fs/promises';
import { exitedCheck, FleetError } from './errors.js';
import { freePort } from './ports.js';
import { spawnProcess, type ManagedProcess } from './processes.js';
import { waitFor, WaitTimeoutError } from '@opsplane/kit';
import { bootstrapEtcdAuth, etcdTlsArgs, type EtcdUser, type TlsFiles } from './security.js';

export interface EtcdProcessOptions {
  dataDir: string;
  /** Member name. Default `fleet`. */
  name?: string;
  /** --initial-cluster-token. Default `opsplane-fleet`. */
  clusterToken?: string;
  /** etcd binary. Default $OPSPLANE_ETCD_BIN or `etcd` (on PATH). */
  bin?: string;
  /** etcd's own --log-level. Default `error`. */
  logLevel?: string;
  env?: NodeJS.ProcessEnv;
  onLine?: (line: string) => void;
  exitSignal?: 'SIGKILL' | 'SIGTERM';
  /** How long it may take to become healthy. Default 20 s. */
  timeoutMs?: number;
  signal?: AbortSignal;
  /**
   * TLS with client certificates required, and etcd's own authentication enabled with these
   * users (once per data dir). Health is then checked on a plain loopback metrics port.
   */
  security?: {
    /** etcd's own certificate (with 127.0.0.1 among its SANs) and the CA bundle it trusts. */
    server: TlsFiles;
    /** A client certificate for the bootstrap. */
    admin: TlsFiles;
    rootPassword: string;
    users: readonly EtcdUser[];
  };
}

export interface EtcdProcess {
  /** http://127.0.0.1:<client port> (https:// with `security`) */
  readonly url: string;
  readonly endpoints: readonly string[];
  readonly dataDir: string;
  readonly process: ManagedProcess;
}

/** Starts etcd on free loopback ports and waits until it reports healthy; retries on a port clash. */
export async function startEtcdProcess(opts: EtcdProcessOptions): Promise<EtcdProcess> {
  const bin = opts.bin ?? process.env.OPSPLANE_ETCD_BIN ?? 'etcd';
  const name = opts.name ?? 'fleet';
  await mkdir(opts.dataDir, { recursive: true, mode: 0o700 });
  for (let attempt = 0; ; attempt++) {
    const sec = opts.security;
    const url = `${sec ? 'https' : 'http'}://127.0.0.1:${await freePort()}`;
    const peerUrl = `http://127.0.0.1:${await freePort()}`;
    // With client-cert-auth /health wants a certificate too; a plain loopback metrics port serves it.
    const healthBase = sec ? `http://127.0.0.1:${await freePort()}` : url;
    // prettier-ignore
    const args = [
      '--name', name,
      '--data-dir', opts.dataDir,
      '--listen-client-urls', url,
      '--advertise-client-urls', url,
      '--listen-peer-urls', peerUrl,
      '--initial-advertise-peer-urls', peerUrl,
      '--initial-cluster', `${name}=${peerUrl}`,
      '--initial-cluster-token', opts.clusterToken ?? 'opsplane-fleet',
      '--heartbeat-interval', '100',
      '--election-timeout', '1000',
      '--logger', 'zap',
      '--log-level', opts.logLevel ?? 'error',
      ...(sec ? [...etcdTlsArgs(sec.server), '--listen-metrics-urls', healthBase] : []),
    ];
    const proc = spawnProcess('etcd', bin, args, {
      ...(opts.env ? { env: opts.env } : {}),
      ...(opts.onLine ? { onLine: opts.onLine } : {}),
      ...(opts.exitSignal ? { exitSignal: opts.exitSignal } : {}),
    });
    try {
      await waitFor(
        async () => {
          const res = await fetch(`${healthBase}/health`, { signal: AbortSignal.timeout(1000) });
          return res.ok && ((await res.json()) as { health?: string }).health === 'true';
        },
        {
          what: 'etcd to become healthy',
          timeoutMs: opts.timeoutMs ?? 20_000,
          intervalMs: 100,
          ...(opts.signal ? { signal: opts.signal } : {}),
          check: () => exitedCheck(proc, 'etcd to become healthy'),
        },
      );
      if (sec) {
        await bootstrapEtcdAuth({
          endpoint: url,
          admin: sec.admin,
          rootPassword: sec.rootPassword,
          users: sec.users,
          dataDir: opts.dataDir,
        });
      }
      return { url, endpoints: [url], dataDir: opts.dataDir, process: proc };
    } catch (e) {
      await proc.kill();
      if (attempt < 2 && /address already in use/i.test(proc.tail(100))) continue;
      if (e instanceof WaitTimeoutError) throw new FleetError(e.message);
      throw e;
    }
  }
}
