/**
 * bench:deploy — installs the real agent bundle on N real sshd hosts (network namespaces, one
 * address each; default 50, OPSPLANE_BENCH_HOSTS to change, at most 63) through the platform
 * server's deployment queue, at concurrency 10 and 50, and prints JSON: hosts per minute, per
 * host p50/p99 (claimed → online), and the p50 of each step. Between runs every agent is
 * uninstalled, so each run is a fresh install. Needs root (test users, namespaces).
 */
import { cpus } from 'node:os';
import { chmod, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { packAgentBundle } from '@opsplane/agent';
import {
  startFleet,
  startSshHosts,
  tempDir,
  waitFor,
  type Fleet,
  type SshHosts,
} from '@opsplane/test-support';
import type { Rollout } from '@opsplane/api';
import { startTestServer, type TestServer } from '../test/helpers.js';

const AREA = 'bench';
const SECRET = 'bench-area-secret-0123456789abcdef';
const HOSTS = Number(process.env.OPSPLANE_BENCH_HOSTS ?? 50);
const CONCURRENCY = [10, 50];

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]! : NaN;
};
const round = (x: number) => Math.round(x);

async function main(): Promise<void> {
  const work = await tempDir('opsplane-bench-deploy-');
  await chmod(work.path, 0o755);
  let hosts: SshHosts | undefined;
  let fleet: Fleet | undefined;
  let t: TestServer | undefined;
  try {
    const t0 = performance.now();
    hosts = await startSshHosts(HOSTS, { keyWithPassphrase: false });
    fleet = await startFleet({
      areas: [{ name: AREA, controllers: 1, agents: 0 }],
      secrets: { [AREA]: SECRET },
      controllerAddress: hosts.machineAddress,
      timing: { heartbeatInterval: '5s', offlineAfter: '15s' },
    });
    const bundles = join(work.path, 'bundles');
    await mkdir(bundles);
    const bundle = await packAgentBundle({ version: '1.0.0', outDir: bundles });
    t = await startTestServer('pglite', {
      etcd: fleet.etcd.endpoints,
      areas: { [AREA]: { agent_secret: SECRET } },
      server: { deploy: { bundles_dir: bundles, online_timeout: '120s', poll_interval: '200ms' } },
      env: { OPSPLANE_MAX_WORKERS: String(Math.max(...CONCURRENCY)) },
    });
    const setupS = (performance.now() - t0) / 1000;
    const auth = { auth: t.users.operator.token };
    const names: string[] = [];
    for (const h of hosts.hosts) {
      const u = h.users.key;
      const name = `bench-${h.name}`;
      const r = await t.call('POST', '/api/v1/devices', {
        auth: t.users.admin.token,
        body: {
          name,
          ip: h.address,
          function_area: AREA,
          os: 'linux',
          login: { username: u.username, port: h.port, private_key: u.privateKey },
          metadata: { install_scope: 'user' },
        },
      });
      if (r.status !== 201) throw new Error(`device ${name}: ${r.status} ${r.text}`);
      names.push(name);
    }
    const server = t;
    const rollout = async (body: Record<string, unknown>) => {
      const started = performance.now();
      const r = await server.call<Rollout>('POST', '/api/v1/deployments', { ...auth, body });
      if (r.status !== 202) throw new Error(`${r.status} ${r.text}`);
      let last: Rollout | undefined;
      await waitFor(
        async () => {
          last = (await server.call<Rollout>('GET', `/api/v1/rollouts/${r.json.id}`, auth)).json;
          return last.status !== 'running';
        },
        { timeoutMs: 30 * 60_000, intervalMs: 250, what: `rollout ${r.json.id}` },
      );
      return { rollout: last!, wallMs: performance.now() - started };
    };

    const runs = [];
    for (const c of CONCURRENCY) {
      const { rollout: r, wallMs } = await rollout({ type: 'install', devices: names, batch_size: c });
      const ok = r.deployments.filter((d) => d.status === 'succeeded');
      const perHost = ok.map((d) => Date.parse(d.finished_at!) - Date.parse(d.started_at!));
      const steps: Record<string, number> = {};
      for (const name of r.deployments[0]?.steps.map((s) => s.name) ?? []) {
        const xs = ok
          .map((d) => d.steps.find((s) => s.name === name))
          .filter((s) => s?.started_at && s.finished_at)
          .map((s) => Date.parse(s!.finished_at!) - Date.parse(s!.started_at!));
        if (xs.length) steps[name] = round(pct(xs, 50));
      }
      runs.push({
        concurrency: c,
        hosts: names.length,
        succeeded: ok.length,
        failed: r.deployments.length - ok.length,
        errors: [
          ...new Set(r.deployments.filter((d) => d.error).map((d) => `${d.error_code}: ${d.error}`)),
        ].slice(0, 5),
        wall_s: Number((wallMs / 1000).toFixed(1)),
        hosts_per_minute: Number(((ok.length / wallMs) * 60_000).toFixed(1)),
        per_host_ms: {
          p50: round(pct(perHost, 50)),
          p99: round(pct(perHost, 99)),
          max: round(Math.max(...perHost)),
        },
        step_p50_ms: steps,
      });
      const un = await rollout({ type: 'uninstall', devices: names, batch_size: 50 });
      const left = un.rollout.deployments.filter((d) => d.status !== 'succeeded').length;
      if (left > 0) throw new Error(`${left} uninstall(s) failed; the next run would not be a fresh install`);
    }
    console.log(
      JSON.stringify(
        {
          bench: 'deploy',
          hosts: HOSTS,
          host_mode: hosts.mode,
          bundle_bytes: bundle.bytes,
          machine: { cpus: cpus().length, node: process.version },
          setup_s: Number(setupS.toFixed(1)),
          runs,
        },
        null,
        2,
      ),
    );
  } finally {
    await t?.stop();
    await fleet?.stop();
    await hosts?.stop();
    await work.cleanup();
  }
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    console.error(e);
    process.exit(1);
  },
);
