/**
 * The banner `opsplane demo` prints once everything is up: where the API is, how to log in, and
 * three CLI commands to try. Kept short: it must fit a terminal screen above the scrolling logs.
 */

export interface BannerInfo {
  apiUrl: string;
  username: string;
  password: string;
  /** Where the password came from: 'env' (OPSPLANE_ADMIN_PASSWORD) or the secrets file path. */
  passwordSource: { env: true } | { file: string };
  areas: number;
  controllers: number;
  agents: number;
  packages: number;
  /**
   * How to run the CLI from where the user stands: `npx opsplane` inside the repository, else a
   * shell alias line to print first (`alias` set) and `opsplane`.
   */
  cli: { command: string; alias?: string };
  /** An agent code for the config example. */
  exampleAgent: string;
  /** Path (as the user would type it) of a config file to push. */
  exampleConfigFile: string;
  dataDir: string;
  /** The CA bundle to trust (TLS demo), as the user would type its path. */
  caFile?: string;
  startupSeconds: number;
  color: boolean;
}

const bold = (on: boolean, s: string) => (on ? `\u001b[1m${s}\u001b[22m` : s);
const green = (on: boolean, s: string) => (on ? `\u001b[32m${s}\u001b[39m` : s);
const dim = (on: boolean, s: string) => (on ? `\u001b[2m${s}\u001b[22m` : s);

export function demoBanner(b: BannerInfo): string {
  const c = b.color;
  const rule = '─'.repeat(78);
  const where =
    'file' in b.passwordSource
      ? `generated; kept in ${b.passwordSource.file}`
      : 'from OPSPLANE_ADMIN_PASSWORD';
  return [
    '',
    rule,
    ` ${bold(c, green(c, 'Opsplane demo is running'))} ${dim(c, `(ready in ${b.startupSeconds.toFixed(1)} s)`)}: etcd, ${b.controllers} controllers in ${b.areas} areas,`,
    ` ${b.agents} agents supervising ${b.packages} packages, the platform server on embedded PGlite.`,
    '',
    `   Web UI    ${bold(c, `${b.apiUrl}/`)}`,
    `   API       ${bold(c, `${b.apiUrl}/api/v1`)}`,
    `   API docs  ${b.apiUrl}/docs`,
    `   User      ${bold(c, b.username)}`,
    `   Password  ${bold(c, b.password)}   ${dim(c, `(${where})`)}`,
    ...(b.caFile
      ? [
          `   CA        ${b.caFile}   ${dim(c, '(TLS everywhere: trust it in your browser, or accept its warning)')}`,
        ]
      : []),
    '',
    ' Try the CLI in another terminal, from this directory:',
    ...(b.cli.alias ? [`   ${b.cli.alias}`] : []),
    `   ${b.cli.command} login --server ${b.apiUrl}${b.caFile ? ` --ca ${b.caFile}` : ''} --user ${b.username}   ${dim(c, '# asks for the password above')}`,
    `   ${b.cli.command} agents list`,
    `   ${b.cli.command} batch restart --status online --packages web   ${dim(c, '# on every online agent')}`,
    `   ${b.cli.command} batch config --agents ${b.exampleAgent} --package collector --file ${b.exampleConfigFile}`,
    '',
    ` Ctrl-C stops everything. Data stays in ${b.dataDir} for the next run; add --fresh to start over.`,
    rule,
    '',
  ].join('\n');
}
