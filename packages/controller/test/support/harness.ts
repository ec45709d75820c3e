/** Starting controllers in-process for API tests, and small HTTP helpers. */
import type { EtcdHandle } from '@opsplane/test-support';
import {
  parseControllerConfig,
  startController,
  type ControllerFileConfig,
  type RunningController,
} from '../../src/index.js';

export const SECRET = 'test-secret-0123456789';

let counter = 0;

/**
 * An in-process controller on a free port, registered in `etcd`. Without `api_token` it runs
 * open (`insecure_no_token`), as most API tests want to call it without credentials.
 */
export async function startTestController(
  etcd: EtcdHandle,
  overrides: Partial<ControllerFileConfig> = {},
): Promise<RunningController> {
  const config = parseControllerConfig({
    area: 'area-1',
    id: `ctrl-${process.pid}-${++counter}`,
    listen: '127.0.0.1:0',
    agent_secret: SECRET,
    lease_ttl: '3s',
    refresh_interval: '1s',
    insecure_no_token: overrides.api_token === undefined,
    ...overrides,
    etcd: { endpoints: etcd.endpoints, dial_timeout: '3s', ...overrides.etcd },
  });
  return startController(config, { processMetrics: false });
}

export interface JsonResponse<T = unknown> {
  status: number;
  body: T;
  headers: Headers;
}

export async function getJson<T = unknown>(
  url: string,
  headers: Record<string, string> = {},
): Promise<JsonResponse<T>> {
  const res = await fetch(url, { headers });
  const text = await res.text();
  return { status: res.status, body: (text ? JSON.parse(text) : undefined) as T, headers: res.headers };
}

export async function postJson<T = unknown>(
  url: string,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<JsonResponse<T>> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: (text ? JSON.parse(text) : undefined) as T, headers: res.headers };
}

export interface ErrorBody {
  error: { code: string; message: string };
}
