/**
 * One WinRM session to a Windows device — the counterpart of SshSession: a Windows Remote Shell
 * kept open for the session, PowerShell scripts run through `powershell.exe -EncodedCommand`
 * with their arguments bound as literal data (powershell.ts), file upload as base64 lines
 * streamed to a PowerShell that appends them to the file, verified with Get-FileHash SHA256, and
 * OS/arch/admin detection. The password stays inside WinRmClient; no message or log line has it.
 *
 * Tested against a recorded-exchange fake (test/support/winrm-fake.ts), not a Windows host.
 */
import { createHash, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { createLogger, type Logger } from '@opsplane/kit';
import { WinRmClient, type WinRmClientOptions } from './winrm-client.js';
import { WinRmChecksumError, WinRmCommandError } from './winrm-errors.js';
import {
  cleanClixml,
  composeScript,
  MAX_ENCODED_COMMAND,
  powershellArgs,
  psBindings,
  psLabel,
  type PsValue,
} from './powershell.js';

export interface WinRmConnectOptions extends WinRmClientOptions {
  logger?: Logger;
}

export interface PowerShellOptions {
  /** Whole command. Default 120 000 ms. */
  timeoutMs?: number;
  /** Throw WinRmCommandError on a non-zero exit. Default false. */
  check?: boolean;
  /** Bound as `$Name = <literal>` ahead of the script: the only way values reach a script. */
  vars?: Record<string, PsValue>;
  /** First line of the script (`# opsplane: <label>`) and the name in error messages. */
  label?: string;
}

export interface PowerShellResult {
  code: number | null;
  stdout: string;
  /** CLIXML decoded to text. */
  stderr: string;
}

export interface WinRmUploadOptions {
  /** Raw bytes per Send (each becomes one base64 line). Default 48 KiB: fits WinRM's 150 KiB envelope limit. */
  chunkBytes?: number;
  /** Whole upload. Default 30 min. */
  timeoutMs?: number;
}

export interface WinRmUploadResult {
  remotePath: string;
  sha256: string;
  bytes: number;
}

export interface WinRmDetectResult {
  os: 'windows';
  /** amd64, arm64, or the raw PROCESSOR_ARCHITECTURE. */
  arch: string;
  /** Whether the session's token is in BUILTIN\Administrators (elevated: WinRM tokens are). */
  isAdmin: boolean;
  /** e.g. 10.0.17763 */
  osVersion: string;
  /** e.g. Microsoft Windows Server 2019 Standard */
  caption: string;
  psVersion: string;
  user: string;
}

/** PROCESSOR_ARCHITECTURE → the platform's arch names, else the raw value (lowercased). */
export function normalizeWindowsArch(raw: string): string {
  const a = raw.trim().toUpperCase();
  if (a === 'AMD64' || a === 'X64') return 'amd64';
  if (a === 'ARM64') return 'arm64';
  return a.toLowerCase();
}

const DETECT = `
$arch = $env:PROCESSOR_ARCHITECTURE
if ($env:PROCESSOR_ARCHITEW6432) { $arch = $env:PROCESSOR_ARCHITEW6432 }
$id = [Security.Principal.WindowsIdentity]::GetCurrent()
$admin = ([Security.Principal.WindowsPrincipal]$id).IsInRole([Security.Principal.WindowsBuiltInRole]::Administrator)
$os = Get-CimInstance -ClassName Win32_OperatingSystem
[pscustomobject]@{
  arch = $arch; admin = $admin; version = $os.Version; caption = $os.Caption
  ps = $PSVersionTable.PSVersion.ToString(); user = $id.Name
} | ConvertTo-Json -Compress`;

// Runs with stdin attached, so it cannot use composeScript's try/catch: a script with begin/
// process/end blocks has no statements outside them. Each stdin line is one base64 chunk.
const UPLOAD_BODY = `
begin {
  $ErrorActionPreference = 'Stop'
  $ProgressPreference = 'SilentlyContinue'
  %BINDINGS%
  $dir = [IO.Path]::GetDirectoryName($Path)
  if ($dir) { [void][IO.Directory]::CreateDirectory($dir) }
  $fs = [IO.File]::Open($Path, [IO.FileMode]::Create, [IO.FileAccess]::Write, [IO.FileShare]::None)
}
process {
  foreach ($line in $input) {
    if ($line) {
      $bytes = [Convert]::FromBase64String($line)
      $fs.Write($bytes, 0, $bytes.Length)
    }
  }
}
end { $fs.Dispose() }`;

export class WinRmSession {
  readonly host: string;
  readonly target: string;
  readonly #client: WinRmClient;
  readonly #log: Logger;
  #shellId: string;
  #closed = false;

  private constructor(host: string, client: WinRmClient, shellId: string, log: Logger) {
    this.host = host;
    this.target = client.target;
    this.#client = client;
    this.#shellId = shellId;
    this.#log = log;
  }

  /** Connects, authenticates and opens the shell: a wrong password or port fails here. */
  static async connect(opts: WinRmConnectOptions): Promise<WinRmSession> {
    const client = new WinRmClient(opts);
    const log = (opts.logger ?? createLogger('winrm')).child({ target: client.target });
    try {
      const shellId = await client.createShell();
      log.debug({ endpoint: client.endpoint }, 'winrm connected');
      return new WinRmSession(opts.host, client, shellId, log);
    } catch (e) {
      client.close();
      throw e;
    }
  }

  /**
   * Runs a PowerShell script (composeScript: strict errors, variables bound as literals, errors
   * as plain text + exit 1). Resolves whatever the exit code unless `check`.
   */
  async runPowerShell(script: string, opts: PowerShellOptions = {}): Promise<PowerShellResult> {
    const label = opts.label ?? 'script';
    const full = composeScript(label, script, opts.vars ?? {});
    const res = await this.#exec(full, `PowerShell '${label}'`, opts.timeoutMs ?? 120_000);
    if (opts.check && res.code !== 0)
      throw new WinRmCommandError(`PowerShell '${label}'`, res.code, res.stderr);
    return res;
  }

  /**
   * Uploads a local file or a buffer to `remotePath` (parent directories created, file replaced)
   * and checks that the remote Get-FileHash SHA256 equals the local one (WinRmChecksumError).
   */
  async upload(
    source: string | Buffer,
    remotePath: string,
    opts: WinRmUploadOptions = {},
  ): Promise<WinRmUploadResult> {
    const chunkBytes = opts.chunkBytes ?? 48 * 1024;
    if (!Number.isInteger(chunkBytes) || chunkBytes < 1)
      throw new TypeError('chunkBytes must be a positive integer');
    const hash = createHash('sha256');
    const counter = { bytes: 0 };
    const script = [
      psLabel('upload'),
      // A function replacement: a string one would expand `$'` / `$&` inside the path.
      UPLOAD_BODY.trim().replace('%BINDINGS%', () => psBindings({ Path: remotePath })),
    ].join('\n');
    const res = await this.#exec(script, `upload to ${remotePath}`, opts.timeoutMs ?? 30 * 60_000, {
      stdin: base64Lines(source, chunkBytes, hash, counter),
    });
    if (res.code !== 0) throw new WinRmCommandError(`upload to ${remotePath}`, res.code, res.stderr);
    const sha256 = hash.digest('hex');
    const check = await this.runPowerShell(
      '(Get-FileHash -LiteralPath $Path -Algorithm SHA256).Hash.ToLowerInvariant()',
      {
        vars: { Path: remotePath },
        label: 'upload.verify',
        check: true,
        timeoutMs: 10 * 60_000,
      },
    );
    const actual = check.stdout.trim().toLowerCase();
    if (actual !== sha256) throw new WinRmChecksumError(remotePath, sha256, actual);
    this.#log.debug({ remotePath, bytes: counter.bytes, sha256 }, 'winrm upload verified');
    return { remotePath, sha256, bytes: counter.bytes };
  }

  /** OS version, architecture, admin rights, PowerShell version and user of the session. */
  async detect(): Promise<WinRmDetectResult> {
    const res = await this.runPowerShell(DETECT, { label: 'detect', check: true, timeoutMs: 60_000 });
    const line = res.stdout.split(/\r?\n/).find((l) => l.trim().startsWith('{'));
    let raw: Record<string, unknown>;
    try {
      raw = JSON.parse(line ?? '') as Record<string, unknown>;
    } catch {
      throw new WinRmCommandError(
        "PowerShell 'detect'",
        res.code,
        res.stderr,
        `printed no JSON (${res.stdout.trim().slice(0, 200)})`,
      );
    }
    const str = (k: string): string => (typeof raw[k] === 'string' ? (raw[k] as string) : '');
    return {
      os: 'windows',
      arch: normalizeWindowsArch(str('arch')),
      isAdmin: raw.admin === true,
      osVersion: str('version'),
      caption: str('caption'),
      psVersion: str('ps'),
      user: str('user'),
    };
  }

  /** Deletes the remote shell (best effort) and drops the connection. Idempotent, never rejects. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    try {
      await this.#client.deleteShell(this.#shellId);
    } catch (e) {
      this.#log.debug({ err: (e as Error).message }, 'winrm delete shell failed');
    } finally {
      this.#client.close();
    }
  }

  get closed(): boolean {
    return this.#closed;
  }

  async #exec(
    script: string,
    what: string,
    timeoutMs: number,
    extra: { stdin?: AsyncIterable<Buffer> } = {},
  ): Promise<PowerShellResult> {
    if (this.#closed) throw new WinRmCommandError('WinRM session', null, '', `to ${this.target} is closed`);
    const args = powershellArgs(script);
    if (args[args.length - 1]!.length > MAX_ENCODED_COMMAND) {
      throw new WinRmCommandError(
        what,
        null,
        '',
        'not started: the encoded script exceeds the command line limit',
      );
    }
    const res = await this.#client.run(this.#shellId, 'powershell.exe', args, {
      what,
      timeoutMs,
      recreateShell: async () => {
        this.#log.info({}, 'winrm shell lost; opening a new one');
        this.#shellId = await this.#client.createShell();
        return this.#shellId;
      },
      ...(extra.stdin ? { stdin: extra.stdin } : {}),
    });
    return {
      code: res.code,
      stdout: res.stdout.toString('utf8').replace(/\r\n/g, '\n'),
      stderr: cleanClixml(res.stderr.toString('utf8')),
    };
  }
}

/** The source as base64 lines (CRLF-terminated, one per chunk), hashing and counting as it goes. */
async function* base64Lines(
  source: string | Buffer,
  chunkBytes: number,
  hash: Hash,
  counter: { bytes: number },
): AsyncGenerator<Buffer> {
  const line = (chunk: Buffer): Buffer => {
    hash.update(chunk);
    counter.bytes += chunk.length;
    return Buffer.from(chunk.toString('base64') + '\r\n', 'latin1');
  };
  if (typeof source !== 'string') {
    for (let off = 0; off < source.length; off += chunkBytes)
      yield line(source.subarray(off, off + chunkBytes));
    return;
  }
  for await (const chunk of createReadStream(source, { highWaterMark: chunkBytes }))
    yield line(chunk as Buffer);
}
