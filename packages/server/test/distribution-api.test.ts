/**
 * Distribution's API against a real server (PGlite): artifacts — upload, list, get, content with
 * Range, delete; bad archives and manifests refused with their codes and nothing stored; the
 * server's signature verifies under the published key; an upload signed by a trusted key kept
 * with its signature, a bad one refused; the size limit. Policies — create, change (a revision
 * each, staged or applied), revisions, audit before/after, delete; artifact_in_use. Policy
 * rollouts without agents succeed at once and apply a staged revision; pause/resume/cancel
 * transitions and the event stream.
 */
import assert from 'node:assert/strict';
import { gzipSync } from 'node:zlib';
import { after, before, describe, it } from 'node:test';
import { verifyArtifactSignature, type ArtifactRef } from '@opsplane/models';
import { createArtifactSigner, packageArchive, signArtifact, waitFor } from '@opsplane/test-support';
import type {
  Artifact,
  ArtifactKeysResponse,
  ArtifactListResponse,
  AuditListResponse,
  Policy,
  PolicyRevisionList,
  PolicyRollout,
} from '@opsplane/api';
import { writeTarGz } from '@opsplane/kit';
import { startTestServer, type Auth, type TestServer } from './helpers.js';

const trusted = createArtifactSigner();

function pkg(name: string, version: string, extra: Record<string, string> = {}): Buffer {
  return packageArchive({
    manifest: `name: ${name}\nversion: ${version}\ncommand: bin/run.sh\n${Object.entries(extra)
      .map(([k, v]) => `${k}: ${v}\n`)
      .join('')}`,
    files: { 'bin/run.sh': { data: '#!/bin/sh\nexec sleep 3600\n', mode: 0o755 } },
    padTo: 3 * 1024 * 1024 + 1234,
  });
}

describe('distribution API', { timeout: 60_000 }, () => {
  let t: TestServer;
  let op: Auth;
  let viewer: Auth;

  const upload = (body: Buffer | Uint8Array, query = 'kind=package', auth: Auth = op) =>
    t.call<Artifact & { error?: { code: string } }>('POST', `/api/v1/artifacts?${query}`, {
      auth,
      body,
      contentType: 'application/gzip',
    });

  before(async () => {
    t = await startTestServer('pglite', {
      server: {
        artifacts: { max_size: 8 * 1024 * 1024, trusted_keys: [trusted.publicKey] },
      },
    });
    op = t.users.operator.token;
    viewer = t.users.viewer.token;
  });
  after(async () => {
    await t?.stop();
  });

  it('stores, lists, serves (with Range) and deletes an artifact signed with the published key', async () => {
    const bytes = pkg('web-app', '1.0.0');
    const up = await upload(bytes);
    assert.equal(up.status, 201, up.text);
    const a = up.json;
    assert.equal(a.size, bytes.length);
    assert.equal(a.name, 'web-app');
    assert.equal(a.version, '1.0.0');
    assert.equal(a.signed_by, 'server');
    assert.equal(a.command, 'bin/run.sh');

    // The same bytes again: the stored one.
    const again = await upload(bytes);
    assert.equal(again.status, 200);
    assert.equal(again.json.sha256, a.sha256);

    const keys = await t.call<ArtifactKeysResponse>('GET', '/api/v1/artifacts/keys', { auth: viewer });
    assert.equal(keys.status, 200);
    const own = keys.json.keys.filter((k) => k.source === 'server');
    assert.equal(own.length, 1);
    const ref: ArtifactRef = {
      sha256: a.sha256,
      size: a.size,
      kind: a.kind,
      name: a.name,
      version: a.version,
      os: a.os,
      arch: a.arch,
      signature: a.signature,
      key_id: a.key_id,
    };
    assert.deepEqual(verifyArtifactSignature(ref, [own[0]!.key]), { ok: true });
    // Relabelled, the signature no longer holds.
    assert.equal(verifyArtifactSignature({ ...ref, version: '2.0.0' }, [own[0]!.key]).ok, false);

    const list = await t.call<ArtifactListResponse>('GET', '/api/v1/artifacts?name=web-app', {
      auth: viewer,
    });
    assert.equal(list.status, 200);
    assert.deepEqual(
      list.json.items.map((x) => x.sha256),
      [a.sha256],
    );
    const one = await t.call<Artifact>('GET', `/api/v1/artifacts/${a.sha256}`, { auth: viewer });
    assert.equal(one.status, 200);
    assert.equal(one.json.signature, a.signature);

    const whole = await fetch(`${t.url}/api/v1/artifacts/${a.sha256}/content`, {
      headers: { authorization: `Bearer ${viewer.token}` },
    });
    assert.equal(whole.status, 200);
    assert.ok(Buffer.from(await whole.arrayBuffer()).equals(bytes));
    // A range across the 1 MiB chunk boundary, and an open-ended one.
    const from = 1024 * 1024 - 10;
    const part = await fetch(`${t.url}/api/v1/artifacts/${a.sha256}/content`, {
      headers: { authorization: `Bearer ${viewer.token}`, range: `bytes=${from}-${from + 99}` },
    });
    assert.equal(part.status, 206);
    assert.equal(part.headers.get('content-range'), `bytes ${from}-${from + 99}/${bytes.length}`);
    assert.ok(Buffer.from(await part.arrayBuffer()).equals(bytes.subarray(from, from + 100)));
    const tail = await fetch(`${t.url}/api/v1/artifacts/${a.sha256}/content`, {
      headers: { authorization: `Bearer ${viewer.token}`, range: `bytes=${bytes.length - 5}-` },
    });
    assert.equal(tail.status, 206);
    assert.ok(Buffer.from(await tail.arrayBuffer()).equals(bytes.subarray(bytes.length - 5)));
    const beyond = await fetch(`${t.url}/api/v1/artifacts/${a.sha256}/content`, {
      headers: { authorization: `Bearer ${viewer.token}`, range: `bytes=${bytes.length}-` },
    });
    assert.equal(beyond.status, 416);

    // Viewers read but do not change.
    assert.equal((await upload(pkg('web-app', '1.0.1'), 'kind=package', viewer)).status, 403);
    assert.equal((await t.call('DELETE', `/api/v1/artifacts/${a.sha256}`, { auth: viewer })).status, 403);
    const del = await t.call('DELETE', `/api/v1/artifacts/${a.sha256}`, { auth: op });
    assert.equal(del.status, 204, del.text);
    assert.equal((await t.call('GET', `/api/v1/artifacts/${a.sha256}`, { auth: viewer })).status, 404);
    const audit = await t.call<AuditListResponse>('GET', '/api/v1/audit?action=artifact.upload', {
      auth: t.users.admin.token,
    });
    assert.ok(audit.json.entries.some((e) => e.target_id === a.sha256 && e.result === 'success'));
  });

  it('refuses bad archives and manifests with their codes, storing nothing', async () => {
    const before = await t.call<ArtifactListResponse>('GET', '/api/v1/artifacts', { auth: viewer });
    const cases: [string, Buffer, string, number][] = [
      ['not gzip', Buffer.from('plain text, not an archive'), 'artifact_invalid', 400],
      ['gzip of garbage', gzipSync(Buffer.from('x'.repeat(700))), 'artifact_invalid', 400],
      [
        'no package.yaml',
        writeTarGz([{ path: 'README', type: 'file', data: Buffer.from('no manifest here') }]),
        'artifact_manifest_invalid',
        400,
      ],
      ['bad name', pkg('../etc', '1.0.0'), 'artifact_manifest_invalid', 400],
      ['bad version', pkg('ok-name', '1..0'), 'artifact_manifest_invalid', 400],
      [
        'missing command file',
        packageArchive({ manifest: 'name: nocmd\nversion: 1.0.0\ncommand: bin/missing.sh\n' }),
        'artifact_manifest_invalid',
        400,
      ],
      [
        'no command',
        packageArchive({ manifest: 'name: nocmd\nversion: 1.0.0\n' }),
        'artifact_manifest_invalid',
        400,
      ],
      ['yaml error', packageArchive({ manifest: 'name: [unclosed\n' }), 'artifact_manifest_invalid', 400],
      ['not an agent bundle', pkg('agentish', '1.0.0'), 'artifact_invalid', 400],
    ];
    for (const [what, body, code, status] of cases) {
      const r = await upload(body, what === 'not an agent bundle' ? 'kind=agent' : 'kind=package');
      assert.equal(r.status, status, `${what}: ${r.text}`);
      assert.equal((r.json as { error: { code: string } }).error.code, code, `${what}: ${r.text}`);
    }
    // Too large: refused while it streams in.
    const big = await upload(
      packageArchive({ manifest: 'name: big\nversion: 1.0.0\ncommand: /bin/true\n', padTo: 9 * 1024 * 1024 }),
    );
    assert.equal(big.status, 413, big.text);
    assert.equal((big.json as { error: { code: string } }).error.code, 'artifact_too_large');
    const after = await t.call<ArtifactListResponse>('GET', '/api/v1/artifacts', { auth: viewer });
    assert.equal(after.json.total, before.json.total);
  });

  it('keeps an upload signed by a trusted key and refuses a bad or unknown signature', async () => {
    const bytes = pkg('signed-app', '2.0.0');
    const ref = signArtifact(trusted, bytes, { name: 'signed-app', version: '2.0.0' });
    const sig = encodeURIComponent(ref.signature);
    // Signed for another version: refused.
    const wrong = signArtifact(trusted, bytes, { name: 'signed-app', version: '9.9.9' });
    const bad = await upload(
      bytes,
      `kind=package&signature=${encodeURIComponent(wrong.signature)}&key_id=${ref.key_id}`,
    );
    assert.equal(bad.status, 400, bad.text);
    assert.equal((bad.json as { error: { code: string } }).error.code, 'artifact_bad_signature');
    const stranger = createArtifactSigner();
    const unknown = signArtifact(stranger, bytes, { name: 'signed-app', version: '2.0.0' });
    const u = await upload(
      bytes,
      `kind=package&signature=${encodeURIComponent(unknown.signature)}&key_id=${unknown.key_id}`,
    );
    assert.equal((u.json as { error: { code: string } }).error.code, 'artifact_untrusted_key');
    const ok = await upload(bytes, `kind=package&signature=${sig}&key_id=${ref.key_id}`);
    assert.equal(ok.status, 201, ok.text);
    assert.equal(ok.json.signed_by, 'uploader');
    assert.equal(ok.json.signature, ref.signature);
    assert.equal(ok.json.key_id, trusted.keyId);
    // Other bytes under the same name and version: versions are immutable.
    const clash = await upload(pkg('signed-app', '2.0.0', { description: 'other' }));
    assert.equal(clash.status, 409, clash.text);
    assert.equal((clash.json as { error: { code: string } }).error.code, 'artifact_version_exists');
  });

  it('keeps policies with a revision per change, audited, and refuses deleting an artifact in use', async () => {
    const up = await upload(pkg('svc', '1.0.0'));
    assert.equal(up.status, 201, up.text);
    assert.equal((await upload(pkg('svc', '1.1.0'))).status, 201);

    const missing = await t.call('POST', '/api/v1/policies', {
      auth: op,
      body: { name: 'web', packages: [{ name: 'svc', version: '7.0.0' }] },
    });
    assert.equal(missing.status, 422, missing.text);
    const badSel = await t.call('POST', '/api/v1/policies', {
      auth: op,
      body: { name: 'web', selector: 'env in (' },
    });
    assert.equal(badSel.status, 400);

    const created = await t.call<Policy>('POST', '/api/v1/policies', {
      auth: op,
      body: {
        name: 'web',
        areas: ['area-1', 'area-2'],
        selector: 'env=prod,role in (web,api)',
        priority: 10,
        packages: [
          { name: 'svc', version: '1.0.0', configs: [{ file_name: 'app.yaml', content: 'a: 1\n' }] },
        ],
      },
    });
    assert.equal(created.status, 201, created.text);
    const p = created.json;
    assert.equal(p.revision, 1);
    assert.equal(p.applied_revision, 1);
    assert.equal((await t.call('POST', '/api/v1/policies', { auth: op, body: { name: 'web' } })).status, 409);

    // A staged change: revision 2, still applied 1.
    const staged = await t.call<Policy>('PATCH', `/api/v1/policies/${p.id}`, {
      auth: op,
      body: { packages: [{ name: 'svc', version: '1.1.0' }], staged: true },
    });
    assert.equal(staged.status, 200, staged.text);
    assert.equal(staged.json.revision, 2);
    assert.equal(staged.json.applied_revision, 1);
    // A change that changes nothing makes no revision.
    const same = await t.call<Policy>('PATCH', `/api/v1/policies/${p.id}`, {
      auth: op,
      body: { priority: 10 },
    });
    assert.equal(same.json.revision, 2);
    // Applied at once.
    const applied = await t.call<Policy>('PATCH', `/api/v1/policies/${p.id}`, {
      auth: op,
      body: { description: 'web tier' },
    });
    assert.equal(applied.json.revision, 3);
    assert.equal(applied.json.applied_revision, 3);
    const revs = await t.call<PolicyRevisionList>('GET', `/api/v1/policies/${p.id}/revisions`, {
      auth: viewer,
    });
    assert.deepEqual(
      revs.json.revisions.map((r) => [r.revision, r.spec.packages[0]?.version]),
      [
        [3, '1.1.0'],
        [2, '1.1.0'],
        [1, '1.0.0'],
      ],
    );
    const audit = await t.call<AuditListResponse>('GET', '/api/v1/audit?action=policy.update', {
      auth: t.users.admin.token,
    });
    const changes = audit.json.entries.filter(
      (e) => e.target_id === p.id && e.result === 'success' && e.changes.length > 0,
    );
    // Newest first: the description, the staged package version (before → after recorded);
    // the change that changed nothing is recorded without changes.
    assert.equal(changes.length, 2, JSON.stringify(changes));
    const pkgChange = changes[1]!.changes.find((c) => c.field === 'packages');
    assert.ok(pkgChange, JSON.stringify(changes[1]));
    assert.match(JSON.stringify(pkgChange.before), /1\.0\.0/);
    assert.match(JSON.stringify(pkgChange.after), /1\.1\.0/);

    // svc 1.0.0 is in revision 1: in use.
    const inUse = await t.call('DELETE', `/api/v1/artifacts/${up.json.sha256}`, { auth: op });
    assert.equal(inUse.status, 409, inUse.text);
    assert.equal((inUse.json as { error: { code: string } }).error.code, 'artifact_in_use');

    // A viewer cannot change it; deleting frees the artifact.
    assert.equal((await t.call('DELETE', `/api/v1/policies/${p.id}`, { auth: viewer })).status, 403);
    assert.equal((await t.call('DELETE', `/api/v1/policies/${p.id}`, { auth: op })).status, 204);
    assert.equal((await t.call('DELETE', `/api/v1/artifacts/${up.json.sha256}`, { auth: op })).status, 204);
  });

  it('rolls a staged revision of a policy without agents out at once; pause, resume and cancel follow their rules', async () => {
    const created = await t.call<Policy>('POST', '/api/v1/policies', {
      auth: op,
      body: { name: 'empty', areas: ['nowhere'], staged: true },
    });
    assert.equal(created.status, 201, created.text);
    assert.equal(created.json.applied_revision, null);
    const r = await t.call<PolicyRollout>('POST', '/api/v1/policy-rollouts', {
      auth: op,
      body: { policy_id: created.json.id, batch_percent: 50 },
    });
    assert.equal(r.status, 202, r.text);
    assert.equal(r.json.counts.total, 0);
    const done = await waitFor(
      async () => {
        const g = await t.call<PolicyRollout>('GET', `/api/v1/policy-rollouts/${r.json.id}`, {
          auth: viewer,
        });
        return g.json.status === 'succeeded' ? g.json : undefined;
      },
      { timeoutMs: 20_000, what: 'empty rollout succeeded' },
    );
    assert.equal(done.revision, 1);
    const p = await t.call<Policy>('GET', `/api/v1/policies/${created.json.id}`, { auth: viewer });
    assert.equal(p.json.applied_revision, 1);
    // Finished: no pause, resume or cancel.
    for (const action of ['pause', 'resume', 'cancel']) {
      const x = await t.call(`POST`, `/api/v1/policy-rollouts/${r.json.id}/${action}`, { auth: op });
      assert.equal(x.status, 409, `${action}: ${x.text}`);
    }
    // The events of a finished rollout: the rollout, then the end.
    const ev = await fetch(`${t.url}/api/v1/policy-rollouts/${r.json.id}/events`, {
      headers: { authorization: `Bearer ${viewer.token}` },
    });
    assert.equal(ev.status, 200);
    const text = await ev.text();
    assert.match(text, /event: rollout\n/);
    assert.match(text, /event: end\n/);
  });
});
