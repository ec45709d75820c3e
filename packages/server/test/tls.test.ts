/**
 * TLS on every hop, with real processes: etcd with TLS, client certificates required and its own
 * users and roles; the platform server over HTTPS holding the built-in CA; two controllers
 * (HTTPS, wss, mutual TLS for agents) and agents authenticating by certificate only.
 *
 * - wrong CA and plain HTTP are refused (server, controller, etcd);
 * - an agent without a certificate, or with one of another CA, is refused by the controller;
 * - an agent with a certificate in the last third of its life renews it over its socket
 *   (controller → etcd → server signs → etcd → controller → agent);
 * - a revoked agent is disconnected within 5 s, stays out, and comes back once reinstated;
 * - a controller's certificate is replaced on disk and served without a restart, agents stay;
 * - the CA is rotated without downtime: both CAs trusted meanwhile, an agent renews into the new
 *   one (and learns the new bundle), controllers switch to new-CA certificates, agents stay.
 */
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { after, before, describe, it } from 'node:test';
import WebSocket from 'ws';
import { tlsFetch } from '@opsplane/fleet';
import { CertificateAuthority, certInfo, initCa } from '@opsplane/pki';
import {
  sleep,
  startEtcd,
  startFleet,
  tempDir,
  waitFor,
  type EtcdHandle,
  type Fleet,
} from '@opsplane/test-support';
import { serverConfigFrom, startServer, type RunningServer } from '../src/index.js';
import { hashPassword } from '../src/security/passwords.js';
import { TEST_MASTER_KEY, testLogger, tokenFor } from './helpers.js';

/** The peer certificate's serial of a fresh TLS connection to `url`. */
function servedSerial(url: string, ca: string): Promise<string> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const s = tlsConnect({ host: u.hostname, port: Number(u.port), ca, servername: 'localhost' }, () => {
      resolve(s.getPeerCertificate().serialNumber.toLowerCase());
      s.end();
    });
    s.on('error', reject);
  });
}

/** A WebSocket upgrade to the agent socket: resolves with the HTTP status it was refused with, or 101. */
function tryAgentSocket(
  url: string,
  opts: { ca: string; cert?: string; key?: string; headers?: Record<string, string> },
): Promise<number | string> {
  return new Promise((resolve) => {
    const ws = new WebSocket(`${url.replace(/^https/, 'wss')}/api/v1/agents/connect`, {
      ca: opts.ca,
      ...(opts.cert ? { cert: opts.cert, key: opts.key } : {}),
      headers: opts.headers ?? {},
      handshakeTimeout: 5000,
    });
    ws.on('upgrade', () => {
      ws.terminate();
      resolve(101);
    });
    ws.on('unexpected-response', (_req, res) => {
      resolve(res.statusCode ?? 0);
      ws.terminate();
    });
    ws.on('error', (e) => resolve(e.message));
  });
}

describe(
  'TLS everywhere (etcd with client certificates and users, HTTPS server, mutual TLS agents)',
  {
    timeout: 240_000,
  },
  () => {
    let dir: { path: string; cleanup: () => Promise<void> };
    let caDir = '';
    let ca = '';
    let etcd: EtcdHandle;
    let server: RunningServer;
    let serverConfig: ReturnType<typeof serverConfigFrom>;
    let fleet: Fleet;
    let fetchCa: typeof fetch;
    let adminToken = '';

    const api = async <T = unknown>(method: string, path: string, body?: unknown) => {
      const res = await fetchCa(`${server.url}/api/v1${path}`, {
        method,
        headers: {
          authorization: `Bearer ${adminToken}`,
          ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
        },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        signal: AbortSignal.timeout(30_000),
      });
      const text = await res.text();
      return { status: res.status, body: (text ? JSON.parse(text) : undefined) as T };
    };

    before(async () => {
      dir = await tempDir('opsplane-tls-');
      caDir = join(dir.path, 'ca');
      await initCa(caDir);
      ca = readFileSync(join(caDir, 'ca-bundle.crt'), 'utf8');
      fetchCa = tlsFetch({ ca });
      etcd = await startEtcd({ tls: { caDir }, auth: true });
      const access = etcd.access('server');
      assert.ok(access?.username && access.password);
      const serverCert = await (
        await CertificateAuthority.load(caDir)
      ).issue({
        kind: 'server',
        name: 'platform',
        area: '',
      });
      await writeFile(join(dir.path, 'server.crt'), serverCert.certPem);
      await writeFile(join(dir.path, 'server.key'), serverCert.keyPem, { mode: 0o600 });
      serverConfig = serverConfigFrom({
        etcd: {
          endpoints: etcd.endpoints,
          username: access.username,
          password: access.password,
          tls: { ca_file: access.tls.ca, cert_file: access.tls.cert, key_file: access.tls.key },
        },
        server: {
          listen: '127.0.0.1:0',
          data_dir: join(dir.path, 'server'),
          database_url: 'memory://',
          agents_refresh_interval: '1s',
          tls: { cert: join(dir.path, 'server.crt'), key: join(dir.path, 'server.key') },
          pki: { ca_dir: caDir },
        },
      });
      await bootServer();
      fleet = await startFleet({
        etcd,
        tls: { caDir },
        areas: [{ name: 'area-1', controllers: 2, agents: 2 }],
        controllerConfig: { tls: { reload_interval: '300ms' } },
        agentConfig: { tls: { renew_check_interval: '500ms' } },
      });
    });

    /** Starts (or restarts) the server on the same configuration, with an admin token. */
    async function bootServer(): Promise<void> {
      server = await startServer(serverConfig, {
        logger: testLogger(),
        adminPassword: 'admin-tls-test',
        masterKey: TEST_MASTER_KEY,
        printSecret: () => undefined,
      });
      const admin = await server.store.users.create({
        username: 'tls-admin',
        role: 'admin',
        passwordHash: await hashPassword('correct-horse-battery'),
      });
      adminToken = (await tokenFor(server, admin.id, 'admin')).token as string;
    }

    after(async () => {
      await fleet?.stop();
      await server?.stop();
      await etcd?.stop();
      await dir?.cleanup();
    });

    it('serves HTTPS verified against the CA; a wrong CA and plain HTTP are refused everywhere', async () => {
      assert.match(server.url, /^https:\/\//);
      const ok = await fetchCa(`${server.url}/healthz`);
      assert.equal(ok.status, 200);
      const other = await CertificateAuthority.create();
      const wrong = tlsFetch({ ca: other.certPem });
      const ctrl = fleet.controllers[0];
      assert.ok(ctrl);
      assert.match(ctrl.url, /^https:\/\//);
      for (const url of [server.url, ctrl.url]) {
        await assert.rejects(wrong(`${url}/healthz`), `${url} with a wrong CA`);
        await assert.rejects(
          fetch(`${url.replace('https:', 'http:')}/healthz`, { signal: AbortSignal.timeout(5000) }),
          `plain HTTP to ${url}`,
        );
      }
      // etcd: plain HTTP and TLS without a client certificate are refused.
      const etcdUrl = etcd.endpoints[0] ?? '';
      await assert.rejects(
        fetch(`${etcdUrl.replace('https:', 'http:')}/version`, { signal: AbortSignal.timeout(5000) }),
      );
      const noClientCert = await fetchCa(`${etcdUrl}/version`).then(
        (r) => r.status,
        () => 'refused',
      );
      assert.notEqual(noClientCert, 200, 'etcd requires a client certificate');
      // The platform reaches the controllers over HTTPS (verified against the same CA).
      await waitFor(
        async () => {
          const r = await api<{ agents: { status: string }[] }>('GET', '/agents?refresh=true');
          return r.status === 200 && r.body.agents.filter((a) => a.status === 'online').length === 2;
        },
        { timeoutMs: 20_000, intervalMs: 300, what: 'the server to list both agents over https' },
      );
    });

    it('the controller refuses agents without a certificate, with one of another CA, or with a token it does not take', async () => {
      const ctrl = fleet.controllers[0];
      assert.ok(ctrl);
      const headers = { 'x-opsplane-agent-code': 'area-1-agent-1', 'x-opsplane-area': 'area-1' };
      assert.equal(await tryAgentSocket(ctrl.url, { ca, headers }), 401);
      const other = await CertificateAuthority.create();
      const foreign = await other.issue({ kind: 'agent', name: 'area-1-agent-1', area: 'area-1' });
      assert.equal(
        await tryAgentSocket(ctrl.url, { ca, cert: foreign.certPem, key: foreign.keyPem, headers }),
        401,
      );
      // A controller certificate is not an agent's.
      const own = await (
        await CertificateAuthority.load(caDir)
      ).issue({ kind: 'controller', name: 'x', area: 'area-1' });
      assert.equal(await tryAgentSocket(ctrl.url, { ca, cert: own.certPem, key: own.keyPem }), 401);
      // An agent of the CA from another area.
      const elsewhere = await (
        await CertificateAuthority.load(caDir)
      ).issue({ kind: 'agent', name: 'a-9', area: 'area-9' });
      assert.equal(
        await tryAgentSocket(ctrl.url, { ca, cert: elsewhere.certPem, key: elsewhere.keyPem }),
        401,
      );
      // The agent does not trust a controller whose certificate comes from another CA.
      const good = await (
        await CertificateAuthority.load(caDir)
      ).issue({ kind: 'agent', name: 'a-8', area: 'area-1' });
      const r = await tryAgentSocket(ctrl.url, { ca: other.certPem, cert: good.certPem, key: good.keyPem });
      assert.match(String(r), /certificate|self.signed|verify/i);
    });

    it('an agent renews its certificate over the control channel, signed by the platform', async () => {
      const agent = fleet.agents[0];
      assert.ok(agent);
      await agent.stop();
      // Give it a certificate that is already in the last third of its life.
      const short = await (
        await CertificateAuthority.load(caDir)
      ).issue({
        kind: 'agent',
        name: agent.code,
        area: agent.area,
        lifetimeMs: 90_000,
      });
      await writeFile(join(agent.dir, 'tls', 'agent.crt'), short.certPem);
      await writeFile(join(agent.dir, 'tls', 'agent.key'), short.keyPem, { mode: 0o600 });
      await agent.start();
      const renewed = join(agent.dataDir, 'tls', 'agent.crt');
      await waitFor(() => existsSync(renewed), {
        timeoutMs: 20_000,
        intervalMs: 100,
        what: 'a renewed certificate',
      });
      const info = certInfo(readFileSync(renewed, 'utf8'));
      assert.deepEqual(info.identity, { kind: 'agent', name: agent.code, area: agent.area });
      assert.ok(info.notAfter.getTime() > Date.now() + 29 * 86_400_000, 'a fresh 30-day certificate');
      assert.ok(new X509Certificate(readFileSync(renewed)).verify(new X509Certificate(ca).publicKey));
      // The next connection uses it.
      await agent.stop();
      await agent.start();
      const certs = await api<{ certificates: { name: string; source: string; serial: string }[] }>(
        'GET',
        '/certificates',
      );
      assert.equal(certs.status, 200);
      const rec = certs.body.certificates.find((c) => c.name === agent.code);
      assert.equal(rec?.source, 'renewal');
      assert.equal(rec?.serial, info.serial);
    });

    it('a revoked agent is disconnected within 5 s, stays out, and is let back in once reinstated', async () => {
      const agent = fleet.agents[1];
      assert.ok(agent);
      await fleet.waitOnline(agent);
      const t0 = Date.now();
      const r = await api<{ agent_code: string }>('POST', `/agents/${agent.code}/revoke`, {
        reason: 'stolen host',
      });
      assert.equal(r.status, 200, JSON.stringify(r.body));
      await waitFor(async () => (await agent.connectedController()) === undefined, {
        timeoutMs: 5000,
        intervalMs: 50,
        what: 'the revoked agent to be disconnected',
      });
      const kickedMs = Date.now() - t0;
      assert.ok(kickedMs < 5000, `kicked after ${kickedMs} ms`);
      // It keeps trying (both controllers) and is refused every time.
      await sleep(4000);
      assert.equal(await agent.connectedController(), undefined, 'still out');
      assert.equal(await fleet.holderOf(agent.code), undefined);
      assert.match(agent.process.output(), /revoked by the platform/);
      const list = await api<{ revocations: { agent_code: string; reason: string }[] }>(
        'GET',
        '/revocations',
      );
      assert.deepEqual(
        list.body.revocations.map((x) => [x.agent_code, x.reason]),
        [[agent.code, 'stolen host']],
      );
      const del = await fetchCa(`${server.url}/api/v1/revocations/agents/${agent.code}`, {
        method: 'DELETE',
        headers: { authorization: `Bearer ${adminToken}` },
      });
      assert.equal(del.status, 204);
      await fleet.waitOnline(agent, 15_000);
      const audit = await api<{ entries: { action: string; target_id: string; result: string }[] }>(
        'GET',
        `/audit?target_id=${agent.code}`,
      );
      assert.deepEqual(audit.body.entries.map((e) => `${e.action}:${e.result}`).sort(), [
        'agent.reinstate:success',
        'agent.revoke:success',
      ]);
    });

    it('a controller serves a replaced certificate without a restart; its agents stay connected', async () => {
      const ctrl = fleet.controllers[0];
      assert.ok(ctrl);
      const holder = await Promise.all(
        fleet.agents.map(async (a) => [a, await fleet.holderOf(a.code)] as const),
      );
      const before = await servedSerial(ctrl.url, ca);
      const next = await (
        await CertificateAuthority.load(caDir)
      ).issue({
        kind: 'controller',
        name: ctrl.id,
        area: ctrl.area,
      });
      const tlsDir = join(ctrl.configPath, '..', 'tls');
      await writeFile(join(tlsDir, 'controller.key'), next.keyPem, { mode: 0o600 });
      await writeFile(join(tlsDir, 'controller.crt'), next.certPem);
      await waitFor(async () => (await servedSerial(ctrl.url, ca)) === next.serial, {
        timeoutMs: 10_000,
        intervalMs: 100,
        what: 'the new certificate to be served',
      });
      assert.notEqual(before, next.serial);
      assert.equal(ctrl.process.running, true);
      for (const [a, c] of holder)
        assert.equal((await fleet.holderOf(a.code))?.id, c?.id, `${a.code} stayed`);
    });

    it('rotates the CA without downtime: both trusted meanwhile, agents renew into the new one', async () => {
      const oldCa = await CertificateAuthority.load(caDir);
      const agent = fleet.agents[0];
      const other = fleet.agents[1];
      assert.ok(agent && other);
      await fleet.waitOnline(other);
      const otherHolder = (await fleet.holderOf(other.code))?.id;
      // 1. A new CA; the bundle holds both. The server signs with the new key from its next start.
      const r = await initCa(caDir, { rotate: true });
      assert.equal(r.rotated, true);
      const bundle = readFileSync(r.bundlePath, 'utf8');
      const newCa = await CertificateAuthority.load(caDir);
      await server.stop();
      await bootServer();
      // 2. Controllers trust both for agents' certificates (files reloaded, no restart).
      for (const c of fleet.controllers) await writeFile(join(c.configPath, '..', 'tls', 'ca.crt'), bundle);
      await sleep(1000);
      // 3. An agent renews: its new certificate is from the new CA, and it learns the bundle.
      await agent.stop();
      const short = await oldCa.issue({
        kind: 'agent',
        name: agent.code,
        area: agent.area,
        lifetimeMs: 90_000,
      });
      await writeFile(join(agent.dir, 'tls', 'agent.crt'), short.certPem);
      await writeFile(join(agent.dir, 'tls', 'agent.key'), short.keyPem, { mode: 0o600 });
      // The earlier renewal would win over the short certificate: start from the short one.
      const renewed = join(agent.dataDir, 'tls', 'agent.crt');
      await rm(renewed, { force: true });
      await agent.start();
      await waitFor(() => existsSync(renewed), {
        timeoutMs: 20_000,
        intervalMs: 100,
        what: 'a renewal by the new CA',
      });
      const leaf = new X509Certificate(readFileSync(renewed));
      assert.ok(leaf.verify(new X509Certificate(newCa.certPem).publicKey), 'signed by the new CA');
      assert.equal(readFileSync(join(agent.dataDir, 'tls', 'ca.crt'), 'utf8'), bundle);
      // 4. Controllers switch to certificates of the new CA.
      for (const c of fleet.controllers) {
        const next = await newCa.issue({ kind: 'controller', name: c.id, area: c.area });
        const dirTls = join(c.configPath, '..', 'tls');
        await writeFile(join(dirTls, 'controller.key'), next.keyPem, { mode: 0o600 });
        await writeFile(join(dirTls, 'controller.crt'), next.certPem);
        await waitFor(async () => (await servedSerial(c.url, bundle)) === next.serial, {
          timeoutMs: 10_000,
          intervalMs: 100,
          what: `${c.id} to serve its new-CA certificate`,
        });
      }
      // The renewed agent reconnects to a new-CA controller (it trusts both now) ...
      await agent.stop();
      await agent.start();
      await fleet.waitOnline(agent, 15_000);
      // ... and the agent that did nothing kept its connection throughout.
      assert.equal((await fleet.holderOf(other.code))?.id, otherHolder, 'no downtime for connected agents');
    });
  },
);
