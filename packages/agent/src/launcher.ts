/**
 * Launcher mode of the bundled agent (`node agent.mjs --launch --root <root> --config <file>`):
 * what systemd / opsplane-agentctl run. It runs `<root>/current/agent.mjs` as its child and
 * restarts it; on UPGRADE_EXIT_CODE at once (the agent switched `current` to a new version).
 * While an upgrade trial is open, the new version exiting or missing the deadline makes the
 * launcher switch `current` back to the trial's `from` and start that one, which then reports
 * the rolled back upgrade. Deliberately small and free of agent code: a bad new agent version
 * cannot break it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import {
  AGENT_ROOT_ENV,
  readTrial,
  switchLink,
  UPGRADE_EXIT_CODE,
  writeTrial,
} from './distribution/upgrade-trial.js';

export interface LaunchOptions {
  root: string;
  config: string;
  /** Where the agent keeps its data (the trial record is there). */
  dataDir: string;
  /** Extra arguments for the agent (e.g. --log-level). */
  agentArgs?: string[];
  restartDelayMs?: number;
}

const log = (msg: string) => process.stderr.write(`opsplane-launcher: ${msg}\n`);

export function runLauncher(o: LaunchOptions): Promise<number> {
  return new Promise<number>((resolveExit) => {
    let child: ChildProcess | undefined;
    let stopping = false;
    let deadlineTimer: NodeJS.Timeout | undefined;
    let fastExits = 0;
    let rolledBackByDeadline = false;

    const rollBack = async (reason: string): Promise<boolean> => {
      const t = await readTrial(o.dataDir);
      if (t?.state !== 'trial') return false;
      log(`upgrade ${t.from} -> ${t.to} failed (${reason}); switching back to ${t.from}`);
      await switchLink(o.root, 'current', t.from);
      await writeTrial(o.dataDir, { ...t, state: 'rolled_back', reason });
      return true;
    };

    const watchTrial = async (c: ChildProcess): Promise<void> => {
      const t = await readTrial(o.dataDir);
      if (t?.state !== 'trial') return;
      const ms = Math.max(0, Date.parse(t.deadline) - Date.now());
      deadlineTimer = setTimeout(() => {
        void rollBack(`version ${t.to} did not confirm (connected and healthy) before ${t.deadline}`).then(
          (did) => {
            if (did && child === c) {
              rolledBackByDeadline = true;
              c.kill('SIGKILL');
            }
          },
        );
      }, ms);
    };

    const start = () => {
      const startedAt = Date.now();
      const c = spawn(
        process.execPath,
        [join(o.root, 'current', 'agent.mjs'), '--config', o.config, ...(o.agentArgs ?? [])],
        { stdio: 'inherit', env: { ...process.env, [AGENT_ROOT_ENV]: o.root } },
      );
      child = c;
      void watchTrial(c);
      c.on('exit', (code, signal) => {
        clearTimeout(deadlineTimer);
        child = undefined;
        if (stopping) {
          resolveExit(code ?? 0);
          return;
        }
        if (code === UPGRADE_EXIT_CODE) {
          log('the agent switched versions; starting the new one');
          fastExits = 0;
          start();
          return;
        }
        void rollBack(`the new version exited (${signal ?? `code ${code}`}) before confirming`).then(
          (did) => {
            fastExits = Date.now() - startedAt < 10_000 ? fastExits + 1 : 0;
            const now = did || rolledBackByDeadline;
            rolledBackByDeadline = false;
            const wait = now ? 0 : Math.min(30_000, (o.restartDelayMs ?? 1000) * 2 ** Math.min(fastExits, 5));
            log(`agent exited (${signal ?? `code ${code}`}); restarting in ${wait} ms`);
            setTimeout(() => (stopping ? resolveExit(code ?? 0) : start()), wait);
          },
        );
      });
    };

    const onSignal = (sig: NodeJS.Signals) => {
      if (stopping) return;
      stopping = true;
      clearTimeout(deadlineTimer);
      if (child) child.kill(sig);
      else resolveExit(0);
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
    start();
  });
}
