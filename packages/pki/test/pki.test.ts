/** The built-in CA: CA dirs, leaf certificates Node's TLS accepts (mutual TLS), CSRs, rotation. */
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, createServer, type TLSSocket } from 'node:tls';
import { after, before, describe, it } from 'node:test';
import {
  CertificateAuthority,
  certInfo,
  createCsr,
  csrCommonName,
  identityOf,
  initCa,
  issueToFiles,
  renewalDue,
  splitPemBundle,
} from '../src/index.js';

/** One TLS handshake: server with `server`, client trusting `clientCa` and presenting `client`. */
async function handshake(
  server: { cert: string; key: string; ca: string },
  client: { ca: string; cert?: string; key?: string },
): Promise<{ ok: boolean; error?: string; peer?: string }> {
  const srv = createServer({ ...server, requestCert: true, rejectUnauthorized: false }, (s: TLSSocket) => {
    const peer = s.getPeerCertificate();
    s.end(s.authorized ? `ok ${peer.subjectaltname ?? ''}` : `unauthorized ${String(s.authorizationError)}`);
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as { port: number }).port;
  try {
    return await new Promise((resolve) => {
      const c = connect({ host: '127.0.0.1', port, servername: 'localhost', ...client });
      let data = '';
      c.on('data', (d) => (data += d));
      c.on('end', () => resolve({ ok: true, peer: data }));
      c.on('error', (e) => resolve({ ok: false, error: e.message }));
    });
  } finally {
    srv.close();
  }
}

describe('pki', () => {
  let dir = '';
  let ca: CertificateAuthority;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'opsplane-pki-'));
    const r = await initCa(join(dir, 'ca'));
    assert.equal(r.created, true);
    ca = await CertificateAuthority.load(join(dir, 'ca'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('ca init writes the key 0600 and keeps an existing CA', async () => {
    assert.equal((await stat(join(dir, 'ca', 'ca.key'))).mode & 0o777, 0o600);
    const again = await initCa(join(dir, 'ca'));
    assert.equal(again.created, false);
    const x = new X509Certificate(ca.certPem);
    assert.equal(x.ca, true);
  });

  it('issues short-lived P-256 leaves with the identity URI; Node TLS accepts them both ways', async () => {
    const server = await ca.issue({ kind: 'controller', name: 'ctrl-1', area: 'area-1' });
    const agent = await ca.issue({ kind: 'agent', name: 'agt-1', area: 'area-1' });
    const info = certInfo(agent.certPem);
    assert.deepEqual(info.identity, { kind: 'agent', name: 'agt-1', area: 'area-1' });
    const days = (info.notAfter.getTime() - Date.now()) / 86_400_000;
    assert.ok(days > 29.9 && days <= 30, `agent cert lives ${days} days`);
    assert.equal(new X509Certificate(agent.certPem).publicKey.asymmetricKeyDetails?.namedCurve, 'prime256v1');
    const r = await handshake(
      { cert: server.certPem, key: server.keyPem, ca: ca.bundlePem },
      { ca: ca.bundlePem, cert: agent.certPem, key: agent.keyPem },
    );
    assert.equal(r.ok, true, r.error);
    assert.match(r.peer ?? '', /^ok .*urn:opsplane:agent:area-1:agt-1/);
  });

  it('a client trusting another CA refuses the server', async () => {
    const other = await CertificateAuthority.create();
    const server = await ca.issue({ kind: 'server', name: 'srv', area: '' });
    const r = await handshake(
      { cert: server.certPem, key: server.keyPem, ca: ca.bundlePem },
      { ca: other.certPem },
    );
    assert.equal(r.ok, false);
    assert.match(r.error ?? '', /self.signed|unable to verify|certificate/i);
  });

  it('signs a CSR with the name the caller gives, refusing a tampered one', async () => {
    const { keyPem, csrPem } = await createCsr('agt-2');
    assert.equal(await csrCommonName(csrPem), 'agt-2');
    const signed = await ca.signCsr(csrPem, { kind: 'agent', name: 'agt-2', area: 'area-2' });
    assert.deepEqual(identityOf(signed.certPem), { kind: 'agent', name: 'agt-2', area: 'area-2' });
    assert.equal(
      new X509Certificate(signed.certPem).checkPrivateKey(
        (await import('node:crypto')).createPrivateKey(keyPem),
      ),
      true,
    );
    const bad = csrPem.replace(/[A-Za-z](?=[A-Za-z0-9+/=]*\n-----END)/, (c) => (c === 'A' ? 'B' : 'A'));
    await assert.rejects(ca.signCsr(bad, { kind: 'agent', name: 'agt-2', area: 'area-2' }));
  });

  it('renewal is due in the last third of a lifetime', async () => {
    const short = await ca.issue({ kind: 'agent', name: 'agt-3', area: 'a', lifetimeMs: 60_000 });
    assert.equal(renewalDue(short.certPem), true, 'the 5 min backdate makes a 1-minute cert due at once');
    const long = await ca.issue({ kind: 'agent', name: 'agt-3', area: 'a' });
    assert.equal(renewalDue(long.certPem), false);
  });

  it('rotation keeps the old CA in the bundle: old and new leaves are both trusted', async () => {
    const caDir = join(dir, 'rot');
    await initCa(caDir);
    const oldCa = await CertificateAuthority.load(caDir);
    const oldLeaf = await issueToFiles(caDir, join(dir, 'out'), 'agent-old', {
      kind: 'agent',
      name: 'a1',
      area: 'x',
    });
    const r = await initCa(caDir, { rotate: true });
    assert.equal(r.rotated, true);
    const newCa = await CertificateAuthority.load(caDir);
    assert.notEqual(newCa.certPem, oldCa.certPem);
    assert.equal(splitPemBundle(newCa.bundlePem).length, 2);
    const server = await newCa.issue({ kind: 'controller', name: 'c', area: 'x' });
    const newLeaf = await newCa.issue({ kind: 'agent', name: 'a2', area: 'x' });
    for (const leaf of [oldLeaf.issued, newLeaf]) {
      const res = await handshake(
        { cert: server.certPem, key: server.keyPem, ca: newCa.bundlePem },
        { ca: newCa.bundlePem, cert: leaf.certPem, key: leaf.keyPem },
      );
      assert.match(res.peer ?? res.error ?? '', /^ok /);
    }
  });
});
