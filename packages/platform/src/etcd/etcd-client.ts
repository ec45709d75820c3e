/**
 * One way to build the etcd client for every Opsplane process. The etcd3 library's defaults stop
 * sending to a host for 5 s after three failures and back watches off without bound, so after a
 * short etcd outage discovery and registration would sit idle for seconds; here the breaker
 * half-opens after 1 s and watch backoff is capped at 2 s.
 */
import { Etcd3, isRecoverableError, type IOptions } from 'etcd3';
import { circuitBreaker, ConsecutiveBreaker, ExponentialBackoff, handleWhen, retry } from 'cockatiel';

export interface EtcdClientOptions {
  endpoints: string[];
  dialTimeoutMs?: number;
  /** etcd's own authentication (a user with a role granting the key ranges it needs). */
  auth?: { username: string; password: string };
  /**
   * TLS: the CA bundle that signed etcd's certificate and, for etcd's `--client-cert-auth`, a
   * client certificate and key (PEM). Endpoints without a scheme then mean https.
   */
  tls?: { ca: string | Buffer; cert?: string | Buffer; key?: string | Buffer };
  /** Milliseconds before a failed host is tried again (default 1000). */
  hostRetryAfterMs?: number;
  /** Cap of the watch reconnect backoff (default 2000). */
  maxWatchBackoffMs?: number;
}

/** Adds `http://` to bare `host:port` endpoints, as the guide's config writes them. */
export function normalizeEtcdEndpoints(
  endpoints: readonly string[],
  scheme: 'http' | 'https' = 'http',
): string[] {
  return endpoints.map((e) => (/^[a-z]+:\/\//i.test(e) ? e : `${scheme}://${e}`));
}

export function createEtcdClient(opts: EtcdClientOptions): Etcd3 {
  const options: IOptions = {
    hosts: normalizeEtcdEndpoints(opts.endpoints, opts.tls ? 'https' : 'http'),
    dialTimeout: opts.dialTimeoutMs ?? 5000,
    faultHandling: {
      host: () =>
        circuitBreaker(handleWhen(isRecoverableError), {
          halfOpenAfter: opts.hostRetryAfterMs ?? 1000,
          breaker: new ConsecutiveBreaker(3),
        }),
      global: retry(handleWhen(isRecoverableError), { maxAttempts: 3 }),
      // etcd3 types this as an IBackoff but calls next() on it first, so hand it the first step.
      watchBackoff: new ExponentialBackoff({
        initialDelay: 100,
        maxDelay: opts.maxWatchBackoffMs ?? 2000,
      }).next(),
    },
    ...(opts.auth ? { auth: opts.auth } : {}),
    ...(opts.tls
      ? {
          credentials: {
            rootCertificate: Buffer.from(opts.tls.ca),
            ...(opts.tls.key !== undefined ? { privateKey: Buffer.from(opts.tls.key) } : {}),
            ...(opts.tls.cert !== undefined ? { certChain: Buffer.from(opts.tls.cert) } : {}),
          },
        }
      : {}),
  };
  return new Etcd3(options);
}
