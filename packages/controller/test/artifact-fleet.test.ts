/**
 * Fleet support of the relay: `artifactKeys` reaches the controllers as `artifacts.keys` (their
 * relay then refuses a signature by any other key), and each controller's cache lives with its
 * files.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { ControllerClient, ControllerHttpError, ensureArtifact } from '@opsplane/platform';
import {
  createArtifactSigner,
  packageArchive,
  signArtifact,
  startFleet,
  type Fleet,
} from '@opsplane/test-support';

const TOKEN = 'fleet-relay-token';
let fleet: Fleet | undefined;

after(async () => {
  await fleet?.stop();
});

describe('fleet artifactKeys', { timeout: 60_000 }, () => {
  it('gives controllers the keys and a cache beside their config', async () => {
    const signer = createArtifactSigner();
    const other = createArtifactSigner();
    fleet = await startFleet({
      areas: [{ name: 'area-1', controllers: 1, agents: 0 }],
      apiToken: TOKEN,
      artifactKeys: [signer.publicKey],
    });
    const ctrl = fleet.controllers[0]!;
    const yaml = await readFile(ctrl.configPath, 'utf8');
    assert.ok(yaml.includes(signer.publicKey), 'the key is in controller.yaml');
    const client = new ControllerClient(ctrl.url, 'area-1', { apiToken: TOKEN, retryTimes: 0 });
    try {
      const bytes = packageArchive({ manifest: 'name: web\nversion: 1.0.0\n', padTo: 10_000 });
      await assert.rejects(
        client.uploadArtifact(signArtifact(other, bytes, { name: 'web', version: '1.0.0' }), 0, bytes),
        (e: unknown) => e instanceof ControllerHttpError && e.code === 'artifact_untrusted_key',
      );
      const ref = signArtifact(signer, bytes, { name: 'web', version: '1.0.0' });
      assert.equal((await ensureArtifact(client, ref, (o) => bytes.subarray(o))).complete, true);
      const cached = await readFile(join(ctrl.configPath, '..', 'artifacts', `${ref.sha256}.json`), 'utf8');
      assert.equal(JSON.parse(cached).sha256, ref.sha256);
    } finally {
      await client.close();
    }
  });
});
