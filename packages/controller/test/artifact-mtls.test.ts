/**
 * Agent downloads over HTTPS with client certificates (`agents.auth: mtls`): the same check as
 * the agent socket's — an agent certificate of this area downloads, one of another area or no
 * certificate at all is refused — and the platform uploads over TLS verified against the CA.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Agent as UndiciAgent, fetch as undiciFetch } from 'undici';
import { AGENT_ARTIFACT_PATH } from '@opsplane/models';
import { initCa, issueToFiles } from '@opsplane/pki';
import { ControllerClient, ensureArtifact } from '@opsplane/platform';
import {
  createArtifactSigner,
  packageArchive,
  signArtifact,
  startEtcd,
  tempDir,
  type EtcdHandle,
} from '@opsplane/test-support';
import type { RunningController } from '../src/index.js';
import { startTestController } from './support/harness.js';

const TOKEN = 'mtls-relay-token';
let etcd: EtcdHandle;
let dir: { path: string; cleanup: () => Promise<void> };
let ctrl: RunningController;
const closers: (() => Promise<unknown>)[] = [];

before(async () => {
  etcd = await startEtcd();
  dir = await tempDir('opsplane-relay-mtls-');
  await initCa(join(dir.path, 'ca'));
});

after(async () => {
  for (const c of closers) await c().catch(() => undefined);
  await ctrl?.stop();
  await etcd?.stop();
  await dir?.cleanup();
});

async function agentDispatcher(name: string, area: string): Promise<UndiciAgent> {
  const files = await issueToFiles(join(dir.path, 'ca'), join(dir.path, name), 'agent', {
    kind: 'agent',
    name,
    area,
  });
  const d = new UndiciAgent({
    connect: {
      ca: await readFile(files.caPath, 'utf8'),
      cert: await readFile(files.certPath, 'utf8'),
      key: await readFile(files.keyPath, 'utf8'),
    },
  });
  closers.push(() => d.close());
  return d;
}

describe('agent downloads with client certificates', { timeout: 60_000 }, () => {
  it('serves an agent certificate of the area and refuses others', async () => {
    const signer = createArtifactSigner();
    const ctrlFiles = await issueToFiles(join(dir.path, 'ca'), join(dir.path, 'ctrl'), 'controller', {
      kind: 'controller',
      name: 'ctrl-tls',
      area: 'area-1',
      sans: ['127.0.0.1', 'localhost'],
    });
    ctrl = await startTestController(etcd, {
      api_token: TOKEN,
      tls: { cert: ctrlFiles.certPath, key: ctrlFiles.keyPath, ca: ctrlFiles.caPath, renew: false },
      agents: { auth: 'mtls', renewal: false },
      artifacts: { dir: join(dir.path, 'cache'), keys: [signer.publicKey] },
    });
    assert.match(ctrl.url, /^https:/);
    const ca = await readFile(ctrlFiles.caPath, 'utf8');
    const client = new ControllerClient(ctrl.url, 'area-1', { apiToken: TOKEN, tls: { ca }, retryTimes: 0 });
    closers.push(() => client.close());
    const bytes = packageArchive({ manifest: 'name: web\nversion: 1.0.0\n', padTo: 300_000 });
    const ref = signArtifact(signer, bytes, { name: 'web', version: '1.0.0' });
    assert.equal((await ensureArtifact(client, ref, (o) => bytes.subarray(o))).complete, true);

    const url = `${ctrl.url}${AGENT_ARTIFACT_PATH}/${ref.sha256}`;
    const own = await undiciFetch(url, { dispatcher: await agentDispatcher('tls-agent', 'area-1') });
    assert.equal(own.status, 200);
    assert.equal(
      createHash('sha256')
        .update(Buffer.from(await own.arrayBuffer()))
        .digest('hex'),
      ref.sha256,
    );

    const foreign = await undiciFetch(url, { dispatcher: await agentDispatcher('tls-agent-2', 'area-2') });
    assert.equal(foreign.status, 401);
    await foreign.body?.cancel();
    const anonymous = new UndiciAgent({ connect: { ca } });
    closers.push(() => anonymous.close());
    const none = await undiciFetch(url, { dispatcher: anonymous });
    assert.equal(none.status, 401);
    await none.body?.cancel();
  });
});
