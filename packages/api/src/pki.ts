/** Shapes of the PKI endpoints: agent revocations and the certificates the platform issued. */
import { z } from 'zod';

export const RevokeAgentSchema = z
  .object({
    reason: z.string().max(500).default('').describe('why (kept with the revocation and in the audit log)'),
  })
  .strict()
  .meta({ id: 'RevokeAgent' });
export type RevokeAgent = z.infer<typeof RevokeAgentSchema>;

export const RevocationSchema = z
  .object({
    agent_code: z.string(),
    area: z.string().optional().describe("the agent's area when known"),
    reason: z.string(),
    revoked_at: z.string(),
    revoked_by: z.string().optional(),
  })
  .meta({ id: 'Revocation' });
export type Revocation = z.infer<typeof RevocationSchema>;

export const RevocationListResponseSchema = z
  .object({ revocations: z.array(RevocationSchema) })
  .meta({ id: 'RevocationListResponse' });
export type RevocationListResponse = z.infer<typeof RevocationListResponseSchema>;

export const CertificateSchema = z
  .object({
    kind: z.string().describe('agent, controller, server, client'),
    name: z.string().describe('agent code, controller id, …'),
    area: z.string(),
    serial: z.string(),
    not_after: z.string().describe('expiry (RFC 3339)'),
    issued_at: z.string(),
    source: z.string().describe('deployment, renewal, cli, demo'),
  })
  .meta({ id: 'Certificate' });
export type Certificate = z.infer<typeof CertificateSchema>;

export const CertificateListResponseSchema = z
  .object({
    ca: z
      .object({ not_after: z.string(), fingerprint256: z.string() })
      .nullable()
      .describe('the built-in CA, null when the server has none'),
    certificates: z
      .array(CertificateSchema)
      .describe('the latest certificate of each identity, soonest expiry first'),
  })
  .meta({ id: 'CertificateListResponse' });
export type CertificateListResponse = z.infer<typeof CertificateListResponseSchema>;
