/**
 * Reading a package's config files (the config_files/config_read agent ops): the files of
 * config_dir with sizes, one file's content and digest, a missing file as exists=false, and the
 * refusals — a path instead of a plain name, a symlink leading out of config_dir, a directory,
 * an unknown package. Dot files (.history) are not listed. Nothing is ever written.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdir, readdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ConfigReadError, listConfigFiles, readConfigFile, Supervisor } from '../src/index.js';
import { SLEEPER, workspace, writePackage, type Workspace } from './helpers.js';

describe('config reader', () => {
  let ws: Workspace;
  let sup: Supervisor;
  let cfg: string;

  before(async () => {
    ws = await workspace();
    const dir = await writePackage(ws, 'web', SLEEPER, { autostart: false }, { 'web.yaml': 'port: 8080\n' });
    cfg = join(dir, 'config');
    await writeFile(join(cfg, 'extra.json'), '{"a":1}');
    await mkdir(join(cfg, '.history'));
    await writeFile(join(cfg, '.history', 'web.yaml.2020'), 'old');
    await mkdir(join(cfg, 'sub'));
    await writeFile(join(ws.root, 'outside.txt'), 'secret outside');
    await symlink(join(ws.root, 'outside.txt'), join(cfg, 'escape.txt'));
    await writePackage(ws, 'bare', SLEEPER, { autostart: false });
    sup = await Supervisor.create({ packagesDir: ws.packagesDir, dataDir: ws.dataDir });
    await sup.start();
  });
  after(async () => {
    await sup.shutdown({ stopPackages: true });
    await ws.cleanup();
  });

  it('lists the regular files inside config_dir (no dot files, no directories, no escaping links)', async () => {
    const list = await listConfigFiles(sup, 'agt-1', 'web');
    assert.equal(list.package, 'web');
    assert.deepEqual(
      list.files.map((f) => [f.file_name, f.bytes]),
      [
        ['extra.json', 7],
        ['web.yaml', 11],
      ],
    );
    assert.deepEqual((await listConfigFiles(sup, 'agt-1', 'bare')).files, [], 'no config dir yet');
  });

  it('reads one file with its digest; a missing one is exists=false', async () => {
    const f = await readConfigFile(sup, 'agt-1', 'web', 'web.yaml');
    assert.equal(f.exists, true);
    assert.equal(f.content, 'port: 8080\n');
    assert.equal(f.sha256, createHash('sha256').update('port: 8080\n').digest('hex'));
    assert.ok(f.modified_at);
    const none = await readConfigFile(sup, 'agt-1', 'web', 'nope.yaml');
    assert.deepEqual([none.exists, none.content, none.sha256, none.modified_at], [false, '', '', null]);
  });

  it('refuses paths, links out of config_dir, directories and unknown packages', async () => {
    const code = async (p: Promise<unknown>) => {
      try {
        await p;
        return 'no error';
      } catch (e) {
        assert.ok(e instanceof ConfigReadError, String(e));
        return e.code;
      }
    };
    assert.equal(await code(readConfigFile(sup, 'a', 'web', '../package.yaml')), 'invalid_file_name');
    assert.equal(await code(readConfigFile(sup, 'a', 'web', '.history')), 'invalid_file_name');
    assert.equal(await code(readConfigFile(sup, 'a', 'web', 'escape.txt')), 'invalid_file_name');
    assert.equal(await code(readConfigFile(sup, 'a', 'web', 'sub')), 'invalid_file_name');
    assert.equal(await code(readConfigFile(sup, 'a', 'nope', 'web.yaml')), 'package_not_found');
    assert.deepEqual((await readdir(cfg)).sort(), [
      '.history',
      'escape.txt',
      'extra.json',
      'sub',
      'web.yaml',
    ]);
  });
});
