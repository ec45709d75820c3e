/**
 * How `opsplane policies create|update` turns a policy file (YAML or JSON, configs read from files
 * next to it) and flags into the request body: flags over the file, package edits over the
 * current packages, and usage errors for what cannot be meant. Also the rollout progress rows:
 * a bar per wave counting the agents finished in it.
 */
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { PolicyRollout, RolloutAgent } from '@opsplane/api';
import { tempDir } from '@opsplane/test-support';
import { UsageError } from '../src/command.js';
import { policyCreateBody, policyUpdateBody, readPolicyFile } from '../src/client/policy-spec.js';
import { rolloutSummary, waveRows } from '../src/commands/rollouts.js';

describe('policy files and flags', () => {
  let dir: { path: string; cleanup: () => Promise<void> };
  before(async () => {
    dir = await tempDir('opsplane-policy-spec-');
    await mkdir(join(dir.path, 'conf'));
    await writeFile(join(dir.path, 'conf', 'web.yaml'), 'port: 80\n');
    await writeFile(join(dir.path, 'extra.conf'), 'x=1\n');
  });
  after(() => dir.cleanup());

  it('reads a YAML file: packages as a list with configs from files next to it, a duration', async () => {
    const file = join(dir.path, 'p.yaml');
    await writeFile(
      file,
      [
        'name: web-prod',
        'areas: [area-1]',
        'selector: env=prod',
        'packages:',
        '  - name: web',
        '    version: 1.2.0',
        '    configs:',
        '      - { file: ./conf/web.yaml, name: app.yaml }',
        '      - { file_name: inline.conf, content: "a=b" }',
        'agent_version: 1.5.0',
        'health_timeout: 1m30s',
        '',
      ].join('\n'),
    );
    const spec = await readPolicyFile(file);
    assert.deepEqual(spec, {
      name: 'web-prod',
      areas: ['area-1'],
      selector: 'env=prod',
      agent_version: '1.5.0',
      health_timeout_ms: 90_000,
      packages: [
        {
          name: 'web',
          version: '1.2.0',
          configs: [
            { file_name: 'app.yaml', content: 'port: 80\n' },
            { file_name: 'inline.conf', content: 'a=b' },
          ],
        },
      ],
    });
  });

  it('reads JSON, packages as a name: version map; flags win over the file', async () => {
    const file = join(dir.path, 'p.json');
    await writeFile(
      file,
      JSON.stringify({ name: 'edge', selector: 'role=edge', packages: { web: '1.0.0', db: 2 } }),
    );
    const body = await policyCreateBody(undefined, {
      file,
      selector: 'role=edge,env=prod',
      package: ['web=1.1.0'],
      config: [`web=${join(dir.path, 'extra.conf')}:web.conf`],
      'correct-drift': true,
      staged: true,
    });
    assert.deepEqual(body, {
      name: 'edge',
      selector: 'role=edge,env=prod',
      correct_drift: true,
      staged: true,
      packages: [
        { name: 'web', version: '1.1.0', configs: [{ file_name: 'web.conf', content: 'x=1\n' }] },
        { name: 'db', version: '2', configs: [] },
      ],
    });
  });

  it('update: package edits start from the current packages and keep their configs', async () => {
    const current = [
      { name: 'web', version: '1.0.0', configs: [{ file_name: 'a.conf', content: 'a' }] },
      { name: 'db', version: '3.0.0', configs: [] },
    ];
    assert.deepEqual(
      await policyUpdateBody(current, { package: ['web=1.1.0,cache=0.1.0'], 'remove-package': ['db'] }),
      {
        packages: [
          { name: 'web', version: '1.1.0', configs: [{ file_name: 'a.conf', content: 'a' }] },
          { name: 'cache', version: '0.1.0', configs: [] },
        ],
      },
    );
    assert.deepEqual(await policyUpdateBody(current, { 'all-areas': true, 'agent-version': 'none' }), {
      areas: [],
      agent_version: null,
    });
  });

  it('refuses what cannot be meant, as usage errors', async () => {
    const usage = (p: Promise<unknown>, re: RegExp) =>
      assert.rejects(p, (e: unknown) => e instanceof UsageError && re.test(e.message));
    await usage(policyCreateBody(undefined, {}), /create needs a name/);
    await usage(policyCreateBody('x', { package: ['web'] }), /name=version/);
    await usage(policyCreateBody('x', { config: ['web=./a'] }), /no package web/);
    await usage(policyCreateBody('x', { 'correct-drift': true, 'no-correct-drift': true }), /contradict/);
    await usage(policyCreateBody('x', { priority: 'high' }), /--priority takes an integer/);
    await usage(policyCreateBody('x', { 'health-timeout': 'soon' }), /--health-timeout/);
    await usage(policyUpdateBody([], { staged: true }), /nothing to change/);
    await usage(policyUpdateBody([], { 'remove-package': ['web'] }), /no package web/);
    await assert.rejects(
      policyCreateBody('x', { file: join(dir.path, 'missing.yaml') }),
      /cannot read policy file/,
    );
  });
});

describe('rollout progress rows', () => {
  const agent = (code: string, wave: number, status: RolloutAgent['status']): RolloutAgent => ({
    agent_code: code,
    area: 'area-1',
    wave,
    status,
    previous_revision: 1,
    error: status === 'failed' ? { code: 'health_check_failed', message: 'not healthy in 60s' } : null,
    started_at: null,
    finished_at: null,
  });
  const rollout = (status: PolicyRollout['status'], agents: RolloutAgent[]): PolicyRollout => ({
    id: '00000000-0000-4000-8000-000000000001',
    policy_id: '00000000-0000-4000-8000-000000000002',
    policy_name: 'web-prod',
    revision: 2,
    previous_revision: 1,
    status,
    batch_size: 2,
    pause_ms: 0,
    max_failures: 0,
    wave_timeout_ms: 300_000,
    current_wave: 2,
    waves: [
      { index: 1, status: 'done', agents: 2, started_at: null, finished_at: null },
      { index: 2, status: 'running', agents: 2, started_at: null, finished_at: null },
    ],
    counts: { total: 4, pending: 0, applying: 1, applied: 2, failed: 1, rolled_back: 0, skipped: 0 },
    message: '',
    created_by: 'admin',
    created_at: '2026-01-01T00:00:00Z',
    updated_at: '2026-01-01T00:00:00Z',
    finished_at: null,
    agents,
  });

  it('counts the agents finished per wave, and the failures', () => {
    const agents = [
      agent('a', 1, 'applied'),
      agent('b', 1, 'applied'),
      agent('c', 2, 'failed'),
      agent('d', 2, 'applying'),
    ];
    const rows = waveRows(rollout('running', agents), new Map(agents.map((a) => [a.agent_code, a])));
    assert.deepEqual(
      rows.map((r) => [r.label, r.status, r.done, r.total, r.step]),
      [
        ['wave 1', 'succeeded', 2, 2, 'agents · 2 applied, 0 failed'],
        ['wave 2', 'running', 1, 2, 'agents · 0 applied, 1 failed'],
      ],
    );
    const s = rolloutSummary(rollout('halted', agents));
    assert.equal(s.code, 1);
    assert.match(s.lines[0] ?? '', /halted: 2 of 4 agent\(s\) applied, 1 failed/);
    assert.match(s.lines.join('\n'), /c\s+area-1\s+2\s+failed\s+not healthy in 60s \[health_check_failed\]/);
    assert.equal(rolloutSummary(rollout('succeeded', [])).code, 0);
  });
});
