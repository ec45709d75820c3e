/**
 * PowerShell script plumbing for WinRmSession: values passed as data (single-quoted literals bound
 * to variables ahead of a constant script body — never text spliced into code), the common
 * preamble and error wrapper, `-EncodedCommand` encoding, and decoding of the CLIXML that
 * powershell.exe writes to stderr when its input is an encoded command.
 */

export type PsValue = string | number | boolean | readonly string[];

/**
 * Quotes a string as a PowerShell single-quoted literal: nothing inside is expanded. PowerShell
 * also closes single-quoted strings on the typographic quotes U+2018–U+201B, so those are
 * doubled like `'` (the same rule as PowerShell's own CodeGeneration.EscapeSingleQuotedStringContent).
 */
export function psQuote(s: string): string {
  if (s.includes('\0')) throw new TypeError('PowerShell argument contains a NUL character');
  return `'${s.replace(/['\u2018\u2019\u201a\u201b]/g, (q) => q + q)}'`;
}

/** A value as a PowerShell expression that evaluates to exactly that value. */
export function psLiteral(v: PsValue): string {
  if (typeof v === 'string') return psQuote(v);
  if (typeof v === 'boolean') return v ? '$true' : '$false';
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) throw new TypeError('PowerShell number argument must be finite');
    return Number.isInteger(v) ? `[int64]${v}` : `[double]${v}`;
  }
  return `@(${v.map(psQuote).join(', ')})`;
}

const VAR_NAME = /^[A-Za-z][A-Za-z0-9]*$/;
// Automatic variables a binding must not shadow.
const RESERVED = new Set(
  [
    'args',
    'input',
    'this',
    'true',
    'false',
    'null',
    'error',
    'host',
    'home',
    'pid',
    'env',
    'psitem',
    'matches',
  ].concat(['lastexitcode', 'erroractionpreference', 'progresspreference', 'pwd', 'profile']),
);

/** `$Name = <literal>` lines, one per variable. */
export function psBindings(vars: Record<string, PsValue>): string {
  return Object.entries(vars)
    .map(([k, v]) => {
      if (!VAR_NAME.test(k) || RESERVED.has(k.toLowerCase()))
        throw new TypeError(`bad PowerShell variable name '${k}'`);
      return `$${k} = ${psLiteral(v)}`;
    })
    .join('\n');
}

/** Labels make the first line of every script say what it is (logs, the test fake's matchers). */
export function psLabel(label: string): string {
  return `# opsplane: ${label.replace(/[^\w .:/-]/g, '_').slice(0, 80)}`;
}

/**
 * The full script: label, strict error handling, no progress records (they would arrive as CLIXML
 * on stderr), the bound variables, then `body` inside a try whose catch prints the error as plain
 * text and exits 1 — so a failure is an exit code plus a readable message, not CLIXML.
 */
export function composeScript(label: string, body: string, vars: Record<string, PsValue> = {}): string {
  return [
    psLabel(label),
    "$ErrorActionPreference = 'Stop'",
    "$ProgressPreference = 'SilentlyContinue'",
    psBindings(vars),
    'try {',
    body.trim(),
    '} catch {',
    '  [Console]::Error.WriteLine($_.Exception.Message)',
    '  exit 1',
    '}',
    'exit 0',
  ]
    .filter((l) => l !== '')
    .join('\n');
}

/** `-EncodedCommand` takes base64 of the script's UTF-16LE bytes. */
export function encodePowerShell(script: string): string {
  return Buffer.from(script, 'utf16le').toString('base64');
}

export function decodePowerShell(encoded: string): string {
  return Buffer.from(encoded, 'base64').toString('utf16le');
}

/** The argv WinRmSession runs (without cmd.exe). */
export function powershellArgs(script: string): string[] {
  return [
    '-NoProfile',
    '-NonInteractive',
    '-ExecutionPolicy',
    'Bypass',
    '-EncodedCommand',
    encodePowerShell(script),
  ];
}

/** CreateProcess's command line limit, minus room for `powershell.exe` and the other flags. */
export const MAX_ENCODED_COMMAND = 32_767 - 120;

/**
 * Turns `#< CLIXML` stderr into its text: the error-stream strings, with PowerShell's `_xHHHH_`
 * escapes (e.g. `_x000D__x000A_` for CRLF) decoded. Plain stderr is returned as is.
 */
export function cleanClixml(stderr: string): string {
  const at = stderr.indexOf('#< CLIXML');
  if (at === -1) return stderr;
  const before = stderr.slice(0, at);
  const xml = stderr.slice(at + '#< CLIXML'.length);
  const parts: string[] = [];
  for (const m of xml.matchAll(/<S S="(Error|Warning)">([\s\S]*?)<\/S>/g)) {
    parts.push(
      m[2]!
        .replace(/_x([0-9A-Fa-f]{4})_/g, (_s, hex: string) => String.fromCharCode(parseInt(hex, 16)))
        .replace(/&lt;/g, '<')
        .replace(/&gt;/g, '>')
        .replace(/&quot;/g, '"')
        .replace(/&apos;/g, "'")
        .replace(/&amp;/g, '&'),
    );
  }
  return (before + parts.join('')).replace(/\r\n/g, '\n');
}
