/**
 * The per-area artifact relay over real HTTP, with the platform's ControllerClient as the
 * uploader and agent-token downloads: uploads in parts (offsets checked, the held bytes stated),
 * tampered bytes and bad or untrusted signatures refused and never served, Range resumes,
 * download authentication like the agent socket, the shared bandwidth limit seen in the
 * metrics, LRU eviction, and the desired state handed to a connected agent (its status listed).
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import {
  AGENT_AREA_HEADER,
  AGENT_ARTIFACT_PATH,
  AGENT_CODE_HEADER,
  agentToken,
  type Agent,
  type ArtifactRef,
  type DesiredStateInput,
} from '@opsplane/models';
import {
  ArtifactOffsetMismatchError,
  ControllerClient,
  ControllerHttpError,
  ensureArtifact,
} from '@opsplane/platform';
import {
  createArtifactSigner,
  packageArchive,
  signArtifact,
  startEtcd,
  tempDir,
  waitFor,
  type EtcdHandle,
} from '@opsplane/test-support';
import { ConfigError, parseControllerConfig, type RunningController } from '../src/index.js';
import { FakeAgent } from './support/fake-agent.js';
import { SECRET, getJson, postJson, startTestController, type ErrorBody } from './support/harness.js';

const signer = createArtifactSigner();
const stranger = createArtifactSigner();
const TOKEN = 'relay-test-token';

let etcd: EtcdHandle;
let dir: { path: string; cleanup: () => Promise<void> };
let ctrl: RunningController;
let client: ControllerClient;
const cleanups: (() => Promise<unknown>)[] = [];

function artifact(name: string, version: string, size: number): { bytes: Buffer; ref: ArtifactRef } {
  const bytes = packageArchive({ manifest: `name: ${name}\nversion: ${version}\n`, padTo: size });
  return { bytes, ref: signArtifact(signer, bytes, { name, version }) };
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

function agentHeaders(code: string, area = 'area-1', secret = SECRET): Record<string, string> {
  return {
    [AGENT_CODE_HEADER]: code,
    [AGENT_AREA_HEADER]: area,
    authorization: `Bearer ${agentToken(secret, area, code)}`,
  };
}

async function download(
  base: string,
  sha256: string,
  headers: Record<string, string> = agentHeaders('agent-1'),
): Promise<{ status: number; body: Buffer; headers: Headers }> {
  const res = await fetch(`${base}${AGENT_ARTIFACT_PATH}/${sha256}`, { headers });
  return { status: res.status, body: Buffer.from(await res.arrayBuffer()), headers: res.headers };
}

async function metric(base: string, name: string): Promise<number> {
  const text = await (await fetch(`${base}/metrics`)).text();
  let sum = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith(`${name} `) || line.startsWith(`${name}{`)) sum += Number(line.split(' ').pop());
  }
  return sum;
}

before(async () => {
  etcd = await startEtcd();
  dir = await tempDir('opsplane-relay-');
  ctrl = await startTestController(etcd, {
    api_token: TOKEN,
    agents: { heartbeat_interval: '200ms', request_timeout: '3s' },
    artifacts: { dir: `${dir.path}/main`, keys: [signer.publicKey] },
  });
  client = new ControllerClient(ctrl.url, 'area-1', { apiToken: TOKEN, retryTimes: 0 });
});

after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
  await client?.close();
  await ctrl?.stop();
  await etcd?.stop();
  await dir?.cleanup();
});

describe('artifact uploads (platform → controller)', () => {
  it('takes an artifact in two parts, checks offsets, and serves it only once complete', async () => {
    const { bytes, ref } = artifact('web', '1.0.0', 300_000);
    assert.equal(await client.artifactStatus(ref.sha256), undefined);
    const half = 120_000;
    const first = await client.uploadArtifact(ref, 0, bytes.subarray(0, half));
    assert.deepEqual(first, { sha256: ref.sha256, bytes: half, complete: false });
    assert.deepEqual(await client.artifactStatus(ref.sha256), first);
    // Not served while partial.
    assert.equal((await download(ctrl.url, ref.sha256)).status, 404);
    // A wrong offset is a 409 that states where to resume.
    await assert.rejects(
      client.uploadArtifact(ref, 0, bytes),
      (e: unknown) => e instanceof ArtifactOffsetMismatchError && e.bytes === half && e.status === 409,
    );
    const done = await client.uploadArtifact(ref, half, bytes.subarray(half));
    assert.deepEqual(done, { sha256: ref.sha256, bytes: bytes.length, complete: true });
    const got = await download(ctrl.url, ref.sha256);
    assert.equal(got.status, 200);
    assert.equal(sha(got.body), ref.sha256);
    const list = await client.listArtifacts();
    const entry = list.artifacts.find((a) => a.sha256 === ref.sha256);
    assert.equal(entry?.complete, true);
    assert.equal(entry?.ref?.version, '1.0.0');
    // Sending it again changes nothing: already complete.
    assert.equal((await ensureArtifact(client, ref, () => bytes)).complete, true);
  });

  it('ensureArtifact resumes from what the controller holds', async () => {
    const { bytes, ref } = artifact('api', '2.0.0', 200_000);
    await client.uploadArtifact(ref, 0, bytes.subarray(0, 50_000));
    const offsets: number[] = [];
    const s = await ensureArtifact(client, ref, (offset) => {
      offsets.push(offset);
      return bytes.subarray(offset);
    });
    assert.equal(s.complete, true);
    assert.deepEqual(offsets, [50_000]);
  });

  it('refuses tampered bytes: 422 artifact_invalid, the part is dropped, nothing is served', async () => {
    const { bytes, ref } = artifact('tampered', '1.0.0', 100_000);
    const evil = Buffer.from(bytes);
    evil[evil.length - 10]! ^= 0xff;
    const before = await metric(ctrl.url, 'opsplane_controller_artifact_verification_failures_total');
    await assert.rejects(
      client.uploadArtifact(ref, 0, evil),
      (e: unknown) => e instanceof ControllerHttpError && e.status === 422 && e.code === 'artifact_invalid',
    );
    assert.equal(await client.artifactStatus(ref.sha256), undefined);
    assert.equal((await download(ctrl.url, ref.sha256)).status, 404);
    assert.ok(!(await readdir(`${dir.path}/main`)).some((f) => f.startsWith(ref.sha256)));
    assert.equal(
      await metric(ctrl.url, 'opsplane_controller_artifact_verification_failures_total'),
      before + 1,
    );
    // ensureArtifact does not retry a verification failure.
    let opened = 0;
    await assert.rejects(
      ensureArtifact(client, ref, () => (opened++, evil), { retryIntervalMs: 1 }),
      (e: unknown) => (e as { code?: string }).code === 'artifact_invalid',
    );
    assert.equal(opened, 1);
  });

  it('refuses a bad signature and an untrusted key before storing a byte', async () => {
    const { bytes, ref } = artifact('relabel', '1.0.0', 50_000);
    // Relabelled: the signature covers the version.
    const relabelled = { ...ref, version: '9.9.9' };
    await assert.rejects(
      client.uploadArtifact(relabelled, 0, bytes),
      (e: unknown) =>
        e instanceof ControllerHttpError && e.status === 422 && e.code === 'artifact_bad_signature',
    );
    const foreign = signArtifact(stranger, bytes, { name: 'relabel', version: '1.0.0' });
    await assert.rejects(
      client.uploadArtifact(foreign, 0, bytes),
      (e: unknown) => e instanceof ControllerHttpError && e.code === 'artifact_untrusted_key',
    );
    assert.equal(await client.artifactStatus(ref.sha256), undefined);
  });

  it('answers bad requests with 4xx codes, and requires the API token', async () => {
    const { ref } = artifact('bad', '1.0.0', 1000);
    const url = `${ctrl.url}/api/v1/artifacts/${ref.sha256}?offset=0`;
    const put = (headers: Record<string, string>, q = '') =>
      fetch(`${url}${q}`, {
        method: 'PUT',
        headers: { 'content-type': 'application/octet-stream', ...headers },
        body: Buffer.alloc(10),
      });
    assert.equal((await put({})).status, 401);
    const auth = { authorization: `Bearer ${TOKEN}` };
    const noRef = await put(auth);
    assert.equal(noRef.status, 400);
    assert.equal(((await noRef.json()) as ErrorBody).error.code, 'validation_failed');
    const other = { ...ref, sha256: 'a'.repeat(64) };
    const mismatch = await put({
      ...auth,
      'x-opsplane-artifact-ref': Buffer.from(JSON.stringify(other)).toString('base64url'),
    });
    assert.equal(((await mismatch.json()) as ErrorBody).error.code, 'artifact_ref_mismatch');
    const badSha = await fetch(`${ctrl.url}/api/v1/artifacts/..%2Fetc?offset=0`, {
      method: 'HEAD',
      headers: auth,
    });
    assert.equal(badSha.status, 400);
    // An agent token is not the API token.
    assert.equal((await getJson(`${ctrl.url}/api/v1/artifacts`, agentHeaders('agent-1'))).status, 401);
  });
});

describe('agent downloads', () => {
  let bytes: Buffer;
  let ref: ArtifactRef;
  before(async () => {
    ({ bytes, ref } = artifact('dl', '1.0.0', 400_000));
    await ensureArtifact(client, ref, (o) => bytes.subarray(o));
  });

  it('resumes with Range: 206 and Content-Range, the pieces hash right', async () => {
    const head = await fetch(`${ctrl.url}${AGENT_ARTIFACT_PATH}/${ref.sha256}`, {
      method: 'HEAD',
      headers: agentHeaders('agent-1'),
    });
    assert.equal(head.status, 200);
    assert.equal(head.headers.get('content-length'), String(bytes.length));
    const cut = 123_457;
    const rest = await download(ctrl.url, ref.sha256, { ...agentHeaders('agent-1'), range: `bytes=${cut}-` });
    assert.equal(rest.status, 206);
    assert.equal(rest.headers.get('content-range'), `bytes ${cut}-${bytes.length - 1}/${bytes.length}`);
    assert.equal(sha(Buffer.concat([bytes.subarray(0, cut), rest.body])), ref.sha256);
    const beyond = await download(ctrl.url, ref.sha256, {
      ...agentHeaders('agent-1'),
      range: `bytes=${bytes.length}-`,
    });
    assert.equal(beyond.status, 416);
  });

  it('authenticates like the agent socket: no token, a wrong token or another area is 401', async () => {
    assert.equal((await download(ctrl.url, ref.sha256, {})).status, 401);
    assert.equal(
      (await download(ctrl.url, ref.sha256, agentHeaders('agent-1', 'area-1', 'wrong-secret-0123456789')))
        .status,
      401,
    );
    assert.equal((await download(ctrl.url, ref.sha256, agentHeaders('agent-1', 'area-2'))).status, 401);
    // The API token is not an agent credential.
    assert.equal((await download(ctrl.url, ref.sha256, { authorization: `Bearer ${TOKEN}` })).status, 401);
    const unknown = await download(ctrl.url, 'b'.repeat(64));
    assert.equal(unknown.status, 404);
    assert.equal((JSON.parse(unknown.body.toString()) as ErrorBody).error.code, 'artifact_not_found');
  });

  it('refuses a revoked agent with 403 revoked', async () => {
    await etcd.etcdctl([
      'put',
      'revocations/agents/rev-dl',
      '{"agent_code":"rev-dl","reason":"test","revoked_at":"x"}',
    ]);
    try {
      await waitFor(
        async () => (await download(ctrl.url, ref.sha256, agentHeaders('rev-dl'))).status === 403,
        {
          timeoutMs: 5000,
          what: 'the revocation to be enforced on downloads',
        },
      );
      const res = await download(ctrl.url, ref.sha256, agentHeaders('rev-dl'));
      assert.equal((JSON.parse(res.body.toString()) as ErrorBody).error.code, 'revoked');
    } finally {
      await etcd.etcdctl(['del', 'revocations/agents/rev-dl']);
    }
  });

  it('counts bytes served', async () => {
    const before = await metric(ctrl.url, 'opsplane_controller_artifact_bytes_served_total');
    const got = await download(ctrl.url, ref.sha256);
    assert.equal(sha(got.body), ref.sha256);
    assert.equal(
      await metric(ctrl.url, 'opsplane_controller_artifact_bytes_served_total'),
      before + bytes.length,
    );
  });
});

describe('artifacts config', () => {
  const base = { area: 'area-1', agent_secret: SECRET, insecure_no_token: true };
  it('parses bandwidth and max_bytes, and refuses a malformed key', () => {
    const c = parseControllerConfig({
      ...base,
      artifacts: { bandwidth: '20MiB/s', max_bytes: '1GiB', dir: 'rel' },
    });
    assert.equal(c.artifacts.bandwidthBytesPerS, 20 * 1024 * 1024);
    assert.equal(c.artifacts.maxBytes, 1024 ** 3);
    assert.ok(c.artifacts.dir.endsWith('/rel') && c.artifacts.dir.startsWith('/'));
    assert.equal(parseControllerConfig(base).artifacts.bandwidthBytesPerS, 0);
    assert.throws(
      () => parseControllerConfig({ ...base, artifacts: { keys: ['ssh-ed25519 AAAA'] } }),
      (e: unknown) => e instanceof ConfigError && /artifacts\.keys/.test(e.message),
    );
  });
});

describe('bandwidth limit and cache size', () => {
  it('paces all downloads through one limit, and evicts the least recently used beyond max_bytes', async () => {
    const limited = await startTestController(etcd, {
      api_token: TOKEN,
      artifacts: {
        dir: `${dir.path}/limited`,
        keys: [signer.publicKey],
        bandwidth: '1MiB/s',
        max_bytes: '1MiB',
      },
    });
    cleanups.push(() => limited.stop());
    const c = new ControllerClient(limited.url, 'area-1', { apiToken: TOKEN, retryTimes: 0 });
    cleanups.push(() => c.close());
    const a = artifact('big', '1.0.0', 600_000);
    await ensureArtifact(c, a.ref, (o) => a.bytes.subarray(o));
    // Unlimited on the main controller: downloads never wait.
    await download(ctrl.url, (await client.listArtifacts()).artifacts[0]!.sha256);
    assert.equal(await metric(ctrl.url, 'opsplane_controller_artifact_throttled_seconds_total'), 0);
    // Three concurrent downloads of 600 KB through 1 MiB/s: they must wait for the bucket.
    const got = await Promise.all(
      [1, 2, 3].map((i) => download(limited.url, a.ref.sha256, agentHeaders(`agent-${i}`))),
    );
    for (const g of got) assert.equal(sha(g.body), a.ref.sha256);
    assert.equal(
      await metric(limited.url, 'opsplane_controller_artifact_bytes_served_total'),
      3 * a.bytes.length,
    );
    assert.ok((await metric(limited.url, 'opsplane_controller_artifact_throttled_seconds_total')) > 0.3);
    // A second artifact does not fit beside the first in 1 MiB: the older one goes.
    const b = artifact('big', '2.0.0', 600_000);
    await ensureArtifact(c, b.ref, (o) => b.bytes.subarray(o));
    const held = (await c.listArtifacts()).artifacts.map((x) => x.sha256);
    assert.deepEqual(held, [b.ref.sha256]);
    assert.equal((await download(limited.url, a.ref.sha256)).status, 404);
    // Larger than the whole cache: refused up front.
    const huge = artifact('huge', '1.0.0', 1_200_000);
    await assert.rejects(
      c.uploadArtifact(huge.ref, 0, huge.bytes),
      (e: unknown) => e instanceof ControllerHttpError && e.status === 413 && e.code === 'artifact_too_large',
    );
  });
});

describe('desired state', () => {
  it('hands a connected agent its desired state and lists the status it reports', async () => {
    const agent = await FakeAgent.connect({ url: ctrl.url, code: 'ds-1', area: 'area-1', secret: SECRET });
    cleanups.push(() => agent.close());
    const { ref } = artifact('web', '1.0.0', 1000);
    const desired: DesiredStateInput = {
      policy: 'web-prod',
      revision: 3,
      packages: [{ name: 'web', version: '1.0.0', artifact: ref }],
    };
    const res = await client.pushDesiredState({
      items: [
        // The input form: the schema's defaults (configs, correct_drift…) are filled in.
        { agent_code: 'ds-1', desired },
        { agent_code: 'nobody', desired: { ...desired, packages: [] } },
      ],
    });
    assert.equal(res.results.length, 2);
    const [ok, missing] = res.results;
    assert.equal(ok?.success, true);
    assert.equal(ok?.status?.policy, 'web-prod');
    assert.equal(ok?.status?.revision, 3);
    assert.equal(missing?.success, false);
    assert.equal(missing?.error?.code, 'agent_not_connected');
    // The agent got exactly that request.
    const got = agent.requests.find((r) => r.op === 'desired_state');
    assert.equal(
      got?.op === 'desired_state' ? got.desired.packages[0]?.artifact.sha256 : undefined,
      ref.sha256,
    );
    // The agent's answer is in the listing; a heartbeat's report replaces it.
    const listed = await getJson<Agent>(`${ctrl.url}/api/v1/agents/ds-1`, {
      authorization: `Bearer ${TOKEN}`,
    });
    assert.equal(listed.body.distribution?.revision, 3);
    agent.distribution = {
      policy: 'web-prod',
      revision: 3,
      state: 'applied',
      packages: [],
      updated_at: new Date().toISOString(),
    };
    await waitFor(
      async () =>
        (await getJson<Agent>(`${ctrl.url}/api/v1/agents/ds-1`, { authorization: `Bearer ${TOKEN}` })).body
          .distribution?.state === 'applied',
      { timeoutMs: 5000, what: 'heartbeat distribution listed' },
    );
    // An older revision is the agent's refusal, passed through.
    const stale = await client.pushDesiredState({
      items: [
        {
          agent_code: 'ds-1',
          desired: { ...desired, revision: 1, packages: [] },
        },
      ],
    });
    assert.equal(stale.results[0]?.error?.code, 'stale_revision');
  });

  it('reports distribution from hello and refuses a malformed body with 400', async () => {
    const agent = await FakeAgent.connect({
      url: ctrl.url,
      code: 'ds-2',
      area: 'area-1',
      secret: SECRET,
      distribution: {
        policy: 'p',
        revision: 7,
        state: 'failed',
        packages: [],
        updated_at: new Date().toISOString(),
      },
    });
    cleanups.push(() => agent.close());
    const listed = await getJson<Agent>(`${ctrl.url}/api/v1/agents/ds-2`, {
      authorization: `Bearer ${TOKEN}`,
    });
    assert.equal(listed.body.distribution?.state, 'failed');
    const bad = await postJson<ErrorBody>(
      `${ctrl.url}/api/v1/agents/desired-state`,
      { items: [{ agent_code: 'ds-2', desired: { policy: 'p', revision: -1, packages: [] } }] },
      { authorization: `Bearer ${TOKEN}` },
    );
    assert.equal(bad.status, 400);
    assert.equal(bad.body.error.code, 'validation_failed');
    assert.match(bad.body.error.message, /revision/);
  });

  it('reaches an agent held by a peer controller of the area', async () => {
    const peer = await startTestController(etcd, {
      api_token: TOKEN,
      agents: { heartbeat_interval: '200ms', request_timeout: '3s' },
      artifacts: { dir: `${dir.path}/peer` },
    });
    cleanups.push(() => peer.stop());
    const agent = await FakeAgent.connect({ url: peer.url, code: 'ds-peer', area: 'area-1', secret: SECRET });
    cleanups.push(() => agent.close());
    const push = () =>
      client.pushDesiredState({
        items: [
          {
            agent_code: 'ds-peer',
            desired: {
              policy: 'p',
              revision: 1,
              packages: [],
              correct_drift: false,
              health_timeout_ms: 60_000,
            },
          },
        ],
      });
    // Once discovery has seen the peer, the push goes through it.
    await waitFor(async () => (await push()).results[0]?.success === true, {
      timeoutMs: 10_000,
      what: 'desired state forwarded to the peer',
    });
    assert.equal(agent.requests.filter((r) => r.op === 'desired_state').length >= 1, true);
  });
});
