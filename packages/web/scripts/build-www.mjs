#!/usr/bin/env node
/**
 * Assembles the static site the server serves (dist/www): public/* as is, and the browser
 * modules tsc compiled to dist/src/**.js as dist/www/js/** (only those whose src/**.ts still
 * exists, so a deleted module's stale output is not shipped; without their source-map
 * comments: maps and sources are not shipped). Fails when a module imports anything but
 * another module of the UI: the browser could not load it, and the contract's types must not
 * bring zod along. Rebuilt from scratch each time. Run by the root `npm run build` after tsc.
 */
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const pkgDir = fileURLToPath(new URL('..', import.meta.url));
const compiled = join(pkgDir, 'dist', 'src');
const out = join(pkgDir, 'dist', 'www');

if (!existsSync(join(compiled, 'main.js'))) {
  console.error(
    `build-www: ${compiled}/main.js does not exist; run tsc first (npx tsc -b tsconfig.build.json)`,
  );
  process.exit(1);
}

function jsFiles(dir, acc = []) {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) jsFiles(p, acc);
    else if (e.name.endsWith('.js')) acc.push(p);
  }
  return acc;
}

rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
cpSync(join(pkgDir, 'public'), out, { recursive: true });
/**
 * Import specifiers that are not relative (a browser cannot load them, and no zod may ride
 * along). tsc emits an import or re-export as `import { a, b } from '…'`, `import '…'` or
 * `export … from '…'` at the start of a line; dynamic imports as `import('…')`.
 */
const IMPORT_RE =
  /^(?:import|export)\s+(?:[\w$*\s{},]*?\s*from\s*)?['"]([^'"]+)['"]|\bimport\(\s*['"]([^'"]+)['"]\s*\)/gm;
const bareImports = (code) =>
  [...code.matchAll(IMPORT_RE)]
    .map((m) => m[1] ?? m[2])
    .filter((s) => !s.startsWith('./') && !s.startsWith('../'));

let count = 0;
const bare = [];
for (const file of jsFiles(compiled)) {
  const rel = relative(compiled, file);
  if (!existsSync(join(pkgDir, 'src', rel.replace(/\.js$/, '.ts')))) continue;
  const code = readFileSync(file, 'utf8');
  for (const spec of bareImports(code)) bare.push(`${rel}: ${spec}`);
  const target = join(out, 'js', rel);
  mkdirSync(dirname(target), { recursive: true });
  writeFileSync(target, code.replace(/\n\/\/# sourceMappingURL=\S+\s*$/, '\n'));
  count++;
}
if (bare.length > 0) {
  console.error(
    `build-www: the browser modules may import only each other (types from @opsplane/api with import type):\n  ${bare.join('\n  ')}`,
  );
  process.exit(1);
}
console.log(`build-www: ${relative(process.cwd(), out) || out} (${count} modules)`);
