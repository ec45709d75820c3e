/**
 * A controller killed (-9) in the middle of an upload, as a real daemon process: restarted on
 * the same cache directory it still holds the bytes that had arrived, HEAD states them, and the
 * platform's ensureArtifact sends only the rest; the artifact then verifies and agents download
 * it. Also: a restarted controller serves the complete artifacts it had (no re-upload).
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { AGENT_AREA_HEADER, AGENT_ARTIFACT_PATH, AGENT_CODE_HEADER, agentToken } from '@opsplane/models';
import { ControllerClient, ensureArtifact } from '@opsplane/platform';
import {
  createArtifactSigner,
  freePort,
  packageArchive,
  signArtifact,
  spawnTracked,
  startEtcd,
  tempDir,
  waitFor,
  type EtcdHandle,
  type TrackedProcess,
} from '@opsplane/test-support';
import { SECRET } from './support/harness.js';

const CLI = fileURLToPath(new URL('../../../cli/dist/src/main.js', import.meta.url));
const TOKEN = 'restart-test-token';
const signer = createArtifactSigner();

let etcd: EtcdHandle;
let dir: { path: string; cleanup: () => Promise<void> };
let configFile: string;
let port: number;
const procs: TrackedProcess[] = [];

async function startDaemon(): Promise<TrackedProcess> {
  const proc = spawnTracked(
    'controller:relay',
    process.execPath,
    [
      CLI,
      'controller',
      '--config',
      configFile,
      '--listen',
      `127.0.0.1:${port}`,
      '--etcd',
      etcd.endpoints.join(','),
    ],
    {
      env: {
        ...process.env,
        OPSPLANE_AGENT_SECRET: SECRET,
        OPSPLANE_CONTROLLER_TOKEN: TOKEN,
        OPSPLANE_LOG_LEVEL: 'info',
      },
    },
  );
  procs.push(proc);
  await proc.waitForOutput('listening on');
  return proc;
}

before(async () => {
  etcd = await startEtcd();
  dir = await tempDir('opsplane-relay-restart-');
  port = await freePort();
  configFile = join(dir.path, 'controller.yaml');
  await writeFile(
    configFile,
    [
      'area: area-1',
      'id: relay-1',
      'artifacts:',
      `  dir: ${join(dir.path, 'cache')}`,
      '  keys:',
      `    - "${signer.publicKey}"`,
      '',
    ].join('\n'),
  );
});

after(async () => {
  await Promise.all(procs.map((p) => p.stop(2000)));
  await etcd?.stop();
  await dir?.cleanup();
});

describe('artifact upload across a controller kill -9', { timeout: 60_000 }, () => {
  it('keeps the partial upload, states its bytes after the restart, and completes from there', async () => {
    const bytes = packageArchive({ manifest: 'name: web\nversion: 1.0.0\n', padTo: 2_000_000 });
    const ref = signArtifact(signer, bytes, { name: 'web', version: '1.0.0' });
    const url = `http://127.0.0.1:${port}`;
    let proc = await startDaemon();
    const client = new ControllerClient(url, 'area-1', { apiToken: TOKEN, retryTimes: 0 });
    try {
      // An upload that sends 1.2 MB and then stalls, as a server would when the link hangs.
      const sent = 1_200_000;
      const stall = new AbortController();
      async function* stalling(): AsyncGenerator<Uint8Array> {
        for (let o = 0; o < sent; o += 100_000) yield bytes.subarray(o, Math.min(sent, o + 100_000));
        await new Promise((resolve) => stall.signal.addEventListener('abort', resolve));
      }
      const upload = client.uploadArtifact(ref, 0, stalling(), stall.signal).catch((e: unknown) => e);
      await waitFor(async () => (await client.artifactStatus(ref.sha256))?.bytes === sent, {
        timeoutMs: 10_000,
        what: 'the first 1.2 MB held',
      });
      await proc.kill();
      stall.abort();
      assert.ok((await upload) instanceof Error, 'the upload failed with the controller');

      proc = await startDaemon();
      assert.deepEqual(await client.artifactStatus(ref.sha256), {
        sha256: ref.sha256,
        bytes: sent,
        complete: false,
      });
      const offsets: number[] = [];
      const done = await ensureArtifact(client, ref, (offset) => {
        offsets.push(offset);
        return bytes.subarray(offset);
      });
      assert.equal(done.complete, true);
      assert.deepEqual(offsets, [sent], 'only the missing tail was sent');

      const res = await fetch(`${url}${AGENT_ARTIFACT_PATH}/${ref.sha256}`, {
        headers: {
          [AGENT_CODE_HEADER]: 'agent-1',
          [AGENT_AREA_HEADER]: 'area-1',
          authorization: `Bearer ${agentToken(SECRET, 'area-1', 'agent-1')}`,
        },
      });
      assert.equal(res.status, 200);
      const got = Buffer.from(await res.arrayBuffer());
      assert.equal(createHash('sha256').update(got).digest('hex'), ref.sha256);

      // Restarted again (gracefully this time): the complete artifact is still there.
      await proc.stop();
      proc = await startDaemon();
      assert.deepEqual(await client.artifactStatus(ref.sha256), {
        sha256: ref.sha256,
        bytes: bytes.length,
        complete: true,
      });
    } finally {
      await client.close();
    }
  });
});
