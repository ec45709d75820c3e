#!/usr/bin/env node
// Sample package "collector": tails a log file and counts its lines, as a log shipper would.
//
// Config: $OPSPLANE_CONFIG_DIR/collector.yaml (flat `key: value` lines, or one JSON object: JSON
// is YAML too), read at start — a new config takes effect when the agent restarts the package,
// which a config push does. It also re-reads (tails) the file every interval and records what it
// saw in the state file, so a test can tell which config is on disk as the program sees it.
//   path: ../web/access.log    # file to tail; relative to the package dir (may not exist yet)
//   interval: 1s               # how often to look for new lines (ms, or 500ms / 2s / 1m)
//   label: demo                # copied into the state file
//   exit_code: 3               # optional: exit with this code right after start (a crasher)
//
// Every interval it writes <package dir>/collector-state.json
//   {"pid","path","label","lines_total","lines_last","updated_at","interval_ms","reads","config"}
// which check.mjs (the exec health check) reads: healthy while it is fresh.
// No dependencies beyond node.
import { closeSync, openSync, readFileSync, readSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';

const packageDir = process.env.OPSPLANE_PACKAGE_DIR ?? process.cwd();
const configDir = process.env.OPSPLANE_CONFIG_DIR ?? join(packageDir, 'config');
const configFile = join(configDir, 'collector.yaml');
const stateFile = join(packageDir, 'collector-state.json');

// Test fleets only (@opsplane/fleet with `guard`): leave with the process that started the
// fleet, and leave a pid file for its cleanup.
const owner = Number(process.env.FLEET_OWNER_PID);
if (owner > 0) {
  setInterval(() => {
    try {
      process.kill(owner, 0);
    } catch (e) {
      if (e.code === 'ESRCH') process.exit(0);
    }
  }, 1000).unref();
}
if (process.env.FLEET_PID_DIR) {
  try {
    writeFileSync(join(process.env.FLEET_PID_DIR, String(process.pid)), packageDir);
  } catch {
    /* best effort */
  }
}

/** The YAML the sample configs use: flat `key: value` lines with # comments, or one JSON object. */
function parseConfig(text) {
  if (text.trim().startsWith('{')) return JSON.parse(text);
  const out = {};
  for (const raw of text.split('\n')) {
    const line = raw.replace(/(^|\s)#.*$/, '').trim();
    if (!line) continue;
    const m = /^([A-Za-z_][\w.-]*)\s*:\s*(.*)$/.exec(line);
    if (!m) throw new Error(`cannot parse line: ${raw}`);
    let v = m[2].trim();
    if (/^(['"]).*\1$/.test(v)) v = v.slice(1, -1);
    else if (v === 'true' || v === 'false') v = v === 'true';
    else if (/^-?\d+(\.\d+)?$/.test(v)) v = Number(v);
    out[m[1]] = v;
  }
  return out;
}

function durationMs(v, fallback) {
  if (typeof v === 'number') return v;
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(String(v ?? '').trim());
  if (!m) return fallback;
  return Number(m[1]) * { ms: 1, s: 1000, m: 60_000 }[m[2] ?? 'ms'];
}

let config = {};
try {
  config = parseConfig(readFileSync(configFile, 'utf8'));
} catch (e) {
  if (e.code !== 'ENOENT') {
    console.error(`collector: bad config ${configFile}: ${e.message}`);
    process.exit(2);
  }
}
if (typeof config.exit_code === 'number') {
  console.error(`collector: config says exit_code ${config.exit_code}; exiting`);
  process.exit(config.exit_code);
}
const rel = String(config.path ?? '../web/access.log');
const path = isAbsolute(rel) ? rel : resolve(packageDir, rel);
const intervalMs = Math.max(100, durationMs(config.interval, 1000));
const label = String(config.label ?? '');

let offset;
let pending = '';
let total = 0;
let lastLogged = 0;
let reads = 0;

/** The config file as it is on disk now (tailed; the settings above stay those read at start). */
function currentConfig() {
  reads++;
  try {
    return parseConfig(readFileSync(configFile, 'utf8'));
  } catch (e) {
    return { error: e.message };
  }
}

function readNew() {
  const st = statSync(path, { throwIfNoEntry: false });
  if (!st) return 0;
  if (offset === undefined) offset = st.size; // tail: start at the end, like `tail -f`
  if (st.size < offset) offset = 0; // truncated or rotated: start over
  if (st.size === offset) return 0;
  const fd = openSync(path, 'r');
  try {
    const buf = Buffer.alloc(Math.min(st.size - offset, 4 * 1024 * 1024));
    const n = readSync(fd, buf, 0, buf.length, offset);
    offset += n;
    const text = pending + buf.subarray(0, n).toString('utf8');
    const lines = text.split('\n');
    pending = lines.pop() ?? '';
    return lines.length;
  } finally {
    closeSync(fd);
  }
}

function tick() {
  let n = 0;
  try {
    n = readNew();
  } catch (e) {
    console.error(`collector: cannot read ${path}: ${e.message}`);
  }
  total += n;
  const state = {
    pid: process.pid,
    path,
    label,
    lines_total: total,
    lines_last: n,
    interval_ms: intervalMs,
    updated_at: new Date().toISOString(),
    reads,
    config: currentConfig(),
  };
  try {
    writeFileSync(stateFile + '.tmp', JSON.stringify(state) + '\n');
    renameSync(stateFile + '.tmp', stateFile);
  } catch (e) {
    console.error(`collector: cannot write ${stateFile}: ${e.message}`);
  }
  if (Date.now() - lastLogged >= 30_000) {
    lastLogged = Date.now();
    console.log(`collector: ${total} lines from ${path} so far`);
  }
}

console.log(`collector: tailing ${path} every ${intervalMs} ms${label ? ` (label ${label})` : ''}`);
tick();
const timer = setInterval(tick, intervalMs);

const stop = (signal) => {
  clearInterval(timer);
  console.log(`collector: ${signal}, stopping after ${total} lines`);
  process.exit(0);
};
process.on('SIGTERM', () => stop('SIGTERM'));
process.on('SIGINT', () => stop('SIGINT'));
