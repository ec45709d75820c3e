/** Agent bundles (the versioned .tar.gz deployed to devices) and the small tar codec under them. */
export * from './agent-bundle.js';
export { InvalidAgentBundleError, TarError } from './errors.js';
export { checkTarPath, readTar, readTarGz, TAR_MTIME, writeTar, writeTarGz } from './tar.js';
export type { ReadTarOptions, TarEntry } from './tar.js';
