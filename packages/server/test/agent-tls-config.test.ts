/**
 * What a deployment writes for an agent when the server has a CA: the agent's config carries the
 * CA bundle it pins and its own certificate and key inline (one file, mode 0600 on the device),
 * the agent reads them back, and the certificate names the device's agent code and area.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { parseAgentConfig } from '@opsplane/agent';
import { renderAgentConfig } from '@opsplane/deploy';
import { CertificateAuthority, certInfo, initCa } from '@opsplane/pki';
import { tempDir } from '@opsplane/test-support';

describe('agent config with TLS, as a deployment writes it', () => {
  let dir: { path: string; cleanup: () => Promise<void> };
  before(async () => {
    dir = await tempDir('opsplane-agent-tls-');
  });
  after(() => dir.cleanup());

  it('round-trips the pinned CA and the agent certificate through agent.yaml', async () => {
    await initCa(join(dir.path, 'ca'));
    const ca = await CertificateAuthority.load(join(dir.path, 'ca'));
    const issued = await ca.issue({ kind: 'agent', name: 'agt-123', area: 'area-1' });
    const yaml = renderAgentConfig(
      {
        code: 'agt-123',
        area: 'area-1',
        token: '',
        controllers: ['https://10.0.0.5:8443'],
        tls: { ca: ca.bundlePem, cert: issued.certPem, key: issued.keyPem },
      },
      {
        root: '/opt/opsplane/agent',
        configFile: '/opt/opsplane/agent/etc/agent.yaml',
        dataDir: '/var/lib/opsplane',
        packagesDir: '/opt/opsplane/packages',
        logFile: '/opt/opsplane/agent/log/agent.log',
      },
    );
    assert.doesNotMatch(yaml, /^token:/m, 'no token when the agent has a certificate and none was issued');
    const cfg = parseAgentConfig(parseYaml(yaml), { env: {} });
    assert.equal(cfg.token, '');
    assert.equal(cfg.tls?.ca, ca.bundlePem);
    assert.equal(cfg.tls?.cert, issued.certPem);
    assert.equal(cfg.tls?.key, issued.keyPem);
    assert.deepEqual(certInfo(cfg.tls?.cert ?? '').identity, {
      kind: 'agent',
      name: 'agt-123',
      area: 'area-1',
    });
  });

  it('an agent config without a token and without a certificate is refused', () => {
    assert.throws(
      () =>
        parseAgentConfig(
          { agent_code: 'a', area: 'b', controllers: ['https://x:1'], packages_dir: 'p', data_dir: 'd' },
          { env: {} },
        ),
      /token: required/,
    );
  });
});
