/**
 * Server-Sent Events for the CLI: the parser (event/id/data/retry fields, multi-line data,
 * comments and heartbeats, lines split anywhere across chunks, CR/LF/CRLF) and a reader over the
 * fetch body stream (opened with ApiClient.open) that reconnects with Last-Event-ID when the
 * stream drops or goes silent.
 */
import { TextDecoder } from 'node:util';
import { CliError } from '../command.js';
import { ApiError } from './api.js';

/** One dispatched event. `id` is the last event id so far (ids carry over, per the spec). */
export interface SseEvent {
  event: string;
  data: string;
  id: string;
}

/**
 * The event-stream format (WHATWG HTML §9.2.6), incrementally: `push` text as it arrives and get
 * the events completed by it. An event is dispatched at a blank line; a stream that ends in the
 * middle of one drops it.
 */
export class SseParser {
  /**
   * The id of the last complete event (what to send as Last-Event-ID when reconnecting): an
   * `id:` field counts once the blank line ending its event has arrived.
   */
  lastEventId = '';
  /** The `retry:` field last seen, in ms. */
  retry: number | undefined;
  /** Comment lines (`: heartbeat`) seen; they only prove the connection is alive. */
  comments = 0;

  private partial = '';
  /** The previous chunk ended with CR: a LF opening the next one belongs to it. */
  private pendingCR = false;
  private atStart = true;
  private data: string[] = [];
  private type = '';
  /** `id:` of the event being received. */
  private idBuffer = '';

  push(chunk: string): SseEvent[] {
    let text = chunk;
    if (this.atStart && text.length > 0) {
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
      this.atStart = false;
    }
    if (this.pendingCR && text.startsWith('\n')) text = text.slice(1);
    if (text.length > 0) this.pendingCR = false;
    const out: SseEvent[] = [];
    const buf = this.partial + text;
    let start = 0;
    for (let i = 0; i < buf.length; i++) {
      const c = buf.charCodeAt(i);
      if (c !== 10 && c !== 13) continue;
      this.line(buf.slice(start, i), out);
      if (c === 13) {
        if (i + 1 < buf.length) {
          if (buf.charCodeAt(i + 1) === 10) i++;
        } else this.pendingCR = true;
      }
      start = i + 1;
    }
    this.partial = buf.slice(start);
    return out;
  }

  /** Forgets a half-received event (a new connection starts clean); keeps lastEventId and retry. */
  reset(): void {
    this.partial = '';
    this.pendingCR = false;
    this.atStart = true;
    this.data = [];
    this.type = '';
    this.idBuffer = this.lastEventId;
  }

  private line(line: string, out: SseEvent[]): void {
    if (line === '') {
      this.lastEventId = this.idBuffer;
      if (this.data.length > 0)
        out.push({ event: this.type || 'message', data: this.data.join('\n'), id: this.lastEventId });
      this.data = [];
      this.type = '';
      return;
    }
    if (line.startsWith(':')) {
      this.comments++;
      return;
    }
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    switch (field) {
      case 'event':
        this.type = value;
        break;
      case 'data':
        this.data.push(value);
        break;
      case 'id':
        if (!value.includes('\0')) this.idBuffer = value;
        break;
      case 'retry':
        if (/^\d+$/.test(value)) this.retry = Number(value);
        break;
      default: // unknown fields are ignored
    }
  }
}

export interface SseStreamOptions {
  /**
   * Opens (or re-opens) the stream. `lastEventId` is the id of the last event received ('' on the
   * first connection). Throw to give up: ApiErrors below 500 (404, 401, …) end the stream for
   * good, anything else is retried.
   */
  open(lastEventId: string, signal: AbortSignal): Promise<Response>;
  /** Stops reading (the generator just returns). */
  signal?: AbortSignal;
  /** Nothing at all (not even a heartbeat comment) for this long counts as a dropped stream. */
  idleTimeoutMs?: number;
  /**
   * Wait before reconnecting (default 1 s, or what the server sent as `retry:`), doubled on each
   * further failure in a row up to 10 s.
   */
  retryMs?: number;
  /** Reconnections in a row without receiving an event before giving up (default 20, ~3 min). */
  maxRetries?: number;
  onReconnect?(attempt: number, reason: string): void;
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const t = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}

const isFatal = (e: unknown) => e instanceof ApiError && e.status < 500;

/**
 * The events of a stream, across reconnections: when the stream ends or drops without the
 * consumer having stopped, it is opened again with the last event id. Ends when the consumer
 * stops (break/return) or `signal` aborts; throws on a fatal error or after `maxRetries`.
 */
export async function* sseEvents(opts: SseStreamOptions): AsyncGenerator<SseEvent, void, undefined> {
  const parser = new SseParser();
  const idleMs = opts.idleTimeoutMs ?? 60_000;
  const maxRetries = opts.maxRetries ?? 20;
  let failures = 0;
  while (!opts.signal?.aborted) {
    const ac = new AbortController();
    const stop = () => ac.abort(new Error('stopped'));
    opts.signal?.addEventListener('abort', stop, { once: true });
    let timer: ReturnType<typeof setTimeout> | undefined;
    const arm = () => {
      clearTimeout(timer);
      timer = setTimeout(() => ac.abort(new Error(`nothing received for ${idleMs / 1000}s`)), idleMs);
    };
    let reason = 'the server closed the stream';
    try {
      arm();
      const res = await opts.open(parser.lastEventId, ac.signal);
      if (!res.body) throw new Error('the response has no body');
      parser.reset();
      const reader = res.body.getReader();
      const decoder = new TextDecoder();
      try {
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          arm();
          const events = parser.push(decoder.decode(value, { stream: true }));
          if (events.length > 0) failures = 0;
          for (const e of events) {
            if (opts.signal?.aborted) return;
            yield e;
          }
        }
      } finally {
        reader.cancel().catch(() => {});
      }
    } catch (e) {
      if (opts.signal?.aborted) return;
      if (isFatal(e)) throw e;
      const why = ac.signal.aborted ? ac.signal.reason : e;
      reason = why instanceof Error ? why.message : String(why);
    } finally {
      clearTimeout(timer);
      opts.signal?.removeEventListener('abort', stop);
    }
    if (opts.signal?.aborted) return;
    failures++;
    if (failures > maxRetries)
      throw new CliError(`lost the event stream (${reason}) and could not reconnect ${maxRetries} times`);
    opts.onReconnect?.(failures, reason);
    const base = parser.retry ?? opts.retryMs ?? 1000;
    await sleep(Math.min(base * 2 ** (failures - 1), Math.max(base, 10_000)), opts.signal);
  }
}
