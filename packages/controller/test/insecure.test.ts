/**
 * F5 of issue 15 (open controller), with the real daemon (`opsplane controller`) against a real
 * etcd: without an API token it does not start; with `--insecure-no-token` it starts open and
 * says so (a warning at start, repeated, and a metric); with a token, a batch restart without
 * it is a 401.
 */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import {
  freePort,
  spawnTracked,
  startEtcd,
  waitFor,
  type EtcdHandle,
  type TrackedProcess,
} from '@opsplane/test-support';
import { parseControllerConfig, startController } from '../src/index.js';
import { SECRET } from './support/harness.js';

const CLI = fileURLToPath(new URL('../../../cli/dist/src/main.js', import.meta.url));
const TOKEN = 'insecure-test-token-0123456789';
const BATCH = JSON.stringify({ agents: ['agent-1'], packages: ['web'] });

let etcd: EtcdHandle;
const daemons: TrackedProcess[] = [];

before(async () => {
  etcd = await startEtcd();
});
after(async () => {
  await Promise.all(daemons.map((d) => d.stop()));
  await etcd?.stop();
});

async function daemon(args: string[], env: Record<string, string> = {}) {
  const port = await freePort();
  const proc = spawnTracked(
    'controller',
    process.execPath,
    [
      CLI,
      'controller',
      '--area',
      'area-1',
      '--listen',
      `127.0.0.1:${port}`,
      '--etcd',
      etcd.endpoints.join(','),
      ...args,
    ],
    { env: { ...process.env, OPSPLANE_AGENT_SECRET: SECRET, OPSPLANE_LOG_LEVEL: 'info', ...env } },
  );
  daemons.push(proc);
  return { proc, url: `http://127.0.0.1:${port}` };
}

const metric = async (url: string) =>
  /^opsplane_controller_insecure_no_token (\d)/m.exec(await (await fetch(`${url}/metrics`)).text())?.[1];

const batchRestart = (url: string, headers: Record<string, string> = {}) =>
  fetch(`${url}/api/v1/agents/batch/restart`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: BATCH,
  });

describe('controller API token', { timeout: 60_000 }, () => {
  it('does not start without an API token, and says how to', async () => {
    const { proc } = await daemon([]);
    const exit = await proc.exited;
    assert.equal(exit.code, 2);
    assert.match(proc.output(), /api_token is required/);
    assert.match(proc.output(), /OPSPLANE_CONTROLLER_TOKEN/);
    assert.match(proc.output(), /--insecure-no-token/);
  });

  it('with --insecure-no-token it starts open, warns loudly and exposes it as a metric', async () => {
    const { proc, url } = await daemon(['--insecure-no-token']);
    await proc.waitForOutput('listening on', 20_000);
    await proc.waitForOutput('INSECURE', 5_000);
    assert.match(
      proc.output(),
      /"level":40[^\n]*INSECURE: the controller API at http:\/\/127\.0\.0\.1:\d+ has no api_token/,
    );
    assert.equal(await metric(url), '1');
    // Open: a batch restart needs no credentials (what the flag says).
    assert.equal((await batchRestart(url)).status, 200);
  });

  it('with a token, a batch restart without it is 401; with it, it runs; the metric says 0', async () => {
    const { proc, url } = await daemon([], { OPSPLANE_CONTROLLER_TOKEN: TOKEN });
    await proc.waitForOutput('listening on', 20_000);
    assert.doesNotMatch(proc.output(), /INSECURE/);
    assert.equal(await metric(url), '0');
    const denied = await batchRestart(url);
    assert.equal(denied.status, 401);
    assert.equal(((await denied.json()) as { error: { code: string } }).error.code, 'unauthorized');
    assert.equal((await batchRestart(url, { authorization: 'Bearer wrong' })).status, 401);
    assert.equal((await batchRestart(url, { authorization: `Bearer ${TOKEN}` })).status, 200);
  });

  it('repeats the warning while it runs open', async () => {
    const lines: string[] = [];
    const logger = pino(
      { level: 'warn' },
      new Writable({
        write(c: Buffer, _e, done) {
          lines.push(c.toString());
          done();
        },
      }),
    );
    const config = parseControllerConfig({
      area: 'area-1',
      listen: '127.0.0.1:0',
      agent_secret: SECRET,
      insecure_no_token: true,
      lease_ttl: '3s',
      refresh_interval: '1s',
      etcd: { endpoints: etcd.endpoints, dial_timeout: '3s' },
    });
    assert.equal(config.insecureNoToken, true);
    const ctrl = await startController(config, {
      logger,
      processMetrics: false,
      insecureWarnIntervalMs: 100,
    });
    try {
      await waitFor(() => lines.filter((l) => l.includes('INSECURE')).length >= 3, {
        timeoutMs: 5_000,
        intervalMs: 20,
        what: 'repeated warnings',
      });
    } finally {
      await ctrl.stop();
    }
    // A token wins over the flag: the API is closed and nothing warns.
    const closed = parseControllerConfig({
      area: 'a',
      agent_secret: SECRET,
      api_token: TOKEN,
      insecure_no_token: true,
    });
    assert.equal(closed.insecureNoToken, false);
    assert.throws(() => parseControllerConfig({ area: 'a', agent_secret: SECRET }), /api_token is required/);
  });
});
