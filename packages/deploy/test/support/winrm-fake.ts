/**
 * A fake WinRM endpoint for tests: no Windows host runs here, so the WinRM client, session and
 * WindowsInstaller are tested against this HTTP(S) server playing a recorded exchange. A
 * recording (test/fixtures/winrm/<name>.json, format in winrm-recording.ts) is an ordered list of
 * {expected request → response}; the envelopes are hand-built from the MS-WSMV documentation (fixtures/winrm/
 * envelopes.json), not captured from a real host. The fake:
 * - checks authentication like WinRM: Basic, or the NTLM NEGOTIATE/CHALLENGE/AUTHENTICATE
 *   exchange per connection, verifying the client's NTLMv2 response against the known password
 *   (winrm-fake-ntlm.ts);
 * - matches each request (Action, ShellId, CommandId, decoded PowerShell script, Send End flag)
 *   against the next recorded entry, and answers with its envelope (RelatesTo = the request's
 *   MessageID); a mismatch is recorded in `errors` and answered with a SOAP fault;
 * - records everything it received (`received`), and reassembles uploads from the stdin lines.
 */
import { createHash, randomUUID } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { decodePowerShell } from '../../src/winrm/powershell.js';
import { RESOURCE_URI_CMD, SIGNALS, type WsmanAction } from '../../src/winrm/wsman.js';
import { attr, find, findAll, parseXml, xmlEscape } from '../../src/winrm/xml.js';
import { challengeMessage, verifyAuthenticate, type NtlmConnState } from './winrm-fake-ntlm.js';
import {
  ACTION_BY_URI,
  expandRecording,
  loadEnvelopes,
  type ExchangeMatcher,
  type ReceiveReply,
  type RecordedExchange,
  type Recording,
} from './winrm-recording.js';

export { loadRecording } from './winrm-recording.js';
export type { Recording } from './winrm-recording.js';

export interface ReceivedRequest {
  action: WsmanAction | string;
  messageId: string;
  shellId?: string;
  commandId?: string;
  script?: string;
  command?: string;
  args?: string[];
  stdin?: Buffer;
  end?: boolean;
  signal?: string;
  options: Record<string, string>;
}

export interface FakeUpload {
  /** `$Path` as the upload script bound it (decoded literal). */
  script: string;
  bytes: Buffer;
  sha256: string;
}

export interface WinRmFakeOptions {
  recording: Recording;
  auth: 'basic' | 'ntlm';
  username: string;
  password: string;
  domain?: string;
  tls?: { key: string | Buffer; cert: string | Buffer };
}

export class WinRmFake {
  readonly received: ReceivedRequest[] = [];
  readonly errors: string[] = [];
  readonly uploads: FakeUpload[] = [];
  /** `basic:ok`, `basic:rejected`, `ntlm:challenge`, `ntlm:ok`, `ntlm:rejected`, `none` (401). */
  readonly authLog: string[] = [];
  connections = 0;
  readonly #opts: WinRmFakeOptions;
  readonly #exchanges: RecordedExchange[];
  readonly #envelopes = loadEnvelopes();
  readonly #conn = new WeakMap<Socket, NtlmConnState>();
  readonly #stdin = new Map<string, { script: string; chunks: Buffer[] }>();
  #cursor = 0;
  #server!: http.Server;
  port = 0;

  private constructor(opts: WinRmFakeOptions) {
    this.#opts = opts;
    this.#exchanges = expandRecording(opts.recording);
  }

  static async start(opts: WinRmFakeOptions): Promise<WinRmFake> {
    const fake = new WinRmFake(opts);
    const handler = (req: http.IncomingMessage, res: http.ServerResponse) => fake.#handle(req, res);
    fake.#server = opts.tls
      ? https.createServer({ key: opts.tls.key, cert: opts.tls.cert }, handler)
      : http.createServer(handler);
    fake.#server.on(opts.tls ? 'secureConnection' : 'connection', () => fake.connections++);
    await new Promise<void>((resolve) => fake.#server.listen(0, '127.0.0.1', resolve));
    fake.port = (fake.#server.address() as AddressInfo).port;
    return fake;
  }

  /** Entries of the recording not played yet (repeatable entries at the end do not count). */
  get remaining(): string[] {
    return this.#exchanges
      .slice(this.#cursor)
      .filter((e) => !e.repeat)
      .map((e) => `${e.expect.action}${e.expect.scriptFirstLine ? ` ${e.expect.scriptFirstLine}` : ''}`);
  }

  /** The decoded scripts of every Command received, in order. */
  get scripts(): string[] {
    return this.received.filter((r) => r.script !== undefined).map((r) => r.script!);
  }

  async stop(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      if (!this.#authenticate(req, res)) return;
      try {
        this.#answer(body, res);
      } catch (e) {
        this.errors.push(`fake: ${(e as Error).message}`);
        res.writeHead(500).end();
      }
    });
  }

  /** true when the request may proceed; otherwise the 401 has been sent. */
  #authenticate(req: http.IncomingMessage, res: http.ServerResponse): boolean {
    const header = req.headers.authorization ?? '';
    const deny = (what: string, extra: string[] = []) => {
      this.authLog.push(what);
      res.writeHead(401, { 'WWW-Authenticate': extra.length ? extra : ['Negotiate', 'Basic realm="WSMAN"'] });
      res.end();
      return false;
    };
    if (this.#opts.auth === 'basic') {
      const want = Buffer.from(`${this.#opts.username}:${this.#opts.password}`).toString('base64');
      if (header === `Basic ${want}`) {
        this.authLog.push('basic:ok');
        return true;
      }
      return deny(header ? 'basic:rejected' : 'none');
    }
    const state = this.#conn.get(req.socket) ?? { authed: false };
    this.#conn.set(req.socket, state);
    const m = /^(Negotiate|NTLM) (.+)$/.exec(header);
    if (!m) return state.authed ? true : deny('none');
    const token = Buffer.from(m[2]!, 'base64');
    const type = token.length >= 12 ? token.readUInt32LE(8) : 0;
    if (type === 1) {
      const challenge = challengeMessage(state);
      return deny('ntlm:challenge', [`${m[1]} ${challenge.toString('base64')}`]);
    }
    if (type === 3) {
      const { ok, problems } = verifyAuthenticate(token, state, this.#opts.username, this.#opts.password);
      this.errors.push(...problems);
      if (ok) {
        state.authed = true;
        this.authLog.push('ntlm:ok');
        return true;
      }
    }
    state.authed = false;
    return deny('ntlm:rejected');
  }

  #answer(body: string, res: http.ServerResponse): void {
    const got = this.#parse(body);
    this.received.push(got);
    const n = this.received.length;
    let entry: RecordedExchange | undefined;
    while (this.#cursor < this.#exchanges.length) {
      const e = this.#exchanges[this.#cursor]!;
      const why = this.#mismatch(e.expect, got);
      if (!why) {
        entry = e;
        if (!e.repeat) this.#cursor++;
        break;
      }
      if (!e.repeat) {
        this.errors.push(`request #${n} (${got.action}): ${why}`);
        break;
      }
      this.#cursor++; // a repeatable entry ends at the first request it does not match
    }
    if (!entry) {
      if (this.#cursor >= this.#exchanges.length)
        this.errors.push(`request #${n} (${got.action}): recording exhausted`);
      return this.#send(
        res,
        500,
        this.#fill(this.#envelopes.Fault!, got, {
          subcode: 'w:InternalError',
          wsmanCode: '0',
          reason: 'fake: unexpected request',
          message: this.errors.at(-1) ?? '',
        }),
        0,
      );
    }
    const r = entry.reply;
    const xml = r.receive
      ? this.#receiveEnvelope(got, r.receive)
      : this.#fill(
          r.body !== undefined ? [r.body].flat().join('') : this.#envelopes[r.envelope ?? '']!,
          got,
          r.vars ?? {},
        );
    this.#send(res, r.status ?? 200, xml, r.delayMs ?? 0);
  }

  #send(res: http.ServerResponse, status: number, xml: string, delayMs: number): void {
    const go = () => {
      if (res.destroyed) return;
      res.writeHead(status, { 'Content-Type': 'application/soap+xml;charset=UTF-8' }).end(xml);
    };
    if (delayMs > 0) setTimeout(go, delayMs);
    else go();
  }

  #parse(body: string): ReceivedRequest {
    const root = parseXml(body);
    const uri = find(root, 'Action')?.text.trim() ?? '';
    const action = ACTION_BY_URI.get(uri) ?? uri;
    const options: Record<string, string> = {};
    for (const o of findAll(root, 'Option')) options[attr(o, 'Name') ?? ''] = o.text;
    const got: ReceivedRequest = { action, messageId: find(root, 'MessageID')?.text.trim() ?? '', options };
    const shell = findAll(root, 'Selector').find((s) => attr(s, 'Name') === 'ShellId');
    if (shell) got.shellId = shell.text.trim();
    if (find(root, 'ResourceURI')?.text.trim() !== RESOURCE_URI_CMD)
      this.errors.push(`${action}: wrong ResourceURI`);
    if (find(root, 'To')?.text.trim() !== this.url) this.errors.push(`${action}: To is not ${this.url}`);
    if (!/^uuid:[0-9A-F-]{36}$/.test(got.messageId))
      this.errors.push(`${action}: bad MessageID ${got.messageId}`);
    if (!find(root, 'MaxEnvelopeSize') || !find(root, 'OperationTimeout') || !find(root, 'Locale')) {
      this.errors.push(`${action}: MaxEnvelopeSize, OperationTimeout or Locale missing`);
    }
    const withId = find(root, 'DesiredStream') ?? find(root, 'Stream') ?? find(root, 'Signal');
    if (withId && attr(withId, 'CommandId')) got.commandId = attr(withId, 'CommandId');
    if (action === 'Command') {
      got.command = find(root, 'Command')?.text ?? '';
      got.args = findAll(root, 'Arguments').map((a) => a.text);
      const i = got.args.indexOf('-EncodedCommand');
      if (got.command !== 'powershell.exe' || i === -1)
        this.errors.push('Command: not powershell.exe -EncodedCommand');
      else got.script = decodePowerShell(got.args[i + 1] ?? '');
      if (got.options.WINRS_CONSOLEMODE_STDIN === 'FALSE')
        this.#stdin.set('next', { script: got.script ?? '', chunks: [] });
    }
    if (action === 'Send') {
      const s = find(root, 'Stream')!;
      got.stdin = Buffer.from(s.text.trim(), 'base64');
      got.end = attr(s, 'End') === 'true';
      this.#collectStdin(got);
    }
    if (action === 'Signal') got.signal = find(root, 'Code')?.text.trim();
    return got;
  }

  #collectStdin(got: ReceivedRequest): void {
    const id = got.commandId ?? '';
    const pending = this.#stdin.get(id) ?? this.#stdin.get('next');
    if (!pending) return void this.errors.push('Send without a stdin command');
    this.#stdin.delete('next');
    this.#stdin.set(id, pending);
    pending.chunks.push(got.stdin!);
    if (!got.end) return;
    this.#stdin.delete(id);
    const lines = Buffer.concat(pending.chunks).toString('latin1').split('\r\n').filter(Boolean);
    const bytes = Buffer.concat(lines.map((l) => Buffer.from(l, 'base64')));
    const path =
      /^\s*\$Path = '((?:[^']|'')*)'/m
        .exec(pending.script)?.[1]
        ?.replace(/(['\u2018\u2019\u201a\u201b])\1/g, '$1') ?? '';
    this.uploads.push({ script: path, bytes, sha256: createHash('sha256').update(bytes).digest('hex') });
  }

  #mismatch(m: ExchangeMatcher, got: ReceivedRequest): string | undefined {
    if (m.action !== got.action) return `expected ${m.action}`;
    if (m.shellId !== undefined && m.shellId !== got.shellId)
      return `ShellId ${got.shellId}, expected ${m.shellId}`;
    if (m.commandId !== undefined && m.commandId !== got.commandId)
      return `CommandId ${got.commandId}, expected ${m.commandId}`;
    if (m.signal !== undefined && got.signal !== SIGNALS[m.signal])
      return `signal ${got.signal}, expected ${m.signal}`;
    if (m.end !== undefined && m.end !== got.end) return `End=${got.end}, expected ${m.end}`;
    const first = got.script?.split('\n')[0];
    if (m.scriptFirstLine !== undefined && m.scriptFirstLine !== first) {
      return `script '${first}', expected '${m.scriptFirstLine}'`;
    }
    for (const s of m.scriptIncludes ?? []) if (!got.script?.includes(s)) return `script lacks '${s}'`;
    return undefined;
  }

  #receiveEnvelope(got: ReceivedRequest, r: ReceiveReply): string {
    const commandId = got.commandId ?? '';
    const last = this.uploads.at(-1);
    const text = (s: string) => s.replace(/\{\{uploadedSha256\}\}/g, last?.sha256 ?? '(no upload)');
    const streams: string[] = [];
    for (const name of ['stdout', 'stderr'] as const) {
      for (const s of [r[name] ?? []].flat()) {
        const data = Buffer.from(text(s), 'utf8').toString('base64');
        streams.push(this.#fill(this.#envelopes.ReceiveStream!, got, { name, commandId, data }));
      }
      if (!r.running) streams.push(this.#fill(this.#envelopes.ReceiveStreamEnd!, got, { name, commandId }));
    }
    const state = r.running
      ? this.#fill(this.#envelopes.CommandStateRunning!, got, { commandId })
      : this.#fill(this.#envelopes.CommandStateDone!, got, { commandId, exitCode: String(r.exitCode ?? 0) });
    return this.#fill(
      this.#envelopes.ReceiveResponse!,
      got,
      {},
      { streams: streams.join(''), commandState: state },
    );
  }

  /** Fills `{{var}}`: request-derived values, then `vars` (escaped), then pre-built XML (`raw`). */
  #fill(
    template: string,
    got: ReceivedRequest,
    vars: Record<string, string>,
    raw: Record<string, string> = {},
  ): string {
    const values: Record<string, string> = {
      messageId: `uuid:${randomUUID().toUpperCase()}`,
      relatesTo: got.messageId,
      endpoint: this.url,
      shellId: got.shellId ?? '',
      commandId: got.commandId ?? '',
      machine: 'WIN-FAKE',
      ...vars,
    };
    return template.replace(/\{\{(\w+)\}\}/g, (_m, k: string) => {
      if (k in raw) return raw[k]!;
      if (k in values) return xmlEscape(values[k]!);
      this.errors.push(`template variable {{${k}}} has no value`);
      return '';
    });
  }

  get url(): string {
    return `${this.#opts.tls ? 'https' : 'http'}://127.0.0.1:${this.port}/wsman`;
  }
}
