/**
 * Endpoints of distribution: artifacts (upload, list, content with Range, delete, the signing
 * keys agents pin), policies (desired state by area and label selector, revisions, the agents
 * following one) and policy rollouts (waves, pause/resume/cancel, live events).
 *
 * Policy rollouts live under /policy-rollouts: /rollouts is the agent-deployment rollout.
 */
import { z } from 'zod';
import { ErrorBodySchema, IdParamsSchema, commonErrors, withErrors } from '../common.js';
import {
  ArtifactKeysResponseSchema,
  ArtifactListQuerySchema,
  ArtifactListResponseSchema,
  ArtifactParamsSchema,
  ArtifactSchema,
  ArtifactUploadQuerySchema,
  PolicyAgentListSchema,
  PolicyCreateSchema,
  PolicyListResponseSchema,
  PolicyRevisionListSchema,
  PolicyRolloutCreateSchema,
  PolicyRolloutListQuerySchema,
  PolicyRolloutListResponseSchema,
  PolicyRolloutSchema,
  PolicySchema,
  PolicyUpdateSchema,
} from '../distribution.js';
import { endpoint } from '../endpoint.js';

export const artifactEndpoints = {
  list: endpoint({
    method: 'GET',
    path: '/artifacts',
    access: 'viewer',
    summary: 'List artifacts (packages and agent bundles), newest first; filter by kind, name, version',
    tags: ['distribution'],
    querystring: ArtifactListQuerySchema,
    response: { 200: ArtifactListResponseSchema, ...commonErrors },
  }),
  upload: endpoint({
    method: 'POST',
    path: '/artifacts',
    access: 'operator',
    action: 'artifact.upload',
    summary: 'Upload an artifact: the raw tar.gz as the body (?kind=package|agent)',
    description:
      'A package artifact has package.yaml at its top (name, version, optional os/arch, command, health check, ' +
      'config files); an agent artifact is an agent bundle. It is stored content-addressed (sha256) in the ' +
      "server's database and signed with the server's ed25519 key — or, with ?signature=&key_id=, kept with " +
      'the signature of a key in artifacts.trusted_keys (verified first). The same bytes again answer 200; ' +
      'other bytes under a stored kind/name/version/os/arch are 409 artifact_version_exists. A bad archive or ' +
      'manifest is 400 (artifact_invalid, artifact_manifest_invalid), a bad signature 400 ' +
      '(artifact_bad_signature, artifact_untrusted_key), too large 413 artifact_too_large.',
    tags: ['distribution'],
    querystring: ArtifactUploadQuerySchema,
    consumes: ['application/gzip', 'application/octet-stream'],
    response: { 201: ArtifactSchema, 200: ArtifactSchema, ...withErrors(409, 413) },
  }),
  keys: endpoint({
    method: 'GET',
    path: '/artifacts/keys',
    access: 'viewer',
    summary:
      "The public keys artifacts are signed with ('ed25519:<base64>'): what agents pin in artifact_keys",
    tags: ['distribution'],
    response: { 200: ArtifactKeysResponseSchema, ...commonErrors },
  }),
  get: endpoint({
    method: 'GET',
    path: '/artifacts/:sha256',
    access: 'viewer',
    summary: 'One artifact (its signed ref and metadata)',
    tags: ['distribution'],
    params: ArtifactParamsSchema,
    response: { 200: ArtifactSchema, ...withErrors(404) },
  }),
  content: endpoint({
    method: 'GET',
    path: '/artifacts/:sha256/content',
    access: 'viewer',
    summary: 'The bytes of an artifact (application/gzip); a Range header gives part of them (206)',
    tags: ['distribution'],
    params: ArtifactParamsSchema,
    produces: 'application/gzip',
    response: {
      200: z.string().describe('application/gzip: the artifact'),
      206: z.string().describe('the requested range'),
      416: ErrorBodySchema,
      ...withErrors(404),
    },
  }),
  delete: endpoint({
    method: 'DELETE',
    path: '/artifacts/:sha256',
    access: 'operator',
    action: 'artifact.delete',
    summary: 'Delete an artifact (409 artifact_in_use while a revision of a policy names it)',
    tags: ['distribution'],
    params: ArtifactParamsSchema,
    response: { 204: z.null(), ...withErrors(404, 409) },
  }),
} as const;

export const policyEndpoints = {
  list: endpoint({
    method: 'GET',
    path: '/policies',
    access: 'viewer',
    summary: 'List policies, highest priority first',
    tags: ['distribution'],
    response: { 200: PolicyListResponseSchema, ...commonErrors },
  }),
  create: endpoint({
    method: 'POST',
    path: '/policies',
    access: 'operator',
    scope: 'area',
    action: 'policy.create',
    summary: 'Create a policy: packages (and an agent version) for agents by area and label selector',
    description:
      'An agent follows only the highest-priority policy matching it (areas: empty = all; selector on agent ' +
      'labels). The policy starts at revision 1; unless staged, it is applied at once: every matching agent ' +
      '(and every new one on first connect) converges on it. Every package version (and agent_version) must ' +
      'have an artifact (422 artifact_not_found). Needs the operator role in every area it names (all areas ' +
      'when it names none).',
    tags: ['distribution'],
    body: PolicyCreateSchema,
    response: { 201: PolicySchema, ...withErrors(409, 422) },
  }),
  get: endpoint({
    method: 'GET',
    path: '/policies/:id',
    access: 'viewer',
    summary: 'One policy (its latest revision)',
    tags: ['distribution'],
    params: IdParamsSchema,
    response: { 200: PolicySchema, ...withErrors(404) },
  }),
  update: endpoint({
    method: 'PATCH',
    path: '/policies/:id',
    access: 'operator',
    scope: 'area',
    action: 'policy.update',
    summary: 'Change a policy: a new revision (applied at once unless staged; then roll it out)',
    description:
      'A change that is not staged while a rollout of the policy runs is 409 rollout_active. A change that ' +
      'changes nothing makes no revision.',
    tags: ['distribution'],
    params: IdParamsSchema,
    body: PolicyUpdateSchema,
    response: { 200: PolicySchema, ...withErrors(404, 409, 422) },
  }),
  delete: endpoint({
    method: 'DELETE',
    path: '/policies/:id',
    access: 'operator',
    scope: 'area',
    action: 'policy.delete',
    summary: 'Delete a policy (agents keep running what they run; 409 while a rollout of it runs)',
    tags: ['distribution'],
    params: IdParamsSchema,
    response: { 204: z.null(), ...withErrors(404, 409) },
  }),
  revisions: endpoint({
    method: 'GET',
    path: '/policies/:id/revisions',
    access: 'viewer',
    summary: 'Every revision of a policy, newest first',
    tags: ['distribution'],
    params: IdParamsSchema,
    response: { 200: PolicyRevisionListSchema, ...withErrors(404) },
  }),
  agents: endpoint({
    method: 'GET',
    path: '/policies/:id/agents',
    access: 'viewer',
    summary: 'The agents following a policy: area, controller, assigned and target revision, reported status',
    tags: ['distribution'],
    params: IdParamsSchema,
    response: { 200: PolicyAgentListSchema, ...withErrors(404) },
  }),
} as const;

export const policyRolloutEndpoints = {
  create: endpoint({
    method: 'POST',
    path: '/policy-rollouts',
    access: 'operator',
    scope: 'area',
    action: 'policy_rollout.create',
    summary: 'Roll a policy revision out in waves (batch_size or batch_percent agents each)',
    description:
      'The agents the policy matches now are split in waves. Each wave: the revision is assigned and pushed, ' +
      'then the rollout waits until every agent of the wave reports applied or failed for it (no report ' +
      'within wave_timeout_ms counts as failed), then pauses pause_ms. More than max_failures failures halt ' +
      'it and every touched agent is rolled back to its previous revision. When every wave is done the ' +
      "revision becomes the policy's applied_revision. One running rollout per policy (409 rollout_active).",
    tags: ['distribution'],
    body: PolicyRolloutCreateSchema,
    response: { 202: PolicyRolloutSchema, ...withErrors(404, 409) },
  }),
  list: endpoint({
    method: 'GET',
    path: '/policy-rollouts',
    access: 'viewer',
    summary: 'List policy rollouts, newest first (without per-agent results)',
    tags: ['distribution'],
    querystring: PolicyRolloutListQuerySchema,
    response: { 200: PolicyRolloutListResponseSchema, ...commonErrors },
  }),
  get: endpoint({
    method: 'GET',
    path: '/policy-rollouts/:id',
    access: 'viewer',
    summary: 'One policy rollout: waves, counts and every agent',
    tags: ['distribution'],
    params: IdParamsSchema,
    response: { 200: PolicyRolloutSchema, ...withErrors(404) },
  }),
  pause: endpoint({
    method: 'POST',
    path: '/policy-rollouts/:id/pause',
    access: 'operator',
    scope: 'area',
    action: 'policy_rollout.pause',
    summary: 'Pause a running rollout (the current wave finishes; no next wave starts)',
    tags: ['distribution'],
    params: IdParamsSchema,
    response: { 200: PolicyRolloutSchema, ...withErrors(404, 409) },
  }),
  resume: endpoint({
    method: 'POST',
    path: '/policy-rollouts/:id/resume',
    access: 'operator',
    scope: 'area',
    action: 'policy_rollout.resume',
    summary: 'Resume a paused rollout',
    tags: ['distribution'],
    params: IdParamsSchema,
    response: { 200: PolicyRolloutSchema, ...withErrors(404, 409) },
  }),
  cancel: endpoint({
    method: 'POST',
    path: '/policy-rollouts/:id/cancel',
    access: 'operator',
    scope: 'area',
    action: 'policy_rollout.cancel',
    summary: 'Cancel a rollout: no further wave; the agents it touched go back to their previous revision',
    tags: ['distribution'],
    params: IdParamsSchema,
    response: { 200: PolicyRolloutSchema, ...withErrors(404, 409) },
  }),
  events: endpoint({
    method: 'GET',
    path: '/policy-rollouts/:id/events',
    access: 'viewer',
    summary: 'Follow a policy rollout live (Server-Sent Events)',
    description:
      '`event: rollout` (the rollout without agents; first, and on every change), `event: agent` (one ' +
      "agent's result when it changes), `event: end` (the finished rollout with agents; then the stream closes).",
    tags: ['distribution'],
    params: IdParamsSchema,
    produces: 'text/event-stream',
    response: {
      200: z.string().describe('text/event-stream: `rollout`, `agent` and `end` events (see above)'),
      ...withErrors(404, 503),
    },
  }),
} as const;
