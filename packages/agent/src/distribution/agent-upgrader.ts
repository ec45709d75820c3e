/**
 * Agent self-upgrade, the running agent's half (the launcher has the other): fetch and verify
 * the bundle like any artifact, check it (kit's readAgentBundle: manifest, checksums, version),
 * unpack it into `<root>/versions/<v>/`, record the trial (from, to, deadline), point `previous`
 * at the running version and `current` at the new one, and ask for an exit with
 * UPGRADE_EXIT_CODE — the launcher starts the new version. The new version confirms the trial
 * once connected; a rolled back trial is reported (failed, rolled_back) and not retried.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { InvalidAgentBundleError, readAgentBundle, readTarGz, checkTarPath } from '@opsplane/kit';
import type { DesiredState, DistributionStatus } from '@opsplane/models';
import type { Logger } from '../log.js';
import type { ArtifactFetcher } from './artifact-fetcher.js';
import type { AgentUpgradeStep } from './converger.js';
import { asDistributionError, DistributionError, SupersededError } from './errors.js';
import { linkedVersion, readTrial, switchLink, writeTrial, type UpgradeTrial } from './upgrade-trial.js';

type AgentPart = NonNullable<DistributionStatus['agent']>;

export interface AgentUpgraderOptions {
  dataDir: string;
  /** The install root when run by the launcher (else self-upgrade is refused). */
  root: string | undefined;
  version: string;
  fetcher: ArtifactFetcher;
  logger: Logger;
  /** Stops the agent and exits with UPGRADE_EXIT_CODE (the daemon's entry wires it). */
  requestUpgradeExit?: () => void;
}

export class AgentUpgrader implements AgentUpgradeStep {
  private trial: UpgradeTrial | undefined;
  private lastError: { version: string; code: string; message: string } | undefined;
  private switching: string | undefined;

  constructor(private readonly o: AgentUpgraderOptions) {}

  /** Reads the trial left by the previous run (call before converging). */
  async open(): Promise<void> {
    this.trial = await readTrial(this.o.dataDir);
  }

  /** An open trial for this very version: confirm it (the agent is up and connected). */
  async confirmIfOnTrial(): Promise<boolean> {
    const t = await readTrial(this.o.dataDir);
    if (t?.state !== 'trial' || t.to !== this.o.version) return false;
    this.trial = { ...t, state: 'confirmed' };
    await writeTrial(this.o.dataDir, this.trial);
    this.o.logger.info({ from: t.from, to: t.to }, 'agent upgrade confirmed');
    return true;
  }

  current(d: DesiredState | undefined): AgentPart | undefined {
    const want = d?.agent?.version;
    if (want === undefined) return undefined;
    const base = { desired_version: want, version: this.o.version, rolled_back: false };
    const t = this.trial;
    if (t?.to === want && t.state === 'rolled_back')
      return {
        ...base,
        state: 'failed',
        rolled_back: true,
        error: { code: 'agent_upgrade_rolled_back', message: t.reason ?? `version ${want} was rolled back` },
      };
    if (want === this.o.version)
      return { ...base, state: t?.state === 'trial' && t.to === want ? 'applying' : 'applied' };
    if (this.lastError?.version === want)
      return {
        ...base,
        state: 'failed',
        error: { code: this.lastError.code, message: this.lastError.message },
      };
    return { ...base, state: 'applying' };
  }

  async converge(d: DesiredState, signal: AbortSignal): Promise<AgentPart | undefined> {
    const a = d.agent;
    if (!a || a.version === this.o.version || this.switching === a.version) return this.current(d);
    if (this.trial?.to === a.version && this.trial.state === 'rolled_back') return this.current(d);
    if (this.lastError?.version === a.version) return this.current(d);
    try {
      await this.install(d, signal);
    } catch (e) {
      if (e instanceof SupersededError) throw e;
      const de = asDistributionError(e, 'agent_upgrade_failed');
      this.o.logger.error({ to: a.version, code: de.code, err: de.message }, 'agent upgrade failed');
      this.lastError = { version: a.version, code: de.code, message: de.message };
    }
    return this.current(d);
  }

  private async install(d: DesiredState, signal: AbortSignal): Promise<void> {
    const a = d.agent!;
    const root = this.o.root;
    if (!root || !this.o.requestUpgradeExit)
      throw new DistributionError(
        'agent_upgrade_unsupported',
        'this agent was not started by the launcher (agent.mjs --launch), so it cannot replace itself',
      );
    const ref = a.artifact;
    if (ref.kind !== 'agent' || ref.version !== a.version)
      throw new DistributionError(
        'artifact_mismatch',
        `the artifact is ${ref.kind} ${ref.name} ${ref.version}, the desired state wants agent ${a.version}`,
      );
    const file = await this.o.fetcher.fetch(ref, signal, (message) => {
      this.o.logger.debug({ to: a.version, problem: message }, 'agent bundle download retrying');
    });
    const gz = await readFile(file);
    let bundle;
    try {
      bundle = await readAgentBundle(gz);
    } catch (e) {
      if (e instanceof InvalidAgentBundleError) throw new DistributionError('artifact_invalid', e.message);
      throw e;
    }
    if (bundle.manifest.version !== a.version)
      throw new DistributionError(
        'artifact_mismatch',
        `the bundle is agent ${bundle.manifest.version}, the desired state wants ${a.version}`,
      );
    const dir = join(root, 'versions', a.version);
    if (!(await stat(join(dir, '.complete')).catch(() => undefined))) {
      const tmp = join(root, 'versions', `.${a.version}.${randomBytes(4).toString('hex')}.tmp`);
      try {
        await mkdir(tmp, { recursive: true });
        for (const e of readTarGz(gz)) {
          const rel = checkTarPath(e.path).slice(bundle.topDir.length + 1);
          if (rel === '') continue;
          const p = join(tmp, rel);
          if (e.type === 'dir') await mkdir(p, { recursive: true });
          else {
            await mkdir(dirname(p), { recursive: true });
            await writeFile(p, e.data ?? Buffer.alloc(0), { mode: (e.mode ?? 0o644) & 0o777 });
          }
        }
        await writeFile(join(tmp, '.complete'), '');
        await rm(dir, { recursive: true, force: true });
        await rename(tmp, dir);
      } catch (e) {
        await rm(tmp, { recursive: true, force: true });
        throw e;
      }
    }
    await rm(file, { force: true }); // unpacked; not needed any more
    const from = (await linkedVersion(root, 'current')) || this.o.version;
    this.trial = {
      from,
      to: a.version,
      deadline: new Date(Date.now() + d.health_timeout_ms).toISOString(),
      state: 'trial',
    };
    await writeTrial(this.o.dataDir, this.trial);
    await switchLink(root, 'previous', from);
    await switchLink(root, 'current', a.version);
    this.switching = a.version;
    this.o.logger.info(
      { from, to: a.version },
      'agent upgrade: switched current; handing over to the new version',
    );
    this.o.requestUpgradeExit();
  }
}
