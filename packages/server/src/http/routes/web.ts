/**
 * Serves the web UI (@opsplane/web's static site: `dist/www`) at `/` and its files under `/ui/`.
 * The files hold no data — the UI fetches everything from /api/v1 with the user's session — so
 * they are public. Strict headers: a CSP that allows only this origin's scripts, styles and API
 * (no inline code), no framing, no sniffing. Paths are resolved inside the root only.
 */
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { dirname, extname, join, normalize, sep } from 'node:path';
import type { FastifyPluginAsync, FastifyReply } from 'fastify';
import type { RouteOptions } from '../context.js';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json',
  '.map': 'application/json',
};

const SECURITY_HEADERS = {
  'content-security-policy':
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
};

/** The UI's static root: server.web_root, else the installed @opsplane/web package's build. */
export function defaultWebRoot(): string | undefined {
  try {
    const pkg = createRequire(import.meta.url).resolve('@opsplane/web/package.json');
    const root = join(dirname(pkg), 'dist', 'www');
    return existsSync(join(root, 'index.html')) ? root : undefined;
  } catch {
    return undefined;
  }
}

async function sendFile(reply: FastifyReply, root: string, rel: string): Promise<FastifyReply> {
  const path = normalize(join(root, rel));
  if (path !== root && !path.startsWith(root + sep))
    return reply.code(404).send({ error: { code: 'not_found', message: 'not found' } });
  const st = await stat(path).catch(() => undefined);
  if (!st?.isFile())
    return reply.code(404).send({ error: { code: 'not_found', message: `no UI file ${rel}` } });
  const type = TYPES[extname(path)] ?? 'application/octet-stream';
  // index.html names the other files: always revalidated; the rest for a short while.
  const cache = extname(path) === '.html' ? 'no-cache' : 'public, max-age=300';
  return reply
    .headers({ ...SECURITY_HEADERS, 'content-type': type, 'cache-control': cache })
    .send(await readFile(path));
}

export const webRoutes: FastifyPluginAsync<RouteOptions> = async (app, { ctx }) => {
  const root = ctx.config.server.web_root ?? defaultWebRoot();
  const hidden = { config: { access: 'public' as const }, schema: { hide: true } };
  if (!root) {
    ctx.logger.warn('web UI not found (npm run build builds packages/web); / says so');
    app.get('/', hidden, async (_req, reply) =>
      reply.code(404).send({
        error: {
          code: 'ui_not_built',
          message: 'the web UI is not built here; the API is at /api/v1, its docs at /docs',
        },
      }),
    );
    return;
  }
  const base = normalize(root);
  app.get('/', hidden, async (_req, reply) => sendFile(reply, base, 'index.html'));
  app.get('/ui/*', hidden, async (req, reply) => {
    const rel = (req.params as { '*': string })['*'];
    if (rel.includes('\0'))
      return reply.code(400).send({ error: { code: 'bad_request', message: 'bad path' } });
    return sendFile(reply, base, rel);
  });
};
