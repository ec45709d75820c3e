/**
 * Recordings of the WinRM fake: their format (what a request must look like, what the fake
 * answers), loading them from test/fixtures/winrm/, and the `run` shorthand for one PowerShell
 * command. The envelopes (fixtures/winrm/envelopes.json) are hand-built from the MS-WSMV
 * documentation, not captured from a real Windows host.
 */
import { readFileSync } from 'node:fs';
import { ACTIONS, type SIGNALS, type WsmanAction } from '../../src/winrm/wsman.js';

const FIXTURES = new URL('../../../test/fixtures/winrm/', import.meta.url);

export interface ExchangeMatcher {
  action: WsmanAction;
  shellId?: string;
  commandId?: string;
  /** The decoded PowerShell script's first line, exactly (`# opsplane: <label>`). */
  scriptFirstLine?: string;
  /** Substrings the decoded script must contain. */
  scriptIncludes?: string[];
  signal?: keyof typeof SIGNALS;
  /** Send: whether End="true" is expected. */
  end?: boolean;
}

export interface ReceiveReply {
  stdout?: string | string[];
  stderr?: string | string[];
  exitCode?: number;
  /** CommandState Running (more output to come) instead of Done. */
  running?: boolean;
}

export interface RecordedReply {
  status?: number;
  /** A literal envelope (lines joined); `{{var}}` placeholders are filled in. */
  body?: string | string[];
  /** A named envelope of envelopes.json. */
  envelope?: string;
  vars?: Record<string, string>;
  /** A ReceiveResponse built from envelopes.json's stream and state templates. */
  receive?: ReceiveReply;
  /** Answer late (tests of timeouts and long polls). */
  delayMs?: number;
}

export interface RecordedExchange {
  expect: ExchangeMatcher;
  reply: RecordedReply;
  /** Matches any number of consecutive requests until one matches the next entry. */
  repeat?: boolean;
  note?: string;
}

/**
 * Shorthand for one PowerShell run: Command → CommandResponse, (Send… when `stdin`), Receive →
 * `reply`, Signal terminate → SignalResponse.
 */
export interface RecordedRun {
  run: Omit<ExchangeMatcher, 'action' | 'commandId' | 'signal' | 'end'> & { stdin?: boolean };
  reply: ReceiveReply;
  commandId?: string;
  note?: string;
}

export interface Recording {
  _comment?: string | string[];
  exchanges: (RecordedExchange | RecordedRun)[];
}

export function loadRecording(name: string): Recording {
  return JSON.parse(readFileSync(new URL(`${name}.json`, FIXTURES), 'utf8')) as Recording;
}

/** envelopes.json: name → envelope template. */
export function loadEnvelopes(): Record<string, string> {
  const raw = JSON.parse(readFileSync(new URL('envelopes.json', FIXTURES), 'utf8')) as {
    envelopes: Record<string, string | string[]>;
  };
  return Object.fromEntries(
    Object.entries(raw.envelopes).map(([k, v]) => [k, Array.isArray(v) ? v.join('') : v]),
  );
}

export const ACTION_BY_URI = new Map<string, WsmanAction>(
  Object.entries(ACTIONS).map(([k, v]) => [v, k as WsmanAction]),
);

/** The recording with `run` shorthands expanded into their four exchanges. */
export function expandRecording(rec: Recording): RecordedExchange[] {
  const out: RecordedExchange[] = [];
  rec.exchanges.forEach((e, i) => {
    if (!('run' in e)) return out.push(e);
    const { stdin, ...match } = e.run;
    const commandId = e.commandId ?? `C0FFEE00-0000-4000-8000-${String(i).padStart(12, '0')}`;
    out.push({
      expect: { action: 'Command', ...match },
      reply: { envelope: 'CommandResponse', vars: { commandId } },
    });
    if (stdin) {
      out.push({
        expect: { action: 'Send', commandId, end: false },
        reply: { envelope: 'SendResponse' },
        repeat: true,
      });
      out.push({ expect: { action: 'Send', commandId, end: true }, reply: { envelope: 'SendResponse' } });
    }
    out.push({ expect: { action: 'Receive', commandId }, reply: { receive: e.reply } });
    out.push({
      expect: { action: 'Signal', commandId, signal: 'terminate' },
      reply: { envelope: 'SignalResponse' },
    });
  });
  return out;
}
