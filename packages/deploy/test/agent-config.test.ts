/** The agent.yaml a deployment writes: identity, layout, and the pinned artifact keys. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import { renderAgentConfig } from '../src/index.js';
import { systemdUnit, agentctlScript } from '../src/linux/linux-scripts.js';

const layout = {
  root: '/opt/opsplane/agent',
  configFile: '/opt/opsplane/agent/etc/agent.yaml',
  dataDir: '/opt/opsplane/agent/data',
  packagesDir: '/opt/opsplane/agent/packages',
  logFile: '/opt/opsplane/agent/log/agent.log',
};
const id = { code: 'web-1', area: 'area-1', token: 't0k', controllers: ['http://c1:8080'] };
const KEY = `ed25519:${Buffer.alloc(32, 7).toString('base64')}`;

describe('agent config written at deployment', () => {
  it('pins the artifact keys it is given, and writes none otherwise', () => {
    const withKeys = parse(renderAgentConfig({ ...id, artifactKeys: [KEY] }, layout)) as Record<
      string,
      unknown
    >;
    assert.deepEqual(withKeys.artifact_keys, [KEY]);
    assert.equal(withKeys.data_dir, layout.dataDir);
    const without = parse(renderAgentConfig(id, layout)) as Record<string, unknown>;
    assert.equal('artifact_keys' in without, false);
  });

  it('runs the agent through its launcher (systemd unit and agentctl)', () => {
    assert.match(
      systemdUnit(layout.root, '/usr/bin/node'),
      /ExecStart="\/usr\/bin\/node" "\/opt\/opsplane\/agent\/current\/agent.mjs" --launch --root "\/opt\/opsplane\/agent" --config/,
    );
    assert.match(
      agentctlScript(layout.root, '/usr/bin/node'),
      /current\/agent.mjs" --launch --root "\$ROOT"/,
    );
  });
});
