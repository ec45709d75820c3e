#!/usr/bin/env node
// The `opsplane` command (package.json "bin"): loads the built CLI, dist/src/main.js. This file is
// in git, so `npm ci` links node_modules/.bin/opsplane in a fresh clone before anything is
// built; `npx opsplane …` then works once `npm run build` (or `npm test` / `npm run demo`) ran.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const main = new URL('../dist/src/main.js', import.meta.url);
if (!existsSync(main)) {
  const repo = fileURLToPath(new URL('../../..', import.meta.url));
  console.error(
    `opsplane: the CLI is not built yet (${fileURLToPath(main)} is missing): ` +
      `run npm run build first (in ${repo})`,
  );
  process.exit(1);
}
await import(main.href);
