/**
 * `opsplane demo` end to end, as a newcomer would run it: the real binary as a child process on
 * a temp data dir (never ./data) and a free server port (never 8080, which a developer's own
 * demo may hold). Waits for the banner, logs in with the printed password, checks the
 * aggregated view (6 agents online across 2 areas, joined with their devices; 3 controllers),
 * restarts a package on every agent, pushes a config to one, checks that a second demo on the
 * same data dir is refused, then Ctrl-C (SIGINT): exit 0 and no process of the demo left.
 *
 * The demo runs TLS everywhere by default, so this is also the TLS fleet from the demo's own
 * configuration: the server, the controllers and etcd refuse plain HTTP and a client that
 * trusts another CA, a controller refuses an agent without a certificate, and a revoked agent
 * is kicked within 5 s and stays out.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, realpathSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { tlsFetch } from '@opsplane/fleet';
import { CertificateAuthority } from '@opsplane/pki';

const MAIN = fileURLToPath(new URL('../src/main.js', import.meta.url));
// Generous: the first start sets up PGlite (~10-20 s alone), and under `npm test` the demo
// shares the machine with every other test file.
const BANNER_TIMEOUT_MS = 240_000;
const verbose = !!process.env.OPSPLANE_TEST_VERBOSE;

/** Processes whose command line mentions `dir` (Linux /proc). */
function processesUsing(dir: string): { pid: number; cmdline: string }[] {
  const out: { pid: number; cmdline: string }[] = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e) || Number(e) === process.pid) continue;
    try {
      const cmdline = readFileSync(`/proc/${e}/cmdline`, 'utf8').split('\0').join(' ');
      if (cmdline.includes(dir)) out.push({ pid: Number(e), cmdline });
    } catch {
      /* gone */
    }
  }
  return out;
}

function demoEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1' };
  delete env.OPSPLANE_ADMIN_PASSWORD;
  delete env.FORCE_COLOR;
  return env;
}

interface Api {
  get<T>(path: string): Promise<{ status: number; body: T }>;
  post<T>(path: string, body: unknown): Promise<{ status: number; body: T }>;
}

/** fetch trusting the demo's CA (set once the demo has created it). */
let fetchCa: typeof fetch = fetch;

function apiClient(base: string, cookie: string): Api {
  const req = async <T>(method: string, path: string, body?: unknown) => {
    const res = await fetchCa(`${base}/api/v1${path}`, {
      method,
      headers: {
        cookie,
        // A browser's same-origin request (cookie-authenticated changes need it).
        origin: new URL(base).origin,
        ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
      },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      signal: AbortSignal.timeout(90_000),
    });
    return { status: res.status, body: (await res.json()) as T };
  };
  return { get: (p) => req('GET', p), post: (p, b) => req('POST', p, b) };
}

interface BatchJob {
  id: string;
  status: string;
  total: number;
  success: number;
  failed: number;
  results?: { agent_code: string; package: string; success: boolean; error?: string; message?: string }[];
}

/** POST /batches and, if it answers 202, poll until done. */
async function runBatch(api: Api, body: unknown): Promise<BatchJob> {
  const r = await api.post<BatchJob>('/batches?wait=60s', body);
  assert.ok(r.status === 201 || r.status === 202, `POST /batches → ${r.status} ${JSON.stringify(r.body)}`);
  let job = r.body;
  const deadline = Date.now() + 90_000;
  while (job.status === 'running' || !job.results) {
    assert.ok(Date.now() < deadline, `batch ${job.id} still running`);
    await new Promise((res) => setTimeout(res, 500));
    job = (await api.get<BatchJob>(`/batches/${job.id}`)).body;
  }
  return job;
}

describe('opsplane demo (end to end)', { timeout: 480_000 }, () => {
  let dataDir = '';
  let demo: ChildProcess | undefined;
  let output = '';
  let exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  let apiUrl = '';
  let password = '';
  let api: Api;

  const waitForOutput = (re: RegExp, timeoutMs: number) =>
    new Promise<RegExpExecArray>((resolve, reject) => {
      const check = () => {
        const m = re.exec(output);
        if (m) {
          cleanup();
          resolve(m);
        }
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`no ${re} within ${timeoutMs} ms; demo output:\n${output.slice(-8000)}`));
      }, timeoutMs);
      const onExit = () => {
        cleanup();
        reject(new Error(`demo exited before ${re}; output:\n${output.slice(-8000)}`));
      };
      const cleanup = () => {
        clearTimeout(timer);
        demo?.stdout?.off('data', check);
        demo?.off('exit', onExit);
      };
      demo?.stdout?.on('data', check);
      demo?.once('exit', onExit);
      check();
    });

  before(() => {
    // realpath: /tmp may be a symlink, and the demo's processes name the resolved path.
    dataDir = realpathSync(mkdtempSync(join(tmpdir(), 'opsplane-demo-test-')));
  });

  after(async () => {
    if (demo && demo.exitCode === null && demo.signalCode === null) {
      demo.kill('SIGINT');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 30_000).unref())]);
    }
    for (const p of processesUsing(dataDir)) {
      try {
        process.kill(p.pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  it('starts, prints the banner with the API URL and a generated password', async () => {
    const t0 = Date.now();
    demo = spawn(process.execPath, [MAIN, 'demo', '--data-dir', dataDir, '--port', '0', '--timeout', '220'], {
      env: demoEnv(),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    exited = new Promise((resolve) => demo?.once('exit', (code, signal) => resolve({ code, signal })));
    for (const s of [demo.stdout, demo.stderr]) {
      s?.setEncoding('utf8');
      s?.on('data', (d: string) => {
        output += d;
        if (verbose) process.stderr.write(d);
      });
    }
    await waitForOutput(/Opsplane demo is running[\s\S]*Ctrl-C stops everything/, BANNER_TIMEOUT_MS);
    const url = /API\s+(https:\/\/127\.0\.0\.1:(\d+))\/api\/v1/.exec(output);
    const pw = /Password\s+(\S+)/.exec(output);
    assert.ok(url && pw, `banner without API URL or password:\n${output.slice(-3000)}`);
    apiUrl = url[1] as string;
    password = pw[1] as string;
    assert.notEqual(Number(url[2]), 8080, '--port 0 must not take 8080');
    for (const sub of ['login', 'agents list', 'batch restart', 'batch config'])
      assert.match(output, new RegExp(`opsplane ${sub}`), `banner suggests 'opsplane ${sub}'`);
    const secrets = JSON.parse(readFileSync(join(dataDir, 'secrets.json'), 'utf8')) as {
      admin_password?: string;
    };
    assert.equal(secrets.admin_password, password, 'the printed password is the one kept in secrets.json');
    fetchCa = tlsFetch({ ca: readFileSync(join(dataDir, 'pki', 'ca', 'ca-bundle.crt'), 'utf8') });
    console.log(`# banner after ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  });

  it("serves the web UI at the banner's URL", async () => {
    const ui = /Web UI\s+(https:\/\/127\.0\.0\.1:\d+\/)/.exec(output);
    assert.ok(ui, 'banner names the web UI');
    const res = await fetchCa(ui[1] as string);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /text\/html/);
    assert.match(res.headers.get('content-security-policy') ?? '', /script-src 'self'/);
    assert.match(await res.text(), /<script type="module" src="\/ui\/js\/main\.js"><\/script>/);
  });

  it('logs in with the printed password', async () => {
    const res = await fetchCa(`${apiUrl}/api/v1/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', origin: apiUrl },
      body: JSON.stringify({ username: 'admin', password }),
    });
    assert.equal(res.status, 200, await res.clone().text());
    const cookie = res.headers
      .getSetCookie()
      .map((c) => c.split(';')[0])
      .find((c) => c?.startsWith('opsplane_session='));
    assert.ok(cookie, 'login sets the session cookie');
    api = apiClient(apiUrl, cookie);
  });

  it('shows 6 agents online across 2 areas, joined with their devices, and 3 controllers', async () => {
    const agents = await api.get<{
      agents: {
        agent_code: string;
        area: string;
        status: string;
        device_name: string | null;
        controller_id: string;
      }[];
      total: number;
    }>('/agents?pageSize=100');
    assert.equal(agents.status, 200, JSON.stringify(agents.body));
    const online = agents.body.agents.filter((a) => a.status === 'online');
    assert.equal(online.length, 6, JSON.stringify(agents.body.agents, null, 1));
    assert.deepEqual([...new Set(online.map((a) => a.area))].sort(), ['area-1', 'area-2']);
    for (const area of ['area-1', 'area-2']) assert.equal(online.filter((a) => a.area === area).length, 3);
    for (const a of online)
      assert.match(a.device_name ?? '', /^demo-a[12]-[123]$/, `agent ${a.agent_code} joined with its device`);
    const controllers = await api.get<{ controllers: { id: string; area: string; status: string }[] }>(
      '/controllers',
    );
    assert.equal(controllers.status, 200);
    assert.deepEqual(controllers.body.controllers.map((c) => `${c.area}/${c.id}`).sort(), [
      'area-1/ctrl-1a',
      'area-1/ctrl-1b',
      'area-2/ctrl-2a',
    ]);
    assert.ok(controllers.body.controllers.every((c) => c.status === 'online'));
  });

  it('refuses a second demo on the same data dir while the first runs', () => {
    const r = spawnSync(process.execPath, [MAIN, 'demo', '--data-dir', dataDir, '--port', '0'], {
      env: demoEnv(),
      encoding: 'utf8',
      timeout: 30_000,
    });
    assert.equal(r.status, 1, `second demo: ${r.stdout}\n${r.stderr}`);
    assert.match(
      r.stderr,
      new RegExp(
        `a demo is already running \\(pid ${demo?.pid}, API ${apiUrl.replace(/\./g, '\\.')}\\); stop it with Ctrl-C in its terminal or kill ${demo?.pid}`,
      ),
    );
  });

  it('restarts one package on all 6 agents', async () => {
    const list = await api.get<{ agents: { agent_code: string }[] }>('/agents?pageSize=100');
    const codes = list.body.agents.map((a) => a.agent_code);
    assert.equal(codes.length, 6);
    const job = await runBatch(api, { action: 'restart', agents: codes, packages: ['web'] });
    assert.equal(job.results?.length, 6, JSON.stringify(job));
    assert.ok(
      job.results?.every((r) => r.success && r.package === 'web'),
      JSON.stringify(job.results, null, 1),
    );
    assert.deepEqual(job.results?.map((r) => r.agent_code).sort(), [...codes].sort());
  });

  it('pushes a config to one agent; the file lands in its package config dir', async () => {
    const list = await api.get<{ agents: { agent_code: string; device_name: string | null }[] }>(
      '/agents?pageSize=100',
    );
    const target = list.body.agents.find((a) => a.device_name === 'demo-a2-1');
    assert.ok(target);
    const content = `# pushed by the demo test\npath: ../web/access.log\ninterval: 500ms\nlabel: e2e-${Date.now()}\n`;
    const job = await runBatch(api, {
      action: 'configs',
      agents: [target.agent_code],
      package: 'collector',
      configs: [{ file_name: 'collector.yaml', content }],
    });
    assert.equal(job.results?.length, 1, JSON.stringify(job));
    assert.ok(job.results?.[0]?.success, JSON.stringify(job.results));
    const onDisk = readFileSync(
      join(dataDir, 'agents', target.agent_code, 'packages', 'collector', 'config', 'collector.yaml'),
      'utf8',
    );
    assert.equal(onDisk, content);
  });

  it("pins the cluster's artifact key in every agent and controller, so policies can reach them", async () => {
    const keys = await api.get<{ keys: { key: string }[] }>('/artifacts/keys');
    const key = keys.body.keys[0]?.key;
    assert.ok(key, JSON.stringify(keys.body));
    const list = await api.get<{ agents: { agent_code: string }[] }>('/agents?pageSize=100');
    assert.equal(list.body.agents.length, 6);
    for (const a of list.body.agents) {
      const yaml = readFileSync(join(dataDir, 'agents', a.agent_code, 'agent.yaml'), 'utf8');
      assert.ok(yaml.includes(key), `${a.agent_code}'s agent.yaml pins ${key}`);
    }
    const controllers = readdirSync(join(dataDir, 'controllers'));
    assert.equal(controllers.length, 3);
    for (const c of controllers)
      assert.ok(readFileSync(join(dataDir, 'controllers', c, 'controller.yaml'), 'utf8').includes(key), c);
  });

  it("the banner's CLI commands work as printed", () => {
    // The printed lines, run with this build's main.js instead of `npx opsplane`; the login
    // reads the password from OPSPLANE_PASSWORD instead of asking, and stores its token in a
    // temp config dir instead of ~/.config.
    const banner = output.slice(output.lastIndexOf('Opsplane demo is running'));
    const lines = [
      ...banner.matchAll(/^\s+(?:npx )?opsplane ((?:login|agents|batch) [^#\n]*?)\s*(?:#.*)?$/gm),
    ].map((m) => m[1] as string);
    assert.equal(lines.length, 4, `expected 4 CLI commands in the banner:\n${banner}`);
    const env: NodeJS.ProcessEnv = {
      ...demoEnv(),
      OPSPLANE_CONFIG_DIR: join(dataDir, 'cli-config'),
      OPSPLANE_PASSWORD: password,
    };
    delete env.OPSPLANE_SERVER;
    delete env.OPSPLANE_TOKEN;
    for (const line of lines) {
      const r = spawnSync(process.execPath, [MAIN, ...line.split(/\s+/)], {
        env,
        encoding: 'utf8',
        cwd: process.cwd(),
        timeout: 120_000,
      });
      assert.equal(r.status, 0, `opsplane ${line}\n${r.stdout}\n${r.stderr}`);
      if (line.startsWith('agents list'))
        assert.equal((r.stdout.match(/\bonline\b/g) ?? []).length >= 6, true, r.stdout);
      if (line.startsWith('batch')) assert.match(r.stdout, /0 failed/, r.stdout);
    }
  });

  it('TLS on every hop: a wrong CA and plain HTTP are refused by the server, a controller and etcd', async () => {
    const controllers = await api.get<{ controllers: { id: string; address: string }[] }>('/controllers');
    const ctrl = controllers.body.controllers.find((c) => c.id === 'ctrl-1a');
    assert.match(ctrl?.address ?? '', /^https:\/\/127\.0\.0\.1:\d+$/, 'controllers register https addresses');
    const etcdUrl = /endpoints:\s*\n?\s*-?\s*\[?"?(https:\/\/127\.0\.0\.1:\d+)/.exec(
      readFileSync(join(dataDir, 'platform.yaml'), 'utf8'),
    )?.[1];
    assert.ok(etcdUrl, 'the server reaches etcd over https');
    const other = await CertificateAuthority.create();
    const wrongCa = tlsFetch({ ca: other.certPem });
    for (const url of [apiUrl, ctrl?.address ?? '', etcdUrl]) {
      await assert.rejects(
        wrongCa(`${url}/healthz`, { signal: AbortSignal.timeout(5000) }),
        `${url}: wrong CA`,
      );
      await assert.rejects(
        fetch(`${url.replace('https:', 'http:')}/healthz`, { signal: AbortSignal.timeout(5000) }),
        `${url}: plain HTTP`,
      );
    }
    assert.equal((await fetchCa(`${ctrl?.address}/healthz`)).status, 200);
    // etcd also wants a client certificate: the CA alone is not enough.
    const etcdStatus = await fetchCa(`${etcdUrl}/version`).then(
      (r) => r.status,
      () => 'refused',
    );
    assert.notEqual(etcdStatus, 200);
  });

  it('a controller refuses an agent socket without a client certificate (mutual TLS)', async () => {
    const controllers = await api.get<{ controllers: { id: string; address: string }[] }>('/controllers');
    const ctrl = controllers.body.controllers.find((c) => c.id === 'ctrl-2a');
    const ca = readFileSync(join(dataDir, 'pki', 'ca', 'ca-bundle.crt'), 'utf8');
    const status = await new Promise<number | string>((resolve) => {
      const ws = new WebSocket(`${ctrl?.address.replace('https:', 'wss:')}/api/v1/agents/connect`, {
        ca,
        headers: { 'x-opsplane-agent-code': 'agt-nobody', 'x-opsplane-area': 'area-2' },
      });
      ws.on('unexpected-response', (_q, r) => resolve(r.statusCode ?? 0));
      ws.on('upgrade', () => resolve(101));
      ws.on('error', (e) => resolve(e.message));
    });
    assert.equal(status, 401);
  });

  it('a revoked agent is kicked within 5 s and stays out', async () => {
    const list = await api.get<{ agents: { agent_code: string; device_name: string | null }[] }>(
      '/agents?pageSize=100',
    );
    const target = list.body.agents.find((a) => a.device_name === 'demo-a1-3');
    assert.ok(target);
    const code = target.agent_code;
    const t0 = Date.now();
    const r = await api.post<{ agent_code: string }>(`/agents/${code}/revoke`, { reason: 'e2e' });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    await waitForOutput(/\[demo-a1-3\][^\n]*revoked by the platform/, 5000);
    const kickedMs = Date.now() - t0;
    console.log(`# revoked agent disconnected ${kickedMs} ms after the API call`);
    assert.ok(kickedMs < 5000);
    const mark = output.length;
    await new Promise((res) => setTimeout(res, 5000));
    const later = output.slice(mark);
    assert.doesNotMatch(later, /\[demo-a1-3\][^\n]*connected to controller/, 'it did not get back in');
    assert.match(later, /agent connection refused[^\n]*revoked/, 'its reconnection attempts are refused');
    const view = await api.get<{ agents: { agent_code: string; status: string }[] }>(
      `/agents?refresh=true&q=${code}`,
    );
    assert.notEqual(view.body.agents.find((a) => a.agent_code === code)?.status, 'online');
  });

  it('stops everything on SIGINT: exit 0, no process of the demo left, data kept', async () => {
    assert.ok(demo);
    const before = processesUsing(dataDir).length;
    assert.ok(
      before >= 1 + 1 + 3 + 6 + 12,
      `expected the whole demo to run over ${dataDir}, found ${before} processes`,
    );
    const t0 = Date.now();
    demo.kill('SIGINT');
    let timer: NodeJS.Timeout | undefined;
    const result = await Promise.race([
      exited,
      new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), 60_000))),
    ]);
    clearTimeout(timer);
    assert.notEqual(result, 'timeout', `demo did not exit within 60 s after SIGINT:\n${output.slice(-4000)}`);
    assert.deepEqual(result, { code: 0, signal: null }, output.slice(-4000));
    console.log(`# stopped ${((Date.now() - t0) / 1000).toFixed(1)} s after SIGINT`);
    await new Promise((r) => setTimeout(r, 500));
    const left = processesUsing(dataDir);
    assert.deepEqual(
      left,
      [],
      `processes left over:\n${left.map((p) => `${p.pid} ${p.cmdline}`).join('\n')}`,
    );
    assert.match(output, /demo stopped/);
    assert.ok(readdirSync(join(dataDir, 'etcd')).length > 0, 'etcd data kept');
    assert.throws(() => readFileSync(join(dataDir, 'demo.lock')), /ENOENT/, 'lock removed');
  });
});
