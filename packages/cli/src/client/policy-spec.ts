/**
 * A policy as the operator writes it for `opsplane policies create|update`: a YAML or JSON file
 * (the API's fields, packages as a list or a `name: version` map, configs inline or read from
 * files next to it, `health_timeout` as a duration) and flags on top of it (`--package
 * web=1.2.0`, `--config web=./app.yaml`, `--area`, `--selector`, …). Produces the request body;
 * the server validates it (names, versions, selector) and answers what is wrong.
 */
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { parseDuration } from '@opsplane/kit';
import type { PolicyCreateInput, PolicyPackage, PolicyUpdateInput } from '@opsplane/api';
import { parse as parseYaml } from 'yaml';
import { CliError, UsageError } from '../command.js';
import { listFlag } from './api.js';
import { parseFileSpec } from '../commands/batch.js';

/** The flags that shape a policy (shared by create and update). */
export interface PolicyFlags {
  file?: string | undefined;
  description?: string | undefined;
  area?: string[] | undefined;
  'all-areas'?: boolean | undefined;
  selector?: string | undefined;
  priority?: string | undefined;
  package?: string[] | undefined;
  'remove-package'?: string[] | undefined;
  config?: string[] | undefined;
  'agent-version'?: string | undefined;
  'correct-drift'?: boolean | undefined;
  'no-correct-drift'?: boolean | undefined;
  'health-timeout'?: string | undefined;
  staged?: boolean | undefined;
}

type Spec = Omit<PolicyCreateInput, 'name' | 'packages'> & { name?: string; packages?: PolicyPackage[] };

const usage = (m: string) => new UsageError(m, 'policies');

async function readText(path: string, what: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (e) {
    throw new CliError(`cannot read ${what} ${path}: ${(e as Error).message}`);
  }
}

const isObject = (x: unknown): x is Record<string, unknown> =>
  typeof x === 'object' && x !== null && !Array.isArray(x);

/** One config entry of a file: `{file_name, content}` or `{file: <path>, name?}` (path relative to the file). */
async function fileConfig(
  c: unknown,
  base: string,
  where: string,
): Promise<{ file_name: string; content: string }> {
  if (!isObject(c)) throw new CliError(`${where}: a config is {file: <path>, name?} or {file_name, content}`);
  if (typeof c.file === 'string') {
    const spec = parseFileSpec(c.file);
    const name = typeof c.name === 'string' ? c.name : spec.name;
    return { file_name: name, content: await readText(resolve(base, spec.path), 'config file') };
  }
  if (typeof c.file_name === 'string' && typeof c.content === 'string')
    return { file_name: c.file_name, content: c.content };
  throw new CliError(`${where}: a config is {file: <path>, name?} or {file_name, content}`);
}

/** The spec in a YAML/JSON file, configs read and durations turned into milliseconds. */
export async function readPolicyFile(path: string): Promise<Spec> {
  const text = await readText(path, 'policy file');
  let doc: unknown;
  try {
    doc = parseYaml(text); // YAML is a superset of JSON
  } catch (e) {
    throw new CliError(`${path}: not valid YAML or JSON: ${(e as Error).message}`);
  }
  if (!isObject(doc)) throw new CliError(`${path}: expected a mapping of policy fields`);
  const base = dirname(resolve(path));
  const { packages, health_timeout, ...rest } = doc;
  const spec = { ...rest } as Spec & Record<string, unknown>;
  if (health_timeout !== undefined) {
    try {
      spec.health_timeout_ms = parseDuration(String(health_timeout));
    } catch (e) {
      throw new CliError(`${path}: health_timeout: ${(e as Error).message}`);
    }
  }
  if (packages !== undefined) {
    const out: PolicyPackage[] = [];
    if (isObject(packages)) {
      // `packages: { web: 1.2.0 }`
      for (const [name, version] of Object.entries(packages))
        out.push({ name, version: String(version), configs: [] });
    } else if (Array.isArray(packages)) {
      for (const [i, p] of packages.entries()) {
        const where = `${path}: packages[${i}]`;
        if (!isObject(p) || typeof p.name !== 'string' || p.version === undefined)
          throw new CliError(`${where}: a package has a name and a version`);
        const configs = [];
        for (const [j, c] of (Array.isArray(p.configs) ? p.configs : []).entries())
          configs.push(await fileConfig(c, base, `${where}.configs[${j}]`));
        out.push({ name: p.name, version: String(p.version), configs });
      }
    } else
      throw new CliError(`${path}: packages is a list of {name, version, configs} or a name: version map`);
    spec.packages = out;
  }
  return spec;
}

/** `name=version` → [name, version]. */
function packageFlag(s: string): [string, string] {
  const i = s.indexOf('=');
  if (i <= 0 || i === s.length - 1) throw usage(`--package takes name=version (got '${s}')`);
  return [s.slice(0, i).trim(), s.slice(i + 1).trim()];
}

/** `pkg=path[:name]` → the package and its file. */
function configFlag(s: string): { pkg: string; path: string; name: string } {
  const i = s.indexOf('=');
  if (i <= 0 || i === s.length - 1) throw usage(`--config takes <package>=<path>[:<name>] (got '${s}')`);
  return { pkg: s.slice(0, i).trim(), ...parseFileSpec(s.slice(i + 1)) };
}

/** Applies --package, --remove-package and --config to a package list (a new list). */
async function editPackages(base: readonly PolicyPackage[], f: PolicyFlags): Promise<PolicyPackage[]> {
  const pkgs = base.map((p) => ({ ...p, configs: [...p.configs] }));
  for (const name of listFlag(f['remove-package'])) {
    const i = pkgs.findIndex((p) => p.name === name);
    if (i < 0) throw usage(`--remove-package ${name}: the policy has no package ${name}`);
    pkgs.splice(i, 1);
  }
  for (const s of f.package ?? []) {
    for (const one of s.split(',').filter((x) => x.trim())) {
      const [name, version] = packageFlag(one);
      const p = pkgs.find((x) => x.name === name);
      if (p) p.version = version;
      else pkgs.push({ name, version, configs: [] });
    }
  }
  // --config replaces the configs of its package with the files given for it.
  const configs = new Map<string, { file_name: string; content: string }[]>();
  for (const s of f.config ?? []) {
    const c = configFlag(s);
    if (!pkgs.some((p) => p.name === c.pkg))
      throw usage(`--config ${c.pkg}=…: the policy has no package ${c.pkg} (add it with --package)`);
    const list = configs.get(c.pkg) ?? [];
    list.push({ file_name: c.name, content: await readText(c.path, 'config file') });
    configs.set(c.pkg, list);
  }
  for (const p of pkgs) {
    const c = configs.get(p.name);
    if (c) p.configs = c;
  }
  return pkgs;
}

const touchesPackages = (f: PolicyFlags) =>
  (f.package?.length ?? 0) + (f['remove-package']?.length ?? 0) + (f.config?.length ?? 0) > 0;

/** The scalar fields the flags set (those given). */
function scalarFlags(f: PolicyFlags): Partial<Spec> {
  if (f['correct-drift'] && f['no-correct-drift'])
    throw usage('--correct-drift and --no-correct-drift contradict each other');
  if (f.area?.length && f['all-areas']) throw usage('--area and --all-areas contradict each other');
  const out: Partial<Spec> = {};
  if (f.description !== undefined) out.description = f.description;
  if (f.area?.length) out.areas = listFlag(f.area);
  if (f['all-areas']) out.areas = [];
  if (f.selector !== undefined) out.selector = f.selector;
  if (f.priority !== undefined) {
    if (!/^-?\d+$/.test(f.priority)) throw usage(`--priority takes an integer (got '${f.priority}')`);
    out.priority = Number(f.priority);
  }
  if (f['agent-version'] !== undefined)
    out.agent_version =
      f['agent-version'] === 'none' || f['agent-version'] === '' ? null : f['agent-version'];
  if (f['correct-drift']) out.correct_drift = true;
  if (f['no-correct-drift']) out.correct_drift = false;
  if (f['health-timeout'] !== undefined) {
    try {
      out.health_timeout_ms = parseDuration(f['health-timeout']);
    } catch {
      throw usage(`--health-timeout takes a duration such as 90s (got '${f['health-timeout']}')`);
    }
  }
  if (f.staged) out.staged = true;
  return out;
}

/** The body of POST /policies: the file (if any), then the flags; the name from the argument or the file. */
export async function policyCreateBody(name: string | undefined, f: PolicyFlags): Promise<PolicyCreateInput> {
  const file = f.file ? await readPolicyFile(f.file) : {};
  const finalName = name ?? file.name;
  if (!finalName) throw usage('create needs a name: opsplane policies create <name> (or name: in --file)');
  if (name && file.name && file.name !== name)
    throw usage(`the name '${name}' differs from the file's '${file.name}'`);
  const packages = await editPackages(file.packages ?? [], f);
  return { ...file, ...scalarFlags(f), name: finalName, packages } as PolicyCreateInput;
}

/**
 * The body of PATCH /policies/:id: what the file and the flags change. Package edits
 * (--package, --remove-package, --config) start from the file's packages, else from `current`.
 */
export async function policyUpdateBody(
  current: readonly PolicyPackage[],
  f: PolicyFlags,
): Promise<PolicyUpdateInput> {
  const file = f.file ? await readPolicyFile(f.file) : {};
  const body: PolicyUpdateInput = { ...(file as PolicyUpdateInput), ...scalarFlags(f) };
  if (file.packages !== undefined || touchesPackages(f))
    body.packages = await editPackages(file.packages ?? current, f);
  const { staged: _staged, ...changes } = body;
  if (Object.keys(changes).length === 0)
    throw usage('nothing to change: give --file or flags (--package, --area, --selector, …)');
  return body;
}
