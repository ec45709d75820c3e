/**
 * Validation of controller → agent frames. Every frame is checked against the models' zod
 * schemas. One deliberate leniency: a `configs` request whose only fault is a bad file_name is
 * passed on, so the config writer can refuse it as a per-package `invalid_file_name` result
 * (what a batch caller wants to see) instead of a bare protocol error.
 */
import {
  CertificateMessageSchema,
  formatIssues,
  RequestMessageSchema,
  WelcomeMessageSchema,
  type AgentRequest,
  type CertificateMessage,
} from '@opsplane/models';
import { z } from 'zod';

export type WelcomeMessage = z.infer<typeof WelcomeMessageSchema>;

const LenientConfigsRequestSchema = z.object({
  type: z.literal('request'),
  id: z.string(),
  timeout_ms: z.number().int().positive().optional(),
  request: z.object({
    op: z.literal('configs'),
    package: z.string(),
    configs: z.array(z.object({ file_name: z.string(), content: z.string() })),
    config_file: z.string().optional(),
  }),
});

export type ParsedFrame =
  | { kind: 'welcome'; welcome: WelcomeMessage }
  | { kind: 'request'; id: string; timeoutMs: number | undefined; request: AgentRequest }
  | { kind: 'certificate'; certificate: CertificateMessage }
  | { kind: 'invalid'; id: string | undefined; message: string };

function frameId(json: unknown): string | undefined {
  return json && typeof json === 'object' && 'id' in json && typeof json.id === 'string'
    ? json.id
    : undefined;
}

export function parseControllerFrame(text: string): ParsedFrame {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return { kind: 'invalid', id: undefined, message: 'frame is not JSON' };
  }
  const type = json && typeof json === 'object' && 'type' in json ? json.type : undefined;
  if (type === 'welcome') {
    const w = WelcomeMessageSchema.safeParse(json);
    return w.success
      ? { kind: 'welcome', welcome: w.data }
      : { kind: 'invalid', id: undefined, message: `invalid welcome: ${formatIssues(w.error.issues)}` };
  }
  if (type === 'certificate') {
    const c = CertificateMessageSchema.safeParse(json);
    return c.success
      ? { kind: 'certificate', certificate: c.data }
      : {
          kind: 'invalid',
          id: undefined,
          message: `invalid certificate frame: ${formatIssues(c.error.issues)}`,
        };
  }
  if (type === 'request') {
    const r = RequestMessageSchema.safeParse(json);
    if (r.success)
      return { kind: 'request', id: r.data.id, timeoutMs: r.data.timeout_ms, request: r.data.request };
    const lenient = LenientConfigsRequestSchema.safeParse(json);
    const onlyFileNames = r.error.issues.every((i) => i.path.includes('file_name'));
    if (lenient.success && onlyFileNames) {
      // Same shape as AgentRequest's configs op; the names get re-validated before any write.
      const request: AgentRequest = lenient.data.request;
      return { kind: 'request', id: lenient.data.id, timeoutMs: lenient.data.timeout_ms, request };
    }
    return {
      kind: 'invalid',
      id: frameId(json),
      message: `invalid request: ${formatIssues(r.error.issues)}`,
    };
  }
  return {
    kind: 'invalid',
    id: frameId(json),
    message: `unexpected frame type ${JSON.stringify(type)} (expected welcome, request or certificate)`,
  };
}
