#!/usr/bin/env node
// Sample package "web": a small HTTP service, as an agent would supervise it.
//
//   GET /health  200 {"status":"ok","healthy":true,"pid","config"} — 503 while the config says
//                `healthy: false`
//   GET /        200 {"package","pid","message","started_at","requests","healthy","config"}
//
// Config: $OPSPLANE_CONFIG_DIR/web.yaml (flat `key: value` lines, or one JSON object: JSON is
// YAML too), read once at start — a new config takes effect when the agent restarts the
// package, which a config push does.
//   port: 8090                 # WEB_PORT in the environment wins (the fleet sets it per agent)
//   message: hello             # shown on GET /
//   healthy: true              # false → /health answers 503 (try pushing it: the agent rolls back)
//   access_log: access.log     # one line per request; relative to the package dir
//   stop_delay: 3000           # ms to take over a stop (SIGTERM), like a service draining
//
// Every start appends `<time> <pid>` to starts.log in the package dir: how many times it was
// started is a fact a test (or an operator) can read, whatever anyone reports.
//
// No dependencies beyond node.
import { appendFileSync, readFileSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { isAbsolute, join, resolve } from 'node:path';

const packageDir = process.env.OPSPLANE_PACKAGE_DIR ?? process.cwd();
const configDir = process.env.OPSPLANE_CONFIG_DIR ?? join(packageDir, 'config');
const configFile = join(configDir, 'web.yaml');

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

let config = {};
try {
  config = parseConfig(readFileSync(configFile, 'utf8'));
} catch (e) {
  if (e.code !== 'ENOENT') {
    console.error(`web: bad config ${configFile}: ${e.message}`);
    process.exit(2);
  }
}
const port = Number(process.env.WEB_PORT || config.port || 8090);
const message = String(config.message ?? 'hello from the web sample package');
const healthy = config.healthy !== false;
const accessLog = config.access_log
  ? isAbsolute(String(config.access_log))
    ? String(config.access_log)
    : resolve(packageDir, String(config.access_log))
  : undefined;
const startedAt = new Date().toISOString();
const stopDelayMs = Math.max(0, Number(config.stop_delay ?? 0));
let requests = 0;
try {
  appendFileSync(join(packageDir, 'starts.log'), `${startedAt} ${process.pid}\n`);
} catch {
  /* best effort */
}

function logAccess(line) {
  if (!accessLog) return;
  try {
    // Keep the sample tidy: start over beyond 1 MiB (the collector notices the truncation).
    if (statSync(accessLog, { throwIfNoEntry: false })?.size > 1024 * 1024) truncateSync(accessLog, 0);
    appendFileSync(accessLog, line + '\n');
  } catch {
    /* best effort */
  }
}

const server = createServer((req, res) => {
  requests++;
  let status = 404;
  let body = { error: 'not found' };
  if (req.url === '/health') {
    status = healthy ? 200 : 503;
    body = { status: healthy ? 'ok' : 'unhealthy', healthy, pid: process.pid, config };
  } else if (req.url === '/' || req.url === '') {
    status = 200;
    body = {
      package: process.env.OPSPLANE_PACKAGE ?? 'web',
      pid: process.pid,
      message,
      started_at: startedAt,
      requests,
      healthy,
      config,
    };
  }
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body) + '\n');
  logAccess(`${new Date().toISOString()} ${req.method} ${req.url} ${status}`);
});
server.on('error', (e) => {
  console.error(`web: cannot listen on 127.0.0.1:${port}: ${e.message}`);
  process.exit(1);
});
server.listen(port, '127.0.0.1', () => {
  console.log(
    `web: listening on http://127.0.0.1:${port} (pid ${process.pid}, healthy: ${healthy}, message: ${JSON.stringify(message)})`,
  );
});

let stopping = false;
const stop = (signal) => {
  if (stopping) return;
  stopping = true;
  console.log(`web: ${signal}, stopping${stopDelayMs ? ` in ${stopDelayMs} ms` : ''}`);
  setTimeout(() => {
    server.close(() => process.exit(0));
    server.closeAllConnections?.();
    setTimeout(() => process.exit(0), 2000).unref();
  }, stopDelayMs);
};
process.on('SIGTERM', () => stop('SIGTERM'));
process.on('SIGINT', () => stop('SIGINT'));
