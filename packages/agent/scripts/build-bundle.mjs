#!/usr/bin/env node
/**
 * Builds the self-contained agent: bundles dist/src/bundle-main.js (compiled by tsc) and every
 * dependency into dist/bundle/agent.mjs, one ESM file a device runs with plain `node`. Run by
 * the root `npm run build` after tsc; packAgentBundle (src/bundle/pack.ts) packs the result.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { build } from 'esbuild';

const pkgDir = fileURLToPath(new URL('..', import.meta.url));
const entry = `${pkgDir}dist/src/bundle-main.js`;
const outfile = `${pkgDir}dist/bundle/agent.mjs`;

if (!existsSync(entry)) {
  console.error(`build-bundle: ${entry} does not exist; run tsc first (npx tsc -b tsconfig.build.json)`);
  process.exit(1);
}
const { version } = JSON.parse(readFileSync(`${pkgDir}package.json`, 'utf8'));

// zod re-exports every message locale (`z.locales`, ~360 kB) though only English is ever used
// (schemas.js registers it by default): the bundle gets a locales index holding just `en`.
const englishOnly = {
  name: 'zod-english-only',
  setup(b) {
    b.onResolve({ filter: /^\.\.\/locales\/index\.js$/ }, (args) =>
      /[\\/]zod[\\/]v4[\\/]/.test(args.importer)
        ? { path: join(dirname(args.importer), '..', 'locales', 'index.js'), namespace: 'zod-locales' }
        : undefined,
    );
    b.onLoad({ filter: /.*/, namespace: 'zod-locales' }, (args) => ({
      contents: `export { default as en } from ${JSON.stringify(join(dirname(args.path), 'en.js'))};`,
      resolveDir: dirname(args.path),
    }));
  },
};

const result = await build({
  entryPoints: [entry],
  outfile,
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  // Smaller to upload to thousands of hosts; names stay, so stack traces in logs still read.
  minifyWhitespace: true,
  minifySyntax: true,
  keepNames: true,
  sourcemap: false,
  plugins: [englishOnly],
  // Dependencies' license headers stay in the file we ship (collected at its end).
  legalComments: 'eof',
  // CommonJS dependencies (pino, prom-client, ws, …) call require() for Node built-ins and
  // optional modules; in an ES module that needs a real require.
  banner: {
    js: "import { createRequire as __opsplaneCreateRequire } from 'node:module';\nconst require = __opsplaneCreateRequire(import.meta.url);",
  },
  // ws loads these native speed-ups with require() inside try/catch and does without them; left
  // external, that require fails on the device and ws falls back to its JavaScript code.
  // @opsplane/pki loads @peculiar/x509 (and its polyfill) only when it signs or parses X.509 with
  // it — never on an agent, which builds its CSRs with node:crypto — so neither is bundled.
  external: ['bufferutil', 'utf-8-validate', '@peculiar/x509', 'reflect-metadata'],
  // Tells src/version.ts it runs bundled, and the version to report when no manifest.json is beside it.
  define: { __OPSPLANE_AGENT_BUILD_VERSION__: JSON.stringify(version) },
  logLevel: 'warning',
});
if (result.errors.length > 0) process.exit(1);
console.log(`build-bundle: ${outfile} (${Math.round(statSync(outfile).size / 1024)} kB)`);
