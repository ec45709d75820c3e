/**
 * A WS-Management (WinRM) client for the Windows Remote Shell over HTTP (5985) or HTTPS (5986):
 * Create shell, Command, Send (stdin), Receive (until CommandState Done), Signal, Delete — the
 * SOAP envelopes (wsman.ts), SOAP faults as typed errors, and the receive loop with its
 * deadline. The connection, authentication (Basic, NTLMv2) and TLS (normal verification or a
 * pinned SHA-256 fingerprint) are winrm-transport.ts's.
 *
 * Plain HTTP: real WinRM encrypts NTLM traffic on port 5985 (message sealing), which this client
 * does not implement; it therefore refuses HTTP — for NTLM and for Basic, which would send the
 * password in clear text — unless `allowUnencrypted` is set (the device's WinRM service must then
 * allow it too: `winrm set winrm/config/service @{AllowUnencrypted="true"}`). Use HTTPS.
 *
 * No Windows host runs in this repository's tests: the protocol is exercised against a
 * recorded-exchange fake (test/support/winrm-fake.ts) whose envelopes are hand-built from the
 * MS-WSMV documentation, not captured from a real host.
 */
import { ValidationError } from '@opsplane/models';
import { WinRmCommandError, WinRmFaultError, WinRmUnreachableError } from './winrm-errors.js';
import { WinRmTransport } from './winrm-transport.js';
import * as ws from './wsman.js';
import { parseXml, XmlParseError, type XmlElement } from './xml.js';

export interface WinRmClientOptions {
  host: string;
  /** Default 5986 with https, else 5985. */
  port?: number;
  https?: boolean;
  /** `user`, `DOMAIN\user` or `user@domain`. */
  username: string;
  password: string;
  /** NTLM domain when the username does not carry one. */
  domain?: string;
  /** Default 'ntlm' (WinRM's default Negotiate auth; Basic is off by default on Windows). */
  auth?: 'basic' | 'ntlm';
  /** Allow plain HTTP (see the module comment). Default false. */
  allowUnencrypted?: boolean;
  tls?: {
    /**
     * SHA-256 fingerprint of the device's certificate (hex, colons optional). When set, a
     * self-signed certificate is accepted if — and only if — it matches; CA checks are skipped.
     */
    fingerprint256?: string;
    /** Extra CA certificate(s) for normal verification. */
    ca?: string | Buffer;
    /** SNI / name to verify, when it differs from `host`. */
    servername?: string;
  };
  /** Longest wait for one HTTP exchange (connect included). Default 30 000 ms. */
  timeoutMs?: number;
  /** WS-Man OperationTimeout for Receive (long polling). Default 20 s. */
  operationTimeoutSec?: number;
  /** Default 153 600 bytes (WinRM's own default). */
  maxEnvelopeSize?: number;
  /** Default en-US. */
  locale?: string;
}

export interface CommandResult {
  /** Exit code; null if WinRM reported none. */
  code: number | null;
  stdout: Buffer;
  stderr: Buffer;
}

export interface RunCommandOptions {
  /** Fed to the command's stdin in order (one Send per chunk); stdin is closed after the last. */
  stdin?: Iterable<Buffer> | AsyncIterable<Buffer>;
  /** Whole command (stdin included). Default: none. */
  timeoutMs?: number;
  /** For error messages, e.g. `PowerShell 'detect'`. */
  what?: string;
  /**
   * Called when the shell is gone on the server (idle timeout, WinRM restart) before the command
   * started: returns a new shell id, and the command is started there instead (once).
   */
  recreateShell?: () => Promise<string>;
}

export class WinRmClient {
  readonly endpoint: string;
  /** `user@host:port`, for messages (no secrets). */
  readonly target: string;
  readonly #opts: WinRmClientOptions;
  readonly #transport: WinRmTransport;
  readonly #timeoutMs: number;
  readonly #opTimeoutSec: number;

  constructor(opts: WinRmClientOptions) {
    const secure = opts.https ?? false;
    const port = opts.port ?? (secure ? 5986 : 5985);
    const auth = opts.auth ?? 'ntlm';
    if (!secure && !opts.allowUnencrypted) {
      throw new ValidationError(
        auth === 'ntlm'
          ? 'WinRM NTLM over plain HTTP needs message encryption, which this client does not implement: ' +
              'use https (port 5986), or set allowUnencrypted (the device must allow unencrypted WinRM)'
          : 'WinRM Basic auth over plain HTTP would send the password in clear text: use https (port 5986), ' +
              'or set allowUnencrypted (the device must allow unencrypted WinRM)',
      );
    }
    const host = opts.host.includes(':') ? `[${opts.host}]` : opts.host;
    const url = new URL(`${secure ? 'https' : 'http'}://${host}:${port}/wsman`);
    this.endpoint = url.href;
    this.target = `${opts.username}@${host}:${port}`;
    this.#opts = opts;
    this.#timeoutMs = opts.timeoutMs ?? 30_000;
    this.#opTimeoutSec = opts.operationTimeoutSec ?? 20;
    this.#transport = new WinRmTransport({
      url,
      target: this.target,
      username: opts.username,
      password: opts.password,
      auth,
      ...(opts.domain !== undefined ? { domain: opts.domain } : {}),
      ...(opts.tls !== undefined ? { tls: opts.tls } : {}),
    });
  }

  // ---------------------------------------------------------------------------- shell operations

  async createShell(): Promise<string> {
    const options = { WINRS_NOPROFILE: 'FALSE', WINRS_CODEPAGE: '65001' };
    const root = await this.#call('Create shell', { action: 'Create', options }, ws.createShellBody());
    const id = ws.parseShellId(root);
    if (!id) throw this.#protocolError('Create shell', 'no ShellId in the response');
    return id;
  }

  /**
   * Starts `command args…` in the shell, without cmd.exe (WINRS_SKIP_CMD_SHELL), which lifts the
   * 8 191-character cmd line limit to CreateProcess's 32 767. `stdin` selects pipe mode for Send.
   */
  async command(shellId: string, command: string, args: readonly string[], stdin = false): Promise<string> {
    const options = { WINRS_CONSOLEMODE_STDIN: stdin ? 'FALSE' : 'TRUE', WINRS_SKIP_CMD_SHELL: 'TRUE' };
    const root = await this.#call(
      'Command',
      { action: 'Command', shellId, options },
      ws.commandBody(command, args),
    );
    const id = ws.parseCommandId(root);
    if (!id) throw this.#protocolError('Command', 'no CommandId in the response');
    return id;
  }

  async send(shellId: string, commandId: string, data: Buffer, end: boolean): Promise<void> {
    await this.#call('Send', { action: 'Send', shellId }, ws.sendBody(commandId, data, end));
  }

  /** One Receive: the output so far. An OperationTimeout fault (no output yet) is an empty chunk. */
  async receive(
    shellId: string,
    commandId: string,
    operationTimeoutSec = this.#opTimeoutSec,
  ): Promise<ws.ReceiveChunk> {
    const options = { WSMAN_CMDSHELL_OPTION_KEEPALIVE: 'TRUE' };
    try {
      const root = await this.#call(
        'Receive',
        { action: 'Receive', shellId, options, operationTimeoutSec },
        ws.receiveBody(commandId),
        operationTimeoutSec * 1000 + this.#timeoutMs,
      );
      return ws.parseReceive(root, commandId);
    } catch (e) {
      if (e instanceof WinRmFaultError && e.wsmanCode === ws.WSMAN_FAULT.OPERATION_TIMEOUT) {
        return { stdout: [], stderr: [], done: false, exitCode: null };
      }
      throw e;
    }
  }

  async signal(
    shellId: string,
    commandId: string,
    code: keyof typeof ws.SIGNALS = 'terminate',
  ): Promise<void> {
    await this.#call('Signal', { action: 'Signal', shellId }, ws.signalBody(commandId, code));
  }

  async deleteShell(shellId: string): Promise<void> {
    await this.#call('Delete shell', { action: 'Delete', shellId }, '');
  }

  /**
   * Runs one command to completion: Command, Send (stdin), Receive until Done, then Signal
   * terminate (releases it on the server; on timeout it is what stops the process).
   */
  async run(
    shellId: string,
    command: string,
    args: readonly string[],
    opts: RunCommandOptions = {},
  ): Promise<CommandResult> {
    const what = opts.what ?? `'${command}'`;
    const deadline = opts.timeoutMs !== undefined ? Date.now() + opts.timeoutMs : Infinity;
    let commandId: string;
    try {
      commandId = await this.command(shellId, command, args, opts.stdin !== undefined);
    } catch (e) {
      const lost = e instanceof WinRmFaultError && e.wsmanCode === ws.WSMAN_FAULT.SHELL_NOT_FOUND;
      if (!lost || !opts.recreateShell) throw e;
      shellId = await opts.recreateShell();
      commandId = await this.command(shellId, command, args, opts.stdin !== undefined);
    }
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    const timedOut = () =>
      new WinRmCommandError(
        what,
        null,
        Buffer.concat(stderr).toString('utf8'),
        `timed out after ${opts.timeoutMs} ms`,
      );
    try {
      if (opts.stdin !== undefined) {
        // One chunk of lookahead, so that the last Send carries End="true".
        let pending: Buffer | undefined;
        for await (const chunk of opts.stdin) {
          if (pending) await this.send(shellId, commandId, pending, false);
          if (Date.now() > deadline) throw timedOut();
          pending = chunk;
        }
        await this.send(shellId, commandId, pending ?? Buffer.alloc(0), true);
      }
      for (;;) {
        const remaining = deadline - Date.now();
        if (remaining <= 0) throw timedOut();
        const opSec = Math.max(1, Math.min(this.#opTimeoutSec, Math.floor(remaining / 1000)));
        let chunk: ws.ReceiveChunk;
        try {
          chunk = await this.receive(shellId, commandId, opSec);
        } catch (e) {
          if (e instanceof WinRmUnreachableError && Date.now() >= deadline) throw timedOut();
          throw e;
        }
        stdout.push(...chunk.stdout);
        stderr.push(...chunk.stderr);
        if (chunk.done)
          return { code: chunk.exitCode, stdout: Buffer.concat(stdout), stderr: Buffer.concat(stderr) };
      }
    } finally {
      await this.signal(shellId, commandId).catch(() => undefined);
    }
  }

  /** Drops the keep-alive connection. The shell is the caller's to delete first. */
  close(): void {
    this.#transport.close();
  }

  // ------------------------------------------------------------------------------------ SOAP

  async #call(
    what: string,
    h: Omit<ws.HeaderOptions, 'to' | 'operationTimeoutSec' | 'maxEnvelopeSize' | 'locale'> & {
      operationTimeoutSec?: number;
    },
    body: string,
    timeoutMs = this.#timeoutMs,
  ): Promise<XmlElement> {
    const { xml, messageId } = ws.envelope(
      {
        to: this.endpoint,
        operationTimeoutSec: this.#opTimeoutSec,
        maxEnvelopeSize: this.#opts.maxEnvelopeSize ?? 153_600,
        locale: this.#opts.locale ?? 'en-US',
        ...h,
      },
      body,
    );
    const res = await this.#transport.post(xml, timeoutMs);
    let root: XmlElement | undefined;
    try {
      root = res.body.trim() ? parseXml(res.body) : undefined;
    } catch (e) {
      if (!(e instanceof XmlParseError)) throw e;
      if (res.status === 200)
        throw this.#protocolError(what, `unparsable response: ${e.message}`, res.status);
    }
    const fault = root && ws.parseFault(root);
    if (fault) throw new WinRmFaultError(what, fault, res.status);
    if (res.status !== 200 || !root) {
      throw this.#protocolError(
        what,
        res.status !== 200 ? `HTTP ${res.status}` : 'empty response',
        res.status,
      );
    }
    const rel = ws.relatesTo(root);
    if (rel !== undefined && rel !== messageId) {
      throw this.#protocolError(what, `response RelatesTo ${rel}, expected ${messageId}`, res.status);
    }
    return root;
  }

  #protocolError(what: string, reason: string, status = 200): WinRmFaultError {
    return new WinRmFaultError(what, { subcode: '', wsmanCode: undefined, reason }, status);
  }
}
