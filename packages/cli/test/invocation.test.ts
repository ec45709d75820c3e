/**
 * One way to run the CLI, shown the same everywhere: the README, the demo banner and
 * `opsplane --help` name CLI_COMMAND (`npx opsplane`), and it works — node_modules/.bin/opsplane
 * is the bin file in git (linked by `npm ci` before any build), which loads the built CLI.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, realpathSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { tempDir } from '@opsplane/test-support';
import { demoBanner } from '../src/demo/banner.js';
import { CLI_COMMAND, cliBinPath, cliInvocation } from '../src/invocation.js';

const ROOT = fileURLToPath(new URL('../../../../', import.meta.url)); // from packages/cli/dist/test/
const README = readFileSync(join(ROOT, 'README.md'), 'utf8');
const PKG = JSON.parse(readFileSync(join(ROOT, 'packages', 'cli', 'package.json'), 'utf8')) as {
  bin: Record<string, string>;
};

/** Lines of the README's fenced code blocks. */
function readmeCodeLines(): string[] {
  const out: string[] = [];
  for (const m of README.matchAll(/^```[^\n]*\n([\s\S]*?)^```/gm)) out.push(...(m[1] ?? '').split('\n'));
  return out;
}

/** Lines that run a CLI command: `… opsplane <word>` at the start (after a prompt-free indent). */
const runsCli = (line: string) => /^\s*(?:\S+\s+)?opsplane [a-z]/.test(line);

describe('how to run the CLI: README, demo banner and --help agree, and it works', () => {
  const dirs: { cleanup(): Promise<void> }[] = [];
  after(async () => {
    for (const d of dirs) await d.cleanup();
  });

  it(`the README runs the CLI as \`${CLI_COMMAND}\` everywhere, and says so in the quick start`, () => {
    const lines = readmeCodeLines().filter(runsCli);
    assert.ok(lines.length >= 5, 'the README shows CLI commands');
    for (const line of lines) assert.ok(line.trimStart().startsWith(`${CLI_COMMAND} `), `README: ${line}`);
    const quickStart = README.slice(
      README.indexOf('## Quick start'),
      README.indexOf('\n## ', README.indexOf('## Quick start') + 1),
    );
    assert.ok(quickStart.includes(`${CLI_COMMAND} `), 'the quick start names the invocation');
    assert.doesNotMatch(README, /alias opsplane/);
  });

  it("the demo banner's CLI lines are the README's", () => {
    const invocation = cliInvocation(ROOT);
    assert.deepEqual(invocation, { command: CLI_COMMAND }, 'inside the repository: no alias');
    // The README shows a banner: the same lines, with the README's values.
    const readmeCli = readmeCodeLines().filter((l) => /^ {3}\S/.test(l) && runsCli(l));
    const [login, , , config] = readmeCli;
    const apiUrl = /--server (\S+)/.exec(login ?? '')?.[1];
    const caFile = /--ca (\S+)/.exec(login ?? '')?.[1];
    const agent = /--agents (\S+)/.exec(config ?? '')?.[1];
    const file = /--file (\S+)/.exec(config ?? '')?.[1];
    assert.ok(
      apiUrl && agent && file,
      `the README's banner has the login and config lines:\n${readmeCli.join('\n')}`,
    );
    const banner = demoBanner({
      apiUrl,
      username: 'admin',
      password: 'x',
      passwordSource: { file: 'data/demo/secrets.json' },
      areas: 2,
      controllers: 3,
      agents: 6,
      packages: 12,
      cli: invocation,
      exampleAgent: agent,
      exampleConfigFile: file,
      dataDir: 'data/demo',
      ...(caFile ? { caFile } : {}),
      startupSeconds: 1,
      color: false,
    });
    const bannerCli = banner.split('\n').filter(runsCli);
    assert.equal(bannerCli.length, 4, banner);
    assert.deepEqual(
      bannerCli.map((l) => l.trimEnd()),
      readmeCli.map((l) => l.trimEnd()),
      'the README shows the banner as it is printed',
    );
  });

  it(`--help names \`${CLI_COMMAND}\``, () => {
    const r = spawnSync(process.execPath, [cliBinPath(), '--help'], { encoding: 'utf8', timeout: 15_000 });
    assert.equal(r.status, 0, r.stderr);
    assert.ok(r.stdout.includes(`${CLI_COMMAND} <command>`), r.stdout);
  });

  it(`\`${CLI_COMMAND}\` resolves, from the repository root, to the bin file in git`, () => {
    assert.equal(PKG.bin.opsplane, './bin/opsplane.mjs');
    assert.equal(realpathSync(join(ROOT, 'node_modules', '.bin', 'opsplane')), realpathSync(cliBinPath()));
    assert.equal(CLI_COMMAND, 'npx opsplane');
    // --no: never fetch a package named opsplane from the registry.
    const r = spawnSync('npx', ['--no', 'opsplane', '--version'], {
      cwd: ROOT,
      encoding: 'utf8',
      timeout: 60_000,
    });
    assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
    assert.match(r.stdout.trim(), /^\d+\.\d+\.\d+/);
  });

  it('before a build, the bin says to run npm run build first', async () => {
    const dir = await tempDir('opsplane-bin-');
    dirs.push(dir);
    mkdirSync(join(dir.path, 'bin'));
    copyFileSync(cliBinPath(), join(dir.path, 'bin', 'opsplane.mjs'));
    const r = spawnSync(process.execPath, [join(dir.path, 'bin', 'opsplane.mjs'), '--help'], {
      encoding: 'utf8',
      timeout: 15_000,
    });
    assert.equal(r.status, 1);
    assert.match(r.stderr, /the CLI is not built yet .*: run npm run build first/);
  });
});
