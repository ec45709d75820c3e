/**
 * The read-only config operations: list the files of a package's config_dir and read one — what
 * a UI diffs a config push against. Never writes and never leaves config_dir: the name is
 * re-validated here (a plain file name), the resolved path (symlinks included) must stay inside
 * the config dir, only regular files are read, at most MAX_CONFIG_CONTENT_BYTES, and dot files
 * (the `.history/` of earlier versions) are not listed.
 */
import { createHash } from 'node:crypto';
import { lstat, readdir, readFile, realpath, stat } from 'node:fs/promises';
import { join } from 'node:path';
import {
  ConfigFileNameSchema,
  formatIssues,
  MAX_CONFIG_CONTENT_BYTES,
  type ConfigFileContent,
  type ConfigFileInfo,
  type ConfigFileList,
} from '@opsplane/models';
import { isInside, realpathOrUndefined } from '../util/paths.js';
import type { Supervisor } from './supervisor.js';

export class ConfigReadError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** The package's real config dir (undefined when it does not exist yet), checked to be inside the package. */
async function configDirOf(sup: Supervisor, pkg: string): Promise<string | undefined> {
  const runner = sup.get(pkg);
  if (!runner) throw new ConfigReadError('package_not_found', `no package '${pkg}' on this agent`);
  const m = runner.currentManifest;
  if (!m) throw new ConfigReadError('invalid_manifest', `package '${pkg}' has no valid manifest`);
  const dir = await realpathOrUndefined(m.configDir);
  if (dir === undefined) return undefined;
  if (!isInside(await realpath(m.packageDir), dir))
    throw new ConfigReadError(
      'invalid_config_dir',
      `config_dir of '${pkg}' resolves outside the package dir`,
    );
  return dir;
}

export async function listConfigFiles(
  sup: Supervisor,
  agentId: string,
  pkg: string,
): Promise<ConfigFileList> {
  const dir = await configDirOf(sup, pkg);
  const files: ConfigFileInfo[] = [];
  if (dir !== undefined) {
    for (const name of (await readdir(dir)).sort()) {
      if (!ConfigFileNameSchema.safeParse(name).success) continue;
      const real = await realpathOrUndefined(join(dir, name));
      if (real === undefined || !isInside(dir, real)) continue;
      const st = await stat(real).catch(() => undefined);
      if (!st?.isFile()) continue;
      files.push({ file_name: name, bytes: st.size, modified_at: st.mtime.toISOString() });
    }
  }
  return { agent_id: agentId, package: pkg, files };
}

export async function readConfigFile(
  sup: Supervisor,
  agentId: string,
  pkg: string,
  fileName: string,
): Promise<ConfigFileContent> {
  const name = ConfigFileNameSchema.safeParse(fileName);
  if (!name.success)
    throw new ConfigReadError(
      'invalid_file_name',
      `${JSON.stringify(fileName)}: ${formatIssues(name.error.issues)}`,
    );
  const missing: ConfigFileContent = {
    agent_id: agentId,
    package: pkg,
    file_name: fileName,
    exists: false,
    content: '',
    bytes: 0,
    sha256: '',
    modified_at: null,
  };
  const dir = await configDirOf(sup, pkg);
  if (dir === undefined) return missing;
  const path = join(dir, fileName);
  const lst = await lstat(path).catch(() => undefined);
  if (!lst) return missing;
  const real = await realpathOrUndefined(path);
  if (real === undefined) return missing;
  if (!isInside(dir, real))
    throw new ConfigReadError(
      'invalid_file_name',
      `'${fileName}' is a symlink leading outside the config dir`,
    );
  const st = await stat(real);
  if (!st.isFile()) throw new ConfigReadError('invalid_file_name', `'${fileName}' is not a regular file`);
  if (st.size > MAX_CONFIG_CONTENT_BYTES)
    throw new ConfigReadError(
      'payload_too_large',
      `'${fileName}' is larger than ${MAX_CONFIG_CONTENT_BYTES} bytes`,
    );
  const bytes = await readFile(real);
  return {
    agent_id: agentId,
    package: pkg,
    file_name: fileName,
    exists: true,
    content: bytes.toString('utf8'),
    bytes: bytes.length,
    sha256: createHash('sha256').update(bytes).digest('hex'),
    modified_at: st.mtime.toISOString(),
  };
}
