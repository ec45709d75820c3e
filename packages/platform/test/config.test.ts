/** platform.yaml loading: the guide's §6 file, durations, env overrides, clear errors. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  loadPlatformConfig,
  parseDuration,
  etcdClientOptions,
  controllerClientOptions,
} from '@opsplane/platform';
import { ValidationError } from '@opsplane/models';
import { tempDir } from '@opsplane/test-support';

const guideYaml = `# platform.yaml
etcd:
  endpoints:
    - "platform-etcd-1:2379"
    - "platform-etcd-2:2379"
  watch_prefix: "controllers/"
  dial_timeout: 5s

controller:
  api_timeout: 30s
  retry_times: 3
  retry_interval: 1s

cache:
  agent_ttl: 300s  # 5 minutes
  controller_ttl: 60s

concurrency:
  max_workers: 10
`;

test('durations parse like Go and refuse garbage', () => {
  assert.equal(parseDuration('5s'), 5000);
  assert.equal(parseDuration('300ms'), 300);
  assert.equal(parseDuration('1m30s'), 90_000);
  assert.equal(parseDuration('2h'), 7_200_000);
  assert.equal(parseDuration('1.5s'), 1500);
  assert.equal(parseDuration('250'), 250);
  assert.equal(parseDuration(42), 42);
  for (const bad of ['', 's', '5 s', '5x', '-1s', 'abc'])
    assert.throws(() => parseDuration(bad), RangeError, bad);
});

test("the guide's platform.yaml loads with its values", async () => {
  const dir = await tempDir();
  try {
    const file = join(dir.path, 'platform.yaml');
    await writeFile(file, guideYaml);
    const cfg = await loadPlatformConfig(file, {});
    assert.deepEqual(cfg.etcd.endpoints, ['platform-etcd-1:2379', 'platform-etcd-2:2379']);
    assert.equal(cfg.etcd.watch_prefix, 'controllers/');
    assert.equal(cfg.etcd.dial_timeout, 5000);
    assert.equal(cfg.controller.api_timeout, 30_000);
    assert.equal(cfg.controller.retry_times, 3);
    assert.equal(cfg.controller.retry_interval, 1000);
    assert.equal(cfg.cache.agent_ttl, 300_000);
    assert.equal(cfg.cache.controller_ttl, 60_000);
    assert.equal(cfg.concurrency.max_workers, 10);
    assert.deepEqual(controllerClientOptions(cfg), {
      timeoutMs: 30_000,
      retryTimes: 3,
      retryIntervalMs: 1000,
    });
    assert.deepEqual(etcdClientOptions(cfg).endpoints, [
      'http://platform-etcd-1:2379',
      'http://platform-etcd-2:2379',
    ]);
  } finally {
    await dir.cleanup();
  }
});

test('env overrides the file; a missing path means defaults', async () => {
  const cfg = await loadPlatformConfig(undefined, {
    OPSPLANE_ETCD_ENDPOINTS: 'http://127.0.0.1:1,http://127.0.0.1:2',
    OPSPLANE_MAX_WORKERS: '4',
    OPSPLANE_CONTROLLER_API_TIMEOUT: '2s',
  });
  assert.deepEqual(cfg.etcd.endpoints, ['http://127.0.0.1:1', 'http://127.0.0.1:2']);
  assert.equal(cfg.concurrency.max_workers, 4);
  assert.equal(cfg.controller.api_timeout, 2000);
  assert.equal(cfg.cache.agent_ttl, 300_000);
});

test('bad config names the field', async () => {
  const dir = await tempDir();
  try {
    const file = join(dir.path, 'platform.yaml');
    await writeFile(file, 'etcd:\n  dial_timeout: soon\nconcurrency:\n  max_workers: 0\n');
    await assert.rejects(loadPlatformConfig(file, {}), (e: unknown) => {
      assert.ok(e instanceof ValidationError);
      assert.match(e.message, /etcd\.dial_timeout: invalid duration 'soon'/);
      assert.match(e.message, /concurrency\.max_workers/);
      return true;
    });
    await writeFile(file, 'etcd: [unclosed\n');
    await assert.rejects(loadPlatformConfig(file, {}), /invalid YAML/);
    await assert.rejects(loadPlatformConfig(join(dir.path, 'nope.yaml'), {}), /cannot read config file/);
  } finally {
    await dir.cleanup();
  }
});

test('TLS: etcd with a client certificate and a user, controllers verified against a CA', async () => {
  const dir = await tempDir('opsplane-platform-tls-');
  try {
    const pem = (n: string) => `-----BEGIN CERTIFICATE-----\n${n}\n-----END CERTIFICATE-----\n`;
    await writeFile(join(dir.path, 'ca.crt'), pem('Y2E='));
    await writeFile(join(dir.path, 'c.crt'), pem('Y2VydA=='));
    await writeFile(join(dir.path, 'c.key'), 'KEY');
    const file = join(dir.path, 'platform.yaml');
    await writeFile(
      file,
      [
        'etcd:',
        '  endpoints: ["etcd-1:2379"]',
        '  username: opsplane-server',
        `  tls: { ca_file: ${join(dir.path, 'ca.crt')}, cert_file: ${join(dir.path, 'c.crt')}, key_file: ${join(dir.path, 'c.key')} }`,
        `controller: { tls: { ca_file: ${join(dir.path, 'ca.crt')} } }`,
      ].join('\n'),
    );
    const cfg = await loadPlatformConfig(file, { OPSPLANE_ETCD_PASSWORD: 'pw-from-env' });
    const etcd = etcdClientOptions(cfg);
    assert.deepEqual(etcd.endpoints, ['https://etcd-1:2379'], 'no scheme + tls = https');
    assert.deepEqual(etcd.auth, { username: 'opsplane-server', password: 'pw-from-env' });
    assert.equal(etcd.tls?.ca, pem('Y2E='));
    assert.equal(etcd.tls?.key, 'KEY');
    assert.equal(controllerClientOptions(cfg).tls?.ca, pem('Y2E='));
    await writeFile(file, 'etcd: { tls: { ca_file: /x, cert_file: /y } }\n');
    await assert.rejects(loadPlatformConfig(file, {}), ValidationError, 'cert without key');
  } finally {
    await dir.cleanup();
  }
});
