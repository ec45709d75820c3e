#!/usr/bin/env node
// Health check of the sample "collector" (an `exec` check: exit 0 = healthy). Healthy while the
// collector's state file was rewritten within three of its intervals (at least 3 s).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const packageDir = process.env.OPSPLANE_PACKAGE_DIR ?? process.cwd();
try {
  const state = JSON.parse(readFileSync(join(packageDir, 'collector-state.json'), 'utf8'));
  const age = Date.now() - Date.parse(state.updated_at);
  const limit = Math.max(3000, 3 * Number(state.interval_ms || 1000));
  if (!(age <= limit)) {
    console.log(`stale: last update ${Math.round(age / 1000)} s ago (limit ${limit / 1000} s)`);
    process.exit(1);
  }
  console.log(`ok: ${state.lines_total} lines, updated ${age} ms ago`);
} catch (e) {
  console.log(`no state yet: ${e.message}`);
  process.exit(1);
}
