/**
 * Who an HTTP request from an agent is: the one check behind the agent WebSocket upgrade and
 * the agents' artifact downloads, so both accept and refuse exactly the same agents.
 *
 * Agents authenticate by HMAC token (`authorization: Bearer` with the agent-code and area
 * headers), by client certificate (mutual TLS: a certificate of the built-in CA whose identity
 * URI names an agent of this area), or either — `agents.auth`. A code the platform revoked is
 * refused with 403 `revoked`.
 */
import type { IncomingMessage } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { identityFromSubjectAltName, type CertIdentity } from '@opsplane/pki';
import { AGENT_AREA_HEADER, AGENT_CODE_HEADER, AgentCodeSchema, verifyAgentToken } from '@opsplane/models';

export type AgentAuthMode = 'token' | 'mtls' | 'mtls_or_token';

export interface AgentAuthOptions {
  area: string;
  /** Token secrets: the current one and any previous one still accepted during a rotation. */
  agentSecrets: readonly string[];
  /** How agents authenticate (default `token`). */
  auth?: AgentAuthMode;
  /** Whether the platform revoked this agent code. */
  isRevoked?: (code: string) => boolean;
}

export type AgentAuthResult =
  | { ok: true; code: string; method: 'mtls' | 'token' }
  | {
      ok: false;
      status: 401 | 403;
      code: 'unauthorized' | 'revoked';
      why: string;
      /** The agent code the request claimed (for logs), if any. */
      claimed: string | undefined;
    };

function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/**
 * The identity of a client certificate on this connection: undefined when none was presented
 * (or not over TLS), `{error}` when one was presented but does not chain to the CA bundle.
 */
function peerIdentity(req: IncomingMessage): CertIdentity | { error: string } | undefined {
  const sock = req.socket as Partial<TLSSocket>;
  if (typeof sock.getPeerCertificate !== 'function') return undefined;
  const peer = sock.getPeerCertificate();
  if (!peer || Object.keys(peer).length === 0) return undefined;
  if (!sock.authorized) {
    return { error: `client certificate not trusted: ${String(sock.authorizationError ?? 'unknown CA')}` };
  }
  return (
    identityFromSubjectAltName(peer.subjectaltname) ?? {
      error: 'client certificate names no Opsplane identity',
    }
  );
}

export function authenticateAgent(req: IncomingMessage, opts: AgentAuthOptions): AgentAuthResult {
  const headerCode = header(req, AGENT_CODE_HEADER);
  const area = header(req, AGENT_AREA_HEADER);
  const auth = header(req, 'authorization');
  const token = auth?.startsWith('Bearer ') ? auth.slice(7).trim() : undefined;
  const deny = (why: string): AgentAuthResult => ({
    ok: false,
    status: 401,
    code: 'unauthorized',
    why,
    claimed: headerCode,
  });
  const mode = opts.auth ?? 'token';
  const presented = mode === 'token' ? undefined : peerIdentity(req);
  // With mtls_or_token an untrusted certificate (expired, say) may still come with a valid token.
  if (presented && 'error' in presented && mode === 'mtls') return deny(presented.error);
  const cert = presented && !('error' in presented) ? presented : undefined;
  let code: string;
  let method: 'mtls' | 'token';
  if (cert) {
    if (cert.kind !== 'agent') return deny(`the client certificate is a ${cert.kind}'s, not an agent's`);
    if (cert.area !== opts.area)
      return deny(`the client certificate is for area '${cert.area}', this controller serves '${opts.area}'`);
    if (headerCode !== undefined && headerCode !== cert.name)
      return deny(`${AGENT_CODE_HEADER} '${headerCode}' differs from the certificate's agent '${cert.name}'`);
    code = cert.name;
    method = 'mtls';
  } else {
    if (mode === 'mtls') return deny('this controller requires a client certificate (mutual TLS)');
    if (presented && 'error' in presented && !token) return deny(presented.error);
    if (!headerCode || !AgentCodeSchema.safeParse(headerCode).success)
      return deny(`missing or invalid ${AGENT_CODE_HEADER} header`);
    if (area !== opts.area) return deny(`this controller serves area '${opts.area}', not '${area ?? ''}'`);
    if (!token || !opts.agentSecrets.some((s) => verifyAgentToken(s, opts.area, headerCode, token))) {
      return deny('invalid agent token');
    }
    code = headerCode;
    method = 'token';
  }
  if (opts.isRevoked?.(code)) {
    return {
      ok: false,
      status: 403,
      code: 'revoked',
      why: `agent '${code}' has been revoked by the platform`,
      claimed: code,
    };
  }
  return { ok: true, code, method };
}
