/**
 * The self-contained agent bundle: packed under a version label, unpacked with the system tar
 * outside the repository, it reports that label (`--version` and to a real controller) and runs
 * packages; the unbundled agent still reports package.json's version.
 */
import assert from 'node:assert/strict';
import { execFile as execFileCb, execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import type { Agent as AgentInfo } from '@opsplane/models';
import { agentToken } from '@opsplane/models';
import { readAgentBundle } from '@opsplane/kit';
import {
  freePort,
  spawnTracked,
  startFleet,
  tempDir,
  waitFor,
  type Fleet,
  type TrackedProcess,
} from '@opsplane/test-support';
import { AGENT_VERSION, bundledAgentPath, packAgentBundle, type PackedAgentBundle } from '../src/index.js';
import { alive, SLEEPER, writePackage, type Workspace } from './helpers.js';

const execFile = promisify(execFileCb);
const VERSION = '9.8.7';
const PACKAGE_VERSION = (
  JSON.parse(await readFile(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }
).version;

/** Runs `node <args>`; resolves with exit code and output instead of throwing on a non-zero exit. */
async function node(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await execFile(process.execPath, args, { timeout: 30_000 });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code?: number; stdout?: string; stderr?: string };
    return { code: err.code ?? -1, stdout: err.stdout ?? '', stderr: err.stderr ?? '' };
  }
}

describe('agent bundle', () => {
  let root: string;
  let cleanup: () => Promise<void>;
  let packed: PackedAgentBundle;
  let agentMjs: string;

  before(async () => {
    ({ path: root, cleanup } = await tempDir('opsplane-agent-bundle-'));
    packed = await packAgentBundle({ version: VERSION, outDir: join(root, 'out') });
    const x = join(root, 'device', 'versions');
    await mkdir(x, { recursive: true });
    execFileSync('tar', ['-xzf', packed.path, '-C', x]);
    agentMjs = join(x, `opsplane-agent-${VERSION}`, 'agent.mjs');
  });
  after(() => cleanup());

  it('packs agent.mjs under the version label, as a bundle the platform accepts', async () => {
    assert.equal(packed.version, VERSION);
    assert.equal(packed.path, join(root, 'out', `opsplane-agent-${VERSION}.tar.gz`));
    const r = await readAgentBundle(packed.path);
    assert.equal(r.sha256, packed.sha256);
    assert.equal(r.bytes, packed.bytes);
    assert.equal(r.topDir, `opsplane-agent-${VERSION}`);
    assert.equal(r.manifest.node, '>=20.18');
    const built = await readFile(bundledAgentPath());
    assert.deepEqual(await readFile(agentMjs), built);
    assert.deepEqual(r.manifest.files, {
      'agent.mjs': { sha256: createHash('sha256').update(built).digest('hex'), bytes: built.length },
    });
  });

  it('the unpacked agent prints its label with --version', async () => {
    assert.deepEqual(await node([agentMjs, '--version']), { code: 0, stdout: `${VERSION}\n`, stderr: '' });
  });

  it('the unbundled agent reports the package.json version', async () => {
    assert.equal(AGENT_VERSION, PACKAGE_VERSION);
    const main = fileURLToPath(new URL('../src/bundle-main.js', import.meta.url));
    assert.equal((await node([main, '--version'])).stdout, `${PACKAGE_VERSION}\n`);
    // The bare build (no manifest.json beside it) falls back to the version it was built from.
    assert.equal((await node([bundledAgentPath(), '--version'])).stdout, `${PACKAGE_VERSION}\n`);
  });

  it('exits 2 on usage errors', async () => {
    const none = await node([agentMjs]);
    assert.equal(none.code, 2);
    assert.match(none.stderr, /--config <file> is required/);
    const missing = await node([agentMjs, '--config', join(root, 'nope.yaml')]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /does not exist/);
    const bad = join(root, 'bad.yaml');
    await writeFile(bad, 'agent_code: x\n');
    const invalid = await node([agentMjs, '--config', bad]);
    assert.equal(invalid.code, 2);
    assert.match(invalid.stderr, /area/);
    assert.equal((await node([agentMjs, '--bogus'])).code, 2);
  });

  describe('against a real controller', () => {
    const AREA = 'area-1';
    const CODE = 'bundled-agent-1';
    let fleet: Fleet;
    let proc: TrackedProcess | undefined;
    const pids = new Set<number>();

    before(async () => {
      fleet = await startFleet({ areas: [{ name: AREA, controllers: 1, agents: 0 }] });
    });
    after(async () => {
      await proc?.kill();
      for (const pid of pids) {
        try {
          process.kill(-pid, 'SIGKILL');
        } catch {
          // gone
        }
      }
      await fleet?.stop();
    });

    it('comes online reporting its label, runs a package, serves metrics, stops cleanly on SIGTERM', async () => {
      const dir = join(root, 'device');
      const ws: Workspace = {
        root: dir,
        packagesDir: join(dir, 'packages'),
        dataDir: join(dir, 'data'),
        cleanup: async () => undefined,
      };
      await writePackage(ws, 'sleeper', SLEEPER);
      const controller = fleet.controllersOf(AREA)[0];
      assert.ok(controller);
      const configPath = join(dir, 'agent.yaml');
      const metricsPort = await freePort();
      // JSON is valid YAML; relative dirs resolve against the config file's directory.
      await writeFile(
        configPath,
        JSON.stringify({
          agent_code: CODE,
          area: AREA,
          controllers: [controller.url],
          packages_dir: 'packages',
          data_dir: 'data',
          heartbeat_interval: '1s',
          reconnect: { initial: '100ms', max: '1s' },
          stop_packages_on_exit: true,
          metrics_listen: `127.0.0.1:${metricsPort}`,
        }),
      );
      proc = spawnTracked('bundled-agent', process.execPath, [agentMjs, '--config', configPath], {
        cwd: dir,
        env: {
          ...process.env,
          OPSPLANE_AGENT_TOKEN: agentToken(fleet.secret(AREA), AREA, CODE),
          OPSPLANE_LOG_LEVEL: 'info',
        },
      });
      const running = proc;
      const agent = await waitFor(
        async () => {
          if (running.child.exitCode !== null) throw new Error(`agent exited:\n${running.output()}`);
          const r = await fleet.api<{ agents: AgentInfo[] }>(controller, 'GET', `/api/v1/agents?id=${CODE}`);
          const a = r.body.agents?.find((x) => x.id === CODE);
          for (const s of a?.services ?? []) if (s.pid) pids.add(s.pid);
          return a?.status === 'online' && a.services.some((s) => s.name === 'sleeper' && s.is_running)
            ? a
            : undefined;
        },
        { timeoutMs: 20_000, intervalMs: 100, what: 'bundled agent online with its package running' },
      );
      assert.equal(agent.version, VERSION);
      assert.equal(agent.area_id, AREA);
      const sleeperPid = agent.services.find((s) => s.name === 'sleeper')?.pid;
      assert.ok(sleeperPid);
      // prom-client bundled: its default metrics and the agent's own.
      const metrics = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
      assert.match(metrics, /^opsplane_agent_process_cpu_seconds_total /m);
      assert.match(metrics, /^opsplane_agent_connected 1$/m);

      await running.stop(10_000);
      const { code, signal } = await running.exited;
      assert.equal(signal, null, running.output());
      assert.equal(code, 0, running.output());
      assert.equal(alive(sleeperPid), false, 'stop_packages_on_exit stopped the package');
      // pino bundled: JSON log lines carrying the label.
      assert.match(running.output(), new RegExp(`"version":"${VERSION.replace(/\./g, '\\.')}"`));
    });
  });
});
