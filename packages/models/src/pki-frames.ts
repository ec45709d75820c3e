/**
 * Certificate renewal over the agent ↔ controller channel (mutual TLS). An agent whose
 * certificate is in the last third of its life sends `csr` (a PKCS#10 request for a new key it
 * keeps); the controller checks that the request names the agent its TLS certificate
 * authenticated, relays it to the platform (which holds the CA key) and answers with
 * `certificate` — the signed certificate, or an error. The agent writes the new key and
 * certificate and uses them from its next connection on.
 */
import { z } from 'zod';

export const CsrMessageSchema = z.object({
  type: z.literal('csr'),
  id: z.string().min(1).max(64),
  csr: z.string().min(1).max(16_384),
});
export type CsrMessage = z.infer<typeof CsrMessageSchema>;

export const CertificateMessageSchema = z.object({
  type: z.literal('certificate'),
  id: z.string().min(1).max(64),
  /** PEM of the new certificate (when `error` is absent). */
  cert: z.string().optional(),
  /** The CA bundle the agent should trust from now on (after a CA rotation). */
  ca: z.string().optional(),
  error: z.object({ code: z.string(), message: z.string() }).optional(),
});
export type CertificateMessage = z.infer<typeof CertificateMessageSchema>;

/** etcd keys of the platform's PKI and revocations (all below the same root as controllers/). */
export const REVOCATIONS_PREFIX = 'revocations/agents/';
/** `pki/csr/<kind>/<area>/<name>` — a renewal request relayed by a controller, for the platform to sign. */
export const PKI_CSR_PREFIX = 'pki/csr/';
/** `pki/issued/<kind>/<area>/<name>` — the platform's answer to a relayed request. */
export const PKI_ISSUED_PREFIX = 'pki/issued/';
/** `pki/certs/<kind>/<area>/<name>` — the latest certificate issued to an identity (serial, expiry). */
export const PKI_CERTS_PREFIX = 'pki/certs/';

/** Value of `revocations/agents/<code>`. */
export const AgentRevocationSchema = z.object({
  agent_code: z.string(),
  area: z.string().optional(),
  reason: z.string().default(''),
  revoked_at: z.string(),
  revoked_by: z.string().optional(),
});
export type AgentRevocation = z.infer<typeof AgentRevocationSchema>;

/** Value of `pki/csr/…`. */
export const RelayedCsrSchema = z.object({
  csr: z.string(),
  requested_at: z.string(),
  /** The controller that relayed it. */
  via: z.string(),
});
export type RelayedCsr = z.infer<typeof RelayedCsrSchema>;

/** Value of `pki/issued/…`. */
export const IssuedCertSchema = z.object({
  cert: z.string().optional(),
  ca: z.string().optional(),
  error: z.string().optional(),
  issued_at: z.string(),
});
export type IssuedCertValue = z.infer<typeof IssuedCertSchema>;

/** Value of `pki/certs/…`. */
export const CertRecordSchema = z.object({
  kind: z.string(),
  name: z.string(),
  area: z.string(),
  serial: z.string(),
  not_after: z.string(),
  issued_at: z.string(),
  /** `deployment`, `renewal`, `cli`, `demo`. */
  source: z.string(),
});
export type CertRecord = z.infer<typeof CertRecordSchema>;
