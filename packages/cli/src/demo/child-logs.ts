/**
 * Prefixed, optionally colored line output for `opsplane demo`: every child's stdout/stderr
 * line becomes `[ctrl-1a] 12:00:01 INFO  controller registered  area=area-1`. Structured log
 * lines (pino JSON from Opsplane daemons, zap JSON from etcd) are rendered as time, level,
 * message and the remaining fields; anything else is printed as it came. Colors only when the
 * output is a terminal (and NO_COLOR is not set) or FORCE_COLOR is set.
 */

const ESC = '\u001b[';
const PALETTE = [36, 35, 33, 32, 34, 96, 95, 93, 92, 94] as const; // cyan, magenta, yellow, green, blue, bright…
const LEVEL_NAMES: Record<number, string> = {
  10: 'TRACE',
  20: 'DEBUG',
  30: 'INFO',
  40: 'WARN',
  50: 'ERROR',
  60: 'FATAL',
};
const LEVEL_COLORS: Record<string, number> = {
  TRACE: 90,
  DEBUG: 90,
  INFO: 0,
  WARN: 33,
  ERROR: 31,
  FATAL: 31,
};
/** Fields every line carries that say nothing to a reader of the demo. */
const DROPPED_FIELDS = new Set([
  'level',
  'time',
  'ts',
  'msg',
  'message',
  'pid',
  'hostname',
  'caller',
  'component',
  'v',
]);
/** Fastify's per-request lines: the demo polls the API, and these would drown everything else. */
const NOISE = new Set(['incoming request', 'request completed']);

export interface ChildLogsOptions {
  /** Where lines go. Default: process.stdout. */
  write?: (text: string) => void;
  /** Where the demo's own errors go. Default: process.stderr (or `write` when that is given). */
  writeErr?: (text: string) => void;
  /** Force colors on or off. Default: stdout is a TTY, NO_COLOR unset (FORCE_COLOR forces). */
  color?: boolean;
  /** Also print per-request lines of the HTTP servers. */
  verbose?: boolean;
}

export function colorDefault(stream: { isTTY?: boolean } = process.stdout): boolean {
  const force = process.env.FORCE_COLOR;
  if (force !== undefined && force !== '' && force !== '0' && force !== 'false') return true;
  if (process.env.NO_COLOR !== undefined && process.env.NO_COLOR !== '') return false;
  return stream.isTTY === true && process.env.TERM !== 'dumb';
}

function hhmmss(v: unknown): string | undefined {
  let d: Date | undefined;
  if (typeof v === 'number')
    d = new Date(v < 1e12 ? v * 1000 : v); // zap may write epoch seconds
  else if (typeof v === 'string') d = new Date(v.replace(/^(\d{4}-\d\d-\d\d) /, '$1T'));
  if (!d || Number.isNaN(d.getTime())) return undefined;
  return d.toTimeString().slice(0, 8);
}

function fieldText(v: unknown): string {
  if (typeof v === 'string') return /[\s"=]/.test(v) || v === '' ? JSON.stringify(v) : v;
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 240 ? `${s.slice(0, 237)}...` : s;
}

export interface FormattedLine {
  time?: string;
  level?: string;
  text: string;
  /** A line that should be left out unless verbose. */
  noise: boolean;
}

/** Unstructured lines that are noise too: etcd's gRPC gateway reconnecting while it shuts down. */
const NOISE_TEXT = [/\[core\] grpc: addrConn\.createTransport failed/];

/**
 * Renders one line of child output (structured or not). `source` is the process it came from:
 * fields that merely repeat it (`controller=ctrl-1a` from ctrl-1a) are left out.
 */
export function formatLogLine(line: string, source?: string): FormattedLine {
  const trimmed = line.trim();
  if (trimmed.startsWith('{') && trimmed.endsWith('}')) {
    let o: Record<string, unknown> | undefined;
    try {
      const parsed: unknown = JSON.parse(trimmed);
      if (parsed && typeof parsed === 'object' && !Array.isArray(parsed))
        o = parsed as Record<string, unknown>;
    } catch {
      /* not JSON after all */
    }
    if (o && ('msg' in o || 'message' in o)) {
      const rawLevel = o.level;
      const level =
        typeof rawLevel === 'number'
          ? (LEVEL_NAMES[rawLevel] ?? String(rawLevel))
          : typeof rawLevel === 'string'
            ? rawLevel.toUpperCase()
            : undefined;
      const msg = String(o.msg ?? o.message ?? '');
      const fields: string[] = [];
      for (const [k, v] of Object.entries(o)) {
        if (DROPPED_FIELDS.has(k) || v === undefined || v === null || (source !== undefined && v === source))
          continue;
        if (k === 'err' && v && typeof v === 'object') {
          const e = v as { message?: unknown; type?: unknown };
          fields.push(`err=${fieldText(String(e.message ?? e.type ?? JSON.stringify(v)))}`);
          continue;
        }
        fields.push(`${k}=${fieldText(v)}`);
      }
      const time = hhmmss(o.time ?? o.ts);
      return {
        ...(time ? { time } : {}),
        ...(level ? { level } : {}),
        text: fields.length ? `${msg}  ${fields.join(' ')}` : msg,
        noise: NOISE.has(msg),
      };
    }
  }
  return { text: line.replace(/\s+$/, ''), noise: NOISE_TEXT.some((re) => re.test(line)) };
}

/** Writes prefixed lines for the demo itself and for every child it starts. */
export class ChildLogs {
  private readonly write: (text: string) => void;
  private readonly writeErr: (text: string) => void;
  readonly color: boolean;
  private readonly verbose: boolean;
  private readonly colors = new Map<string, number>();
  private width = 6;

  constructor(opts: ChildLogsOptions = {}) {
    this.write = opts.write ?? ((t) => void process.stdout.write(t));
    this.writeErr = opts.writeErr ?? opts.write ?? ((t) => void process.stderr.write(t));
    this.color = opts.color ?? colorDefault();
    this.verbose = opts.verbose ?? false;
  }

  /** Pads prefixes to the longest name seen so far (call with every name up front for a tidy column). */
  reserve(names: readonly string[]): void {
    for (const n of names) this.width = Math.max(this.width, n.length + 2);
  }

  paint(code: number, text: string): string {
    return this.color && code !== 0 ? `${ESC}${code}m${text}${ESC}0m` : text;
  }

  bold(text: string): string {
    return this.color ? `${ESC}1m${text}${ESC}22m` : text;
  }

  private prefix(name: string): string {
    let c = this.colors.get(name);
    if (c === undefined) {
      c = name === 'demo' ? 97 : (PALETTE[this.colors.size % PALETTE.length] as number);
      this.colors.set(name, c);
    }
    return this.paint(c, `[${name}]`.padEnd(this.width));
  }

  /** One line from (or about) `name`, printed as it is. */
  line(name: string, text: string): void {
    this.write(`${this.prefix(name)} ${text}\n`);
  }

  private now(): string {
    return this.paint(90, new Date().toTimeString().slice(0, 8));
  }

  /** A message of the demo itself. */
  info(text: string): void {
    this.line('demo', `${this.now()} ${text}`);
  }

  warn(text: string): void {
    this.line('demo', `${this.now()} ${this.paint(33, text)}`);
  }

  error(text: string): void {
    this.writeErr(`${this.prefix('demo')} ${this.now()} ${this.paint(31, text)}\n`);
  }

  /** One line of a child's output: structured lines are rendered, noise dropped unless verbose. */
  childLine(name: string, raw: string): void {
    if (raw.trim() === '') return;
    const f = formatLogLine(raw, name);
    if (f.noise && !this.verbose) return;
    const parts: string[] = [];
    if (f.time) parts.push(this.paint(90, f.time));
    if (f.level) parts.push(this.paint(LEVEL_COLORS[f.level] ?? 0, f.level.padEnd(5)));
    parts.push(f.level === 'ERROR' || f.level === 'FATAL' ? this.paint(31, f.text) : f.text);
    this.line(name, parts.join(' '));
  }
}
