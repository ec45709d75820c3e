/**
 * The HTTP(S) transport under WinRmClient: one keep-alive connection per client (NTLM
 * authenticates a connection, not a request, so every leg of the handshake and every later
 * request must share it — hence maxSockets 1), Basic or NTLMv2 authentication, TLS with normal
 * verification or a pinned certificate SHA-256 fingerprint (checked before the socket is handed
 * to the HTTP client, so no credential reaches an impostor), and the mapping of network and
 * TLS failures onto the typed errors of winrm-errors.ts. Returns status and body; the SOAP
 * layer is WinRmClient's.
 */
import http from 'node:http';
import https from 'node:https';
import type { Duplex } from 'node:stream';
import tls from 'node:tls';
import { ValidationError } from '@opsplane/models';
import { authenticateMessage, negotiateMessage, parseChallengeMessage } from './ntlm.js';
import { WinRmAuthError, WinRmTlsError, WinRmUnreachableError } from './winrm-errors.js';
import { UNREACHABLE_NET_CODES } from '../deploy-errors.js';

export interface TransportOptions {
  /** `http(s)://host:port/wsman` */
  url: URL;
  /** `user@host:port`, for messages. */
  target: string;
  username: string;
  password: string;
  domain?: string;
  auth: 'basic' | 'ntlm';
  tls?: { fingerprint256?: string; ca?: string | Buffer; servername?: string };
}

export interface RawResponse {
  status: number;
  /** Every WWW-Authenticate header value. */
  headers: string[];
  body: string;
  socket: unknown;
}

const TLS_CODE = /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|UNABLE_TO_GET_ISSUER|ALTNAME|HOSTNAME/;
const MAX_RESPONSE = 32 * 1024 * 1024;

/** Normalizes a SHA-256 fingerprint to 64 lowercase hex digits, or throws ValidationError. */
export function normalizeFingerprint(fp: string): string {
  const hex = fp.replace(/[:\s]/g, '').toLowerCase();
  if (!/^[0-9a-f]{64}$/.test(hex)) {
    throw new ValidationError(
      'tls.fingerprint256 must be a SHA-256 fingerprint (64 hex digits, colons optional)',
    );
  }
  return hex;
}

/** An https.Agent that accepts exactly one certificate, by fingerprint, before handing out the socket. */
class PinnedAgent extends https.Agent {
  readonly #pin: string;
  readonly #endpoint: string;
  constructor(pin: string, endpoint: string) {
    super({ keepAlive: true, maxSockets: 1 });
    this.#pin = pin;
    this.#endpoint = endpoint;
  }
  override createConnection(
    options: https.RequestOptions,
    callback?: (err: Error | null, stream: Duplex) => void,
  ): Duplex | null | undefined {
    const socket = tls.connect({
      host: options.host ?? undefined,
      port: Number(options.port),
      servername: options.servername ?? undefined,
      rejectUnauthorized: false, // replaced by the fingerprint check below
    });
    const fail = (e: Error) => callback?.(e, socket);
    socket.once('error', fail);
    socket.once('secureConnect', () => {
      socket.off('error', fail);
      const presented = socket.getPeerCertificate().fingerprint256?.replace(/:/g, '').toLowerCase() ?? '';
      if (presented !== this.#pin) {
        socket.destroy();
        fail(
          new WinRmTlsError(
            this.#endpoint,
            `certificate sha256 ${presented || '(none)'} is not the pinned ${this.#pin}`,
          ),
        );
        return;
      }
      callback?.(null, socket);
    });
    return undefined; // handed over through the callback once verified
  }
}

export class WinRmTransport {
  readonly #opts: TransportOptions;
  readonly #url: URL;
  readonly #agent: http.Agent;
  #ntlmReady = false;

  constructor(opts: TransportOptions) {
    this.#opts = opts;
    this.#url = opts.url;
    const hostPort = `${opts.url.hostname}:${opts.url.port}`;
    if (opts.url.protocol !== 'https:') this.#agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    else if (opts.tls?.fingerprint256) {
      this.#agent = new PinnedAgent(normalizeFingerprint(opts.tls.fingerprint256), hostPort);
    } else {
      this.#agent = new https.Agent({
        keepAlive: true,
        maxSockets: 1,
        rejectUnauthorized: true,
        ...(opts.tls?.ca !== undefined ? { ca: opts.tls.ca } : {}),
      });
    }
  }

  get target(): string {
    return this.#opts.target;
  }

  /** POSTs one SOAP envelope, authenticating as needed. Throws typed errors; returns any other status. */
  post(xml: string, timeoutMs: number): Promise<RawResponse> {
    return this.#post(xml, timeoutMs);
  }

  close(): void {
    this.#agent.destroy();
  }

  async #post(xml: string, timeoutMs: number): Promise<RawResponse> {
    const { username, password } = this.#opts;
    if (this.#opts.auth === 'basic') {
      const token = Buffer.from(`${username}:${password}`, 'utf8').toString('base64');
      const res = await this.#raw(xml, `Basic ${token}`, timeoutMs);
      if (res.status === 401) {
        const offered = res.headers.length === 0 || res.headers.some((h) => /^basic\b/i.test(h));
        throw new WinRmAuthError(
          this.target,
          offered ? undefined : 'the service does not offer Basic auth (it is off by default): use NTLM',
        );
      }
      return res;
    }
    if (this.#ntlmReady) {
      const res = await this.#raw(xml, undefined, timeoutMs);
      if (res.status !== 401) return res;
      this.#ntlmReady = false; // a new connection (or an expired context): authenticate again
    }
    return this.#ntlmHandshake(xml, timeoutMs, true);
  }

  /** NEGOTIATE → CHALLENGE → AUTHENTICATE on one connection, the last leg carrying `xml`. */
  async #ntlmHandshake(xml: string, timeoutMs: number, retry: boolean): Promise<RawResponse> {
    const neg = await this.#raw('', `Negotiate ${negotiateMessage().toString('base64')}`, timeoutMs);
    if (neg.status !== 401) {
      throw new WinRmAuthError(this.target, `unexpected HTTP ${neg.status} to the NTLM negotiate message`);
    }
    let scheme = '';
    let token = '';
    for (const h of neg.headers) {
      const m = /^(Negotiate|NTLM)\s+([A-Za-z0-9+/]+=*)\s*$/i.exec(h);
      if (m) [scheme, token] = [m[1]!, m[2]!];
    }
    if (!token) {
      throw new WinRmAuthError(this.target, 'no NTLM challenge from the server (is Negotiate auth enabled?)');
    }
    let challenge;
    try {
      challenge = parseChallengeMessage(Buffer.from(token, 'base64'));
    } catch (e) {
      throw new WinRmAuthError(this.target, `bad NTLM challenge: ${(e as Error).message}`);
    }
    const auth = authenticateMessage({
      challenge,
      username: this.#opts.username,
      password: this.#opts.password,
      ...(this.#opts.domain !== undefined ? { domain: this.#opts.domain } : {}),
    });
    const res = await this.#raw(xml, `${scheme} ${auth.toString('base64')}`, timeoutMs);
    if (res.status === 401) {
      // The challenge belongs to its connection: if the server closed it in between, try once more.
      if (res.socket !== neg.socket && retry) return this.#ntlmHandshake(xml, timeoutMs, false);
      throw new WinRmAuthError(this.target);
    }
    this.#ntlmReady = true;
    return res;
  }

  #raw(body: string, authorization: string | undefined, timeoutMs: number): Promise<RawResponse> {
    const endpoint = `${this.#url.hostname}:${this.#url.port}`;
    const data = Buffer.from(body, 'utf8');
    const headers: http.OutgoingHttpHeaders = {
      'Content-Type': 'application/soap+xml;charset=UTF-8',
      'Content-Length': data.length,
      'User-Agent': 'Opsplane WinRM client',
    };
    if (authorization) headers.Authorization = authorization;
    const request = this.#url.protocol === 'https:' ? https.request : http.request;
    return new Promise<RawResponse>((resolve, reject) => {
      let settled = false;
      let timedOut = false;
      const fail = (e: Error & { code?: string }) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (timedOut)
          return reject(new WinRmUnreachableError(endpoint, `no response within ${timeoutMs} ms`));
        if (e instanceof WinRmTlsError) return reject(e);
        if (e.code && TLS_CODE.test(e.code))
          return reject(new WinRmTlsError(endpoint, `${e.code}: ${e.message}`, e));
        if (e.code && UNREACHABLE_NET_CODES.has(e.code))
          return reject(new WinRmUnreachableError(endpoint, e.code, e));
        reject(new WinRmUnreachableError(endpoint, e.message, e));
      };
      const req = request(
        this.#url,
        {
          method: 'POST',
          agent: this.#agent,
          headers,
          ...(this.#opts.tls?.servername ? { servername: this.#opts.tls.servername } : {}),
        },
        (res) => {
          const chunks: Buffer[] = [];
          let size = 0;
          res.on('data', (c: Buffer) => {
            size += c.length;
            if (size > MAX_RESPONSE) req.destroy(new Error(`response larger than ${MAX_RESPONSE} bytes`));
            else chunks.push(c);
          });
          res.on('error', fail);
          res.on('aborted', () => fail(new Error('connection closed mid-response')));
          res.on('end', () => {
            if (settled) return;
            settled = true;
            clearTimeout(timer);
            const h: string[] = [];
            for (let i = 0; i + 1 < res.rawHeaders.length; i += 2) {
              if (res.rawHeaders[i]!.toLowerCase() === 'www-authenticate') h.push(res.rawHeaders[i + 1]!);
            }
            const text = Buffer.concat(chunks).toString('utf8');
            resolve({ status: res.statusCode ?? 0, headers: h, body: text, socket: res.socket });
          });
        },
      );
      const timer = setTimeout(() => {
        timedOut = true;
        req.destroy();
        fail(new Error('timeout'));
      }, timeoutMs);
      req.on('error', fail);
      req.end(data);
    });
  }
}
