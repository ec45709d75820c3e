/**
 * The legacy listener: off unless `legacy_listen` is set. The Go ControllerClient cannot send
 * an API token, so against a controller with `api_token` every Go call is a 401. This second
 * listener, bound to one private interface (config.ts refuses wildcards and public addresses),
 * serves the guide's routes (/api/v1/status, /agents…, batches) without the token — optionally
 * only to the sources in `legacy_allow` — and nothing else: no agent WebSocket, docs, /metrics
 * or /healthz. It shares everything else with the main listener (agents, peers, batches).
 * Starting it is logged as a warning, every time.
 */
import type { Logger } from '@opsplane/kit';
import type { ListenAddress } from '../config.js';
import type { ControllerContext } from '../context.js';
import { buildApp } from './app.js';

export interface LegacyListener {
  /** e.g. `http://10.0.0.5:8081` */
  readonly url: string;
  close(): Promise<void>;
}

export async function startLegacyListener(
  ctx: ControllerContext,
  legacy: { listen: ListenAddress; allow: readonly string[] },
  log: Logger,
): Promise<LegacyListener> {
  const app = await buildApp(ctx, log, { legacy: { allow: legacy.allow } });
  await app.listen({ host: legacy.listen.host, port: legacy.listen.port });
  const bound = app.server.address();
  const port = typeof bound === 'object' && bound ? bound.port : legacy.listen.port;
  const host = legacy.listen.host.includes(':') ? `[${legacy.listen.host}]` : legacy.listen.host;
  const url = `http://${host}:${port}`;
  log.warn(
    {
      url,
      allow: legacy.allow.length ? legacy.allow : 'any source',
      api_token_required_elsewhere: ctx.config.apiToken !== undefined,
    },
    `LEGACY LISTENER ON ${url}: the guide's routes WITHOUT the API token` +
      (legacy.allow.length ? ` for ${legacy.allow.join(', ')}` : ' for ANY source that reaches it') +
      ' — for token-less Go clients; keep it on a private interface and remove legacy_listen once they migrate',
  );
  return { url, close: () => app.close() };
}
