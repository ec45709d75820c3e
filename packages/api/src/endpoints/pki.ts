/**
 * Endpoints of the PKI: revoking an agent's identity (published in etcd, enforced by every
 * controller within seconds), the list of revocations, reinstating, and the certificates the
 * platform issued with their expiry.
 */
import { z } from 'zod';
import { withErrors } from '../common.js';
import { endpoint } from '../endpoint.js';
import { AgentCodeParamsSchema } from '../platform.js';
import {
  CertificateListResponseSchema,
  RevocationListResponseSchema,
  RevocationSchema,
  RevokeAgentSchema,
} from '../pki.js';

export const revocationEndpoints = {
  revoke: endpoint({
    method: 'POST',
    path: '/agents/:code/revoke',
    access: 'admin',
    action: 'agent.revoke',
    summary: "Revoke an agent's identity: its controller disconnects it and every controller refuses it",
    description:
      'Published in etcd (revocations/agents/<code>) and watched by every controller: the agent is ' +
      'disconnected within seconds and refused at every reconnection, whether it authenticates by ' +
      'certificate or by token; the platform no longer renews its certificate. Idempotent.',
    tags: ['pki'],
    params: AgentCodeParamsSchema,
    body: RevokeAgentSchema,
    response: { 200: RevocationSchema, ...withErrors(503) },
  }),
  list: endpoint({
    method: 'GET',
    path: '/revocations',
    access: 'viewer',
    summary: 'Revoked agents, newest first',
    tags: ['pki'],
    response: { 200: RevocationListResponseSchema, ...withErrors(503) },
  }),
  reinstate: endpoint({
    method: 'DELETE',
    path: '/revocations/agents/:code',
    access: 'admin',
    action: 'agent.reinstate',
    summary: 'Lift a revocation (the agent then needs a valid certificate or token: redeploy it)',
    tags: ['pki'],
    params: AgentCodeParamsSchema,
    response: { 204: z.null(), ...withErrors(404, 503) },
  }),
} as const;

export const certificateEndpoints = {
  list: endpoint({
    method: 'GET',
    path: '/certificates',
    access: 'viewer',
    summary: 'Certificates the platform issued (latest per identity) and the CA, with expiry',
    tags: ['pki'],
    response: { 200: CertificateListResponseSchema, ...withErrors(503) },
  }),
} as const;
