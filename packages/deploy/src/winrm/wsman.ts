/**
 * WS-Management (MS-WSMV) message shapes for the Windows Remote Shell: the SOAP envelopes the
 * client sends (Create shell, Command, Send, Receive, Signal, Delete) and the parsing of what
 * WinRM 2.0+ answers (ShellId, CommandId, output streams, command state, SOAP faults). Pure
 * functions, no I/O: winrm-client.ts does the HTTP, and the test fake reuses the constants.
 */
import { randomUUID } from 'node:crypto';
import { attr, find, findAll, xmlEscape, type XmlElement } from './xml.js';

export const NS = {
  s: 'http://www.w3.org/2003/05/soap-envelope',
  a: 'http://schemas.xmlsoap.org/ws/2004/08/addressing',
  w: 'http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd',
  p: 'http://schemas.microsoft.com/wbem/wsman/1/wsman.xsd',
  rsp: 'http://schemas.microsoft.com/wbem/wsman/1/windows/shell',
} as const;

/** The cmd shell resource: every operation here addresses it. */
export const RESOURCE_URI_CMD = 'http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd';
const ANONYMOUS = 'http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous';
const SHELL = 'http://schemas.microsoft.com/wbem/wsman/1/windows/shell';

export const ACTIONS = {
  Create: 'http://schemas.xmlsoap.org/ws/2004/09/transfer/Create',
  Delete: 'http://schemas.xmlsoap.org/ws/2004/09/transfer/Delete',
  Command: `${SHELL}/Command`,
  Send: `${SHELL}/Send`,
  Receive: `${SHELL}/Receive`,
  Signal: `${SHELL}/Signal`,
} as const;
export type WsmanAction = keyof typeof ACTIONS;

export const SIGNALS = {
  terminate: `${SHELL}/signal/terminate`,
  ctrl_c: `${SHELL}/signal/ctrl_c`,
} as const;

export const COMMAND_STATE_DONE = `${SHELL}/CommandState/Done`;
export const COMMAND_STATE_RUNNING = `${SHELL}/CommandState/Running`;

/** WSManFault codes the client acts on (Windows error numbers in the fault detail). */
export const WSMAN_FAULT = {
  /** Receive's OperationTimeout elapsed without output: not an error, receive again. */
  OPERATION_TIMEOUT: 2150858793,
  /** The shell is gone on the server (idle timeout, service restart): create a new one. */
  SHELL_NOT_FOUND: 2150858843,
} as const;

export interface HeaderOptions {
  /** The endpoint URL, e.g. `https://host:5986/wsman`. */
  to: string;
  action: WsmanAction;
  shellId?: string;
  options?: Record<string, string>;
  operationTimeoutSec: number;
  maxEnvelopeSize: number;
  locale: string;
}

/** A full SOAP envelope with a fresh MessageID (returned too, to check RelatesTo). */
export function envelope(h: HeaderOptions, body: string): { xml: string; messageId: string } {
  const messageId = `uuid:${randomUUID().toUpperCase()}`;
  const must = 's:mustUnderstand="true"';
  const lang = `xml:lang="${xmlEscape(h.locale)}"`;
  const parts = [
    `<s:Envelope xmlns:s="${NS.s}" xmlns:a="${NS.a}" xmlns:w="${NS.w}" xmlns:p="${NS.p}" xmlns:rsp="${NS.rsp}">`,
    '<s:Header>',
    `<a:To>${xmlEscape(h.to)}</a:To>`,
    `<a:ReplyTo><a:Address ${must}>${ANONYMOUS}</a:Address></a:ReplyTo>`,
    `<w:MaxEnvelopeSize ${must}>${h.maxEnvelopeSize}</w:MaxEnvelopeSize>`,
    `<a:MessageID>${messageId}</a:MessageID>`,
    `<w:Locale ${lang} s:mustUnderstand="false"/>`,
    `<p:DataLocale ${lang} s:mustUnderstand="false"/>`,
    `<w:OperationTimeout>PT${h.operationTimeoutSec}S</w:OperationTimeout>`,
    `<w:ResourceURI ${must}>${RESOURCE_URI_CMD}</w:ResourceURI>`,
    `<a:Action ${must}>${ACTIONS[h.action]}</a:Action>`,
  ];
  if (h.shellId !== undefined) {
    parts.push(
      `<w:SelectorSet><w:Selector Name="ShellId">${xmlEscape(h.shellId)}</w:Selector></w:SelectorSet>`,
    );
  }
  if (h.options && Object.keys(h.options).length) {
    parts.push('<w:OptionSet>');
    for (const [k, v] of Object.entries(h.options)) {
      parts.push(`<w:Option Name="${xmlEscape(k)}">${xmlEscape(v)}</w:Option>`);
    }
    parts.push('</w:OptionSet>');
  }
  parts.push('</s:Header>', body ? `<s:Body>${body}</s:Body>` : '<s:Body/>', '</s:Envelope>');
  return { xml: parts.join(''), messageId };
}

export const createShellBody = (): string =>
  '<rsp:Shell><rsp:InputStreams>stdin</rsp:InputStreams>' +
  '<rsp:OutputStreams>stdout stderr</rsp:OutputStreams></rsp:Shell>';

export const commandBody = (command: string, args: readonly string[]): string =>
  `<rsp:CommandLine><rsp:Command>${xmlEscape(command)}</rsp:Command>` +
  args.map((a) => `<rsp:Arguments>${xmlEscape(a)}</rsp:Arguments>`).join('') +
  '</rsp:CommandLine>';

export const receiveBody = (commandId: string): string =>
  `<rsp:Receive><rsp:DesiredStream CommandId="${xmlEscape(commandId)}">stdout stderr</rsp:DesiredStream></rsp:Receive>`;

export const sendBody = (commandId: string, data: Buffer, end: boolean): string =>
  `<rsp:Send><rsp:Stream Name="stdin" CommandId="${xmlEscape(commandId)}"${end ? ' End="true"' : ''}>` +
  `${data.toString('base64')}</rsp:Stream></rsp:Send>`;

export const signalBody = (commandId: string, code: keyof typeof SIGNALS): string =>
  `<rsp:Signal CommandId="${xmlEscape(commandId)}"><rsp:Code>${SIGNALS[code]}</rsp:Code></rsp:Signal>`;

// ------------------------------------------------------------------------------ responses

export interface SoapFault {
  /** SOAP subcode value (`w:TimedOut`), else the code value (`s:Receiver`). */
  subcode: string;
  wsmanCode: number | undefined;
  /** f:Message, else s:Reason/s:Text, whitespace-collapsed. */
  reason: string;
}

/** The SOAP fault in `root`, if it is one. */
export function parseFault(root: XmlElement): SoapFault | undefined {
  const fault = find(root, 'Fault');
  if (!fault) return undefined;
  const code = find(fault, 'Code');
  const sub = code && find(code, 'Subcode');
  const subcode = ((sub && find(sub, 'Value')) ?? (code && find(code, 'Value')))?.text.trim() ?? '';
  const wsman = find(fault, 'WSManFault');
  const raw = wsman ? attr(wsman, 'Code') : undefined;
  const message = (wsman && find(wsman, 'Message')) ?? find(fault, 'Text');
  return {
    subcode,
    wsmanCode: raw !== undefined && /^\d+$/.test(raw) ? Number(raw) : undefined,
    reason: collapse(message ? allText(message) : ''),
  };
}

/** MessageID of the request this response answers, if present. */
export function relatesTo(root: XmlElement): string | undefined {
  return find(root, 'RelatesTo')?.text.trim();
}

/** ShellId of a CreateResponse: rsp:ShellId, or the ShellId selector of ResourceCreated. */
export function parseShellId(root: XmlElement): string | undefined {
  const direct = find(root, 'ShellId')?.text.trim();
  if (direct) return direct;
  return findAll(root, 'Selector')
    .find((s) => attr(s, 'Name') === 'ShellId')
    ?.text.trim();
}

export function parseCommandId(root: XmlElement): string | undefined {
  return find(root, 'CommandId')?.text.trim() || undefined;
}

export interface ReceiveChunk {
  stdout: Buffer[];
  stderr: Buffer[];
  done: boolean;
  /** Set once the command state is Done (WinRM reports it with the final chunk). */
  exitCode: number | null;
}

/** The streams and command state of a ReceiveResponse, for `commandId`. */
export function parseReceive(root: XmlElement, commandId: string): ReceiveChunk {
  const out: ReceiveChunk = { stdout: [], stderr: [], done: false, exitCode: null };
  for (const s of findAll(root, 'Stream')) {
    const id = attr(s, 'CommandId');
    if (id !== undefined && id !== commandId) continue;
    const data = s.text.trim();
    if (!data) continue;
    const buf = Buffer.from(data, 'base64');
    if (attr(s, 'Name') === 'stdout') out.stdout.push(buf);
    else if (attr(s, 'Name') === 'stderr') out.stderr.push(buf);
  }
  const state = find(root, 'CommandState');
  if (state && attr(state, 'State') === COMMAND_STATE_DONE) {
    out.done = true;
    const code = state && find(state, 'ExitCode')?.text.trim();
    out.exitCode = code !== undefined && /^-?\d+$/.test(code) ? Number(code) : null;
  }
  return out;
}

function allText(el: XmlElement): string {
  return el.text + el.children.map(allText).join(' ');
}

const collapse = (s: string): string => s.replace(/\s+/g, ' ').trim();
