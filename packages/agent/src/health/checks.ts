/**
 * One health probe per check type. Probes never throw: they return ok or a short reason. The
 * exec probe runs the manifest's command without a shell, in its own process group, and kills
 * that group on timeout.
 */
import { spawn } from 'node:child_process';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { connect } from 'node:net';
import type { HealthCheckSpec } from '../packages/manifest.js';
import { signalGroup } from '../proc/procfs.js';

export interface ProbeResult {
  ok: boolean;
  message: string;
  latencyMs: number;
}

export interface ProbeContext {
  isRunning: () => boolean;
  cwd: string;
  env: NodeJS.ProcessEnv;
}

function httpProbe(url: string, timeoutMs: number): Promise<{ ok: boolean; message: string }> {
  return new Promise((resolve) => {
    let settled = false;
    const done = (ok: boolean, message: string) => {
      if (settled) return;
      settled = true;
      resolve({ ok, message });
    };
    let req: ReturnType<typeof httpRequest>;
    try {
      const u = new URL(url);
      const fn = u.protocol === 'https:' ? httpsRequest : httpRequest;
      // agent:false + close: no keep-alive socket outlives the probe.
      req = fn(
        u,
        { method: 'GET', agent: false, headers: { connection: 'close' }, timeout: timeoutMs },
        (res) => {
          res.resume();
          const code = res.statusCode ?? 0;
          done(code >= 200 && code < 300, `HTTP ${code}`);
        },
      );
    } catch (e) {
      done(false, `bad url: ${e instanceof Error ? e.message : String(e)}`);
      return;
    }
    req.on('timeout', () => {
      done(false, `timed out after ${timeoutMs} ms`);
      req.destroy();
    });
    req.on('error', (e: NodeJS.ErrnoException) => done(false, e.code ?? e.message));
    req.end();
  });
}

function tcpProbe(host: string, port: number, timeoutMs: number): Promise<{ ok: boolean; message: string }> {
  return new Promise((resolve) => {
    const sock = connect({ host, port });
    const timer = setTimeout(() => {
      sock.destroy();
      resolve({ ok: false, message: `connect to ${host}:${port} timed out after ${timeoutMs} ms` });
    }, timeoutMs);
    sock.once('connect', () => {
      clearTimeout(timer);
      sock.destroy();
      resolve({ ok: true, message: `connected to ${host}:${port}` });
    });
    sock.once('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      resolve({ ok: false, message: `connect to ${host}:${port}: ${e.code ?? e.message}` });
    });
  });
}

function execProbe(
  command: string,
  args: string[],
  timeoutMs: number,
  ctx: ProbeContext,
): Promise<{ ok: boolean; message: string }> {
  return new Promise((resolve) => {
    let out = '';
    let settled = false;
    const done = (ok: boolean, message: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve({ ok, message });
    };
    const child = spawn(command, args, {
      cwd: ctx.cwd,
      env: ctx.env,
      shell: false,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const collect = (d: Buffer) => {
      if (out.length < 512) out += d.toString();
    };
    child.stdout?.on('data', collect);
    child.stderr?.on('data', collect);
    const timer = setTimeout(() => {
      if (child.pid !== undefined) signalGroup(child.pid, 'SIGKILL');
      done(false, `timed out after ${timeoutMs} ms`);
    }, timeoutMs);
    child.once('error', (e: NodeJS.ErrnoException) =>
      done(false, `cannot run ${command}: ${e.code ?? e.message}`),
    );
    child.once('close', (code, signal) => {
      const tail = out.trim().slice(0, 200);
      if (code === 0) done(true, tail || 'exit code 0');
      else done(false, `${signal ? `killed by ${signal}` : `exit code ${code}`}${tail ? `: ${tail}` : ''}`);
    });
  });
}

export async function runProbe(spec: HealthCheckSpec, ctx: ProbeContext): Promise<ProbeResult> {
  const t0 = performance.now();
  let r: { ok: boolean; message: string };
  switch (spec.type) {
    case 'process':
      r = ctx.isRunning()
        ? { ok: true, message: 'process running' }
        : { ok: false, message: 'process not running' };
      break;
    case 'http':
      r = await httpProbe(spec.url, spec.timeoutMs);
      break;
    case 'tcp':
      r = await tcpProbe(spec.host, spec.port, spec.timeoutMs);
      break;
    case 'exec':
      r = await execProbe(spec.command, spec.args, spec.timeoutMs, ctx);
      break;
  }
  return { ...r, latencyMs: Math.round((performance.now() - t0) * 100) / 100 };
}
