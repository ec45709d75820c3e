/**
 * Files the Linux installer writes on a device: the systemd unit, and opsplane-agentctl — a small
 * POSIX-sh supervisor for hosts without systemd (or installs without root): it restarts the agent
 * when it exits, and stops it (TERM, then KILL after 15 s) on request. Paths are embedded
 * single-quoted; they were validated as plain absolute paths before. Both run the agent's
 * launcher (`agent.mjs --launch`), which runs `current/agent.mjs` and rolls back a failed
 * self-upgrade.
 */
import { shellQuote } from '../ssh/ssh-session.js';

export function systemdUnit(root: string, node: string): string {
  // systemd unquotes "…" in ExecStart; our paths hold no quotes or backslashes (validated).
  const q = (s: string) => `"${s}"`;
  return `[Unit]
Description=Opsplane agent
Documentation=https://github.com/opsplane/opsplane
After=network-online.target
Wants=network-online.target

[Service]
Type=simple
ExecStart=${q(node)} ${q(`${root}/current/agent.mjs`)} --launch --root ${q(root)} --config ${q(`${root}/etc/agent.yaml`)}
Restart=always
RestartSec=2
# The agent's packages are its children but must outlive an agent restart (it re-adopts them).
KillMode=process
TimeoutStopSec=20

[Install]
WantedBy=multi-user.target
`;
}

export function agentctlScript(root: string, node: string): string {
  return `#!/bin/sh
# opsplane-agentctl — keeps the Opsplane agent running where systemd is not used.
#   start | stop | restart | status    (written by the Opsplane platform; do not edit)
ROOT=${shellQuote(root)}
NODE=${shellQuote(node)}
PIDFILE="$ROOT/run/supervisor.pid"
STOPFILE="$ROOT/run/stop"
LOG="$ROOT/log/agent.log"

running() {
  [ -f "$PIDFILE" ] || return 1
  pid=$(cat "$PIDFILE" 2>/dev/null) || return 1
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null
}

supervise() {
  echo $$ > "$PIDFILE"
  child=
  trap 'touch "$STOPFILE"; [ -n "$child" ] && kill -TERM "$child" 2>/dev/null' TERM INT
  while [ ! -f "$STOPFILE" ]; do
    "$NODE" "$ROOT/current/agent.mjs" --launch --root "$ROOT" --config "$ROOT/etc/agent.yaml" >>"$LOG" 2>&1 &
    child=$!
    # wait returns early when a trapped signal arrives; wait again for the agent to exit.
    while kill -0 "$child" 2>/dev/null; do wait "$child"; done
    child=
    [ -f "$STOPFILE" ] && break
    echo "opsplane-agentctl: agent exited; restarting in 2 s" >>"$LOG"
    sleep 2
  done
  rm -f "$PIDFILE" "$STOPFILE"
}

start() {
  if running; then echo running; return 0; fi
  mkdir -p "$ROOT/run" "$ROOT/log"
  rm -f "$STOPFILE" "$PIDFILE"
  if command -v setsid >/dev/null 2>&1; then
    nohup setsid "$0" supervise </dev/null >>"$LOG" 2>&1 &
  else
    nohup "$0" supervise </dev/null >>"$LOG" 2>&1 &
  fi
  i=0
  while [ $i -lt 50 ]; do
    running && { echo started; return 0; }
    sleep 0.1; i=$((i + 1))
  done
  echo "opsplane-agentctl: the supervisor did not start (see $LOG)" >&2
  return 1
}

stop() {
  if ! running; then rm -f "$PIDFILE"; echo stopped; return 0; fi
  touch "$STOPFILE"
  kill -TERM "$pid" 2>/dev/null
  i=0
  while [ $i -lt 150 ] && kill -0 "$pid" 2>/dev/null; do sleep 0.1; i=$((i + 1)); done
  if kill -0 "$pid" 2>/dev/null; then
    # Still there after 15 s: the supervisor's whole session (it is a session leader via setsid).
    kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null
  fi
  rm -f "$PIDFILE" "$STOPFILE"
  echo stopped
}

case "\${1:-}" in
  supervise) supervise ;;
  start) start ;;
  stop) stop ;;
  restart) stop >/dev/null && start ;;
  status) if running; then echo running; else echo stopped; exit 3; fi ;;
  *) echo "usage: $0 start|stop|restart|status" >&2; exit 2 ;;
esac
`;
}

/**
 * Run by the device's node with state.json as argv[1]: stops the packages the agent recorded,
 * if each pid still is the same process (/proc start time), TERM then KILL after 10 s.
 */
export const STOP_PACKAGES_SCRIPT = `
const fs = require('fs');
const state = JSON.parse(fs.readFileSync(process.argv[1], 'utf8'));
const startTime = (pid) => { try { const t = fs.readFileSync('/proc/' + pid + '/stat', 'utf8'); return t.slice(t.lastIndexOf(')') + 2).trim().split(/\\s+/)[19]; } catch { return undefined; } };
const alive = (pid) => { try { process.kill(pid, 0); return true; } catch { return false; } };
const pids = Object.values(state.packages || {}).filter((p) => p && p.pid && (!p.start_time || startTime(p.pid) === p.start_time)).map((p) => p.pid);
const kill = (pid, sig) => { try { process.kill(-pid, sig); } catch { try { process.kill(pid, sig); } catch {} } };
pids.forEach((pid) => kill(pid, 'SIGTERM'));
const deadline = Date.now() + 10000;
const tick = () => { const left = pids.filter(alive); if (left.length === 0) return; if (Date.now() > deadline) { left.forEach((pid) => kill(pid, 'SIGKILL')); return; } setTimeout(tick, 100); };
tick();
`;
