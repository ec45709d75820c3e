#!/usr/bin/env node
/**
 * Assembles the static site the server serves (dist/www): public/* as is, uPlot's stylesheet as
 * ui/vendor/uplot.min.css, and one browser bundle, js/main.js, built by esbuild from the modules
 * tsc compiled to dist/src/** (so what ships is what was type-checked). Besides the UI's own
 * modules the bundle may contain only the browser libraries the UI uses — uPlot (charts), yaml
 * (validating config files in the editor) and diff (the config push diff): the build fails on
 * anything else, so neither the contract's zod nor another @opsplane package can ride along (the
 * UI imports their types only). No source maps are shipped. Rebuilt from scratch each time. Run
 * by the root `npm run build` after tsc.
 */
import { cpSync, existsSync, mkdirSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const pkgDir = fileURLToPath(new URL('..', import.meta.url));
const compiled = join(pkgDir, 'dist', 'src');
const out = join(pkgDir, 'dist', 'www');
const entry = join(compiled, 'main.js');

/** The libraries the bundle may contain (besides the UI's own modules). */
const ALLOWED_PACKAGES = ['uplot', 'yaml', 'diff'];

if (!existsSync(entry)) {
  console.error(`build-www: ${entry} does not exist; run tsc first (npx tsc -b tsconfig.build.json)`);
  process.exit(1);
}

rmSync(out, { recursive: true, force: true });
mkdirSync(join(out, 'vendor'), { recursive: true });
cpSync(join(pkgDir, 'public'), out, { recursive: true });
const require = createRequire(import.meta.url);
const uplotDir = dirname(require.resolve('uplot/package.json'));
cpSync(join(uplotDir, 'dist', 'uPlot.min.css'), join(out, 'vendor', 'uplot.min.css'));

const result = await build({
  entryPoints: [entry],
  outfile: join(out, 'js', 'main.js'),
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: ['es2022'],
  minify: true,
  legalComments: 'eof',
  metafile: true,
  logLevel: 'warning',
});

const foreign = [];
for (const input of Object.keys(result.metafile.inputs)) {
  const abs = join(process.cwd(), input);
  if (abs.startsWith(compiled + sep)) continue;
  const m = /node_modules[\\/]((?:@[^\\/]+[\\/])?[^\\/]+)/.exec(input);
  if (m && ALLOWED_PACKAGES.includes(m[1])) continue;
  foreign.push(input);
}
if (foreign.length > 0) {
  console.error(
    `build-www: the bundle may hold only the UI's modules and ${ALLOWED_PACKAGES.join(', ')} (types from @opsplane/api with import type):\n  ${foreign.join('\n  ')}`,
  );
  process.exit(1);
}
const bytes = result.metafile.outputs[relative(process.cwd(), join(out, 'js', 'main.js'))]?.bytes ?? 0;
console.log(
  `build-www: ${relative(process.cwd(), out) || out} (${Object.keys(result.metafile.inputs).length} modules, ${Math.round(bytes / 1024)} kB)`,
);
