/**
 * Progress display of deployments (`opsplane deploy`, `opsplane deployments watch`): a block of
 * rows — one per device of a rollout, or one for the steps of a single deployment — each with a
 * bar like `web-01  running    [#####·····] 5/9 upload`, under a header line.
 *
 * On a terminal the block is redrawn in place (cursor up + clear line), every line fitted to the
 * terminal's width and the block to its height, statuses coloured unless NO_COLOR (or
 * TERM=dumb). Anywhere else (CI, pipes, files) it prints one plain line per change of a row's
 * status or step and never an escape code. Also owns how Rollout/Deployment wire objects and log
 * lines become rows and lines.
 */
import type { Deployment, DeploymentLogLine, Rollout } from '@opsplane/api';

/** One line of the block. */
export interface ProgressRow {
  /** Identifies the row across updates (plain mode prints a row again only when it changed). */
  key: string;
  label: string;
  /** Deployment status (queued, running, succeeded, failed, cancelled) or step status. */
  status: string;
  done: number;
  total: number;
  /** The current (or failed) step; '' when there is none. */
  step: string;
  /** Shown after the step, e.g. the error of a failed deployment. */
  detail?: string | undefined;
}

export type ProgressTarget =
  | {
      mode: 'tty';
      write: (text: string) => void;
      /** Terminal size, read at every redraw (defaults 80×24). */
      columns?: () => number | undefined;
      rows?: () => number | undefined;
      color: boolean;
    }
  | { mode: 'plain'; line: (text: string) => void }
  /** Draws nothing (e.g. with --json). */
  | { mode: 'none' };

const ESC = '\x1b[';
/** Widest status word ('succeeded', 'cancelled'): the status column's width. */
const STATUS_WIDTH = 9;

const STATUS_SGR: Record<string, string> = {
  succeeded: '32', // green
  failed: '31', // red
  cancelled: '33', // yellow
  stopped: '33',
  running: '36', // cyan
  queued: '2', // dim
  pending: '2',
  skipped: '2',
  warn: '33',
  error: '31',
};

/* eslint-disable no-control-regex -- matching escape codes is the point */
/** Escape sequences (CSI, two-byte) and control characters other than tab. */
const CONTROL = /\x1b\[[0-?]*[ -/]*[@-~]|\x1b[@-_]|[\x00-\x08\x0a-\x1f\x7f]/g;
/** The same, except SGR (colour) sequences. */
const CONTROL_BUT_COLOR =
  /\x1b\[(?![0-9;]*m)[0-?]*[ -/]*[@-~]|\x1b[@-Z\\-_]|[\x00-\x08\x0a-\x1a\x1c-\x1f\x7f]/g;
/* eslint-enable no-control-regex */

/** Colours on a terminal unless NO_COLOR is set (no-color.org) or TERM=dumb. */
export function colorEnabled(env: NodeJS.ProcessEnv, isTTY: boolean): boolean {
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== '') return false;
  return isTTY && env.TERM !== 'dumb';
}

export function paint(text: string, status: string, color: boolean): string {
  const sgr = STATUS_SGR[status];
  return color && sgr ? `${ESC}${sgr}m${text}${ESC}0m` : text;
}

/** Drops escape sequences and control characters a server-side string might carry. */
export function sanitize(s: string): string {
  return s.replace(CONTROL, '');
}

/** Cuts `s` to `width` characters, ending with '…' when something was cut. */
export function truncate(s: string, width: number): string {
  if (width <= 0) return '';
  if (s.length <= width) return s;
  return width === 1 ? s.slice(0, 1) : `${s.slice(0, width - 1)}…`;
}

/** `[#####·····]` with `width` cells between the brackets. */
export function bar(done: number, total: number, width: number): string {
  const filled = total > 0 ? Math.min(width, Math.max(0, Math.floor((done / total) * width))) : 0;
  return `[${'#'.repeat(filled)}${'·'.repeat(width - filled)}]`;
}

export interface RowLayout {
  columns: number;
  labelWidth: number;
  /** Cells of the bar; 0 = no bar (narrow terminal). */
  barWidth: number;
  color: boolean;
}

/** Column widths for `rows` on a terminal `columns` wide. */
export function layoutFor(rows: readonly ProgressRow[], columns: number, color: boolean): RowLayout {
  const longest = Math.max(4, ...rows.map((r) => sanitize(r.label).length));
  const labelWidth = Math.min(longest, Math.max(8, Math.floor(columns * 0.3)));
  // label, status, bar and counts get the room first; what is left goes to the step.
  const room = columns - 1 - labelWidth - 2 - STATUS_WIDTH - 2 - 8 - 12;
  const barWidth = room >= 20 ? 20 : room >= 10 ? 10 : room >= 5 ? 5 : 0;
  return { columns, labelWidth, barWidth, color };
}

/** One row on a terminal: never wider than `columns - 1` visible characters. */
export function formatRow(row: ProgressRow, l: RowLayout): string {
  const label = truncate(sanitize(row.label), l.labelWidth).padEnd(l.labelWidth);
  const status = sanitize(row.status);
  const counts = `${row.done}/${row.total}`;
  const step = sanitize(row.step);
  const detail = row.detail ? sanitize(row.detail) : '';
  const tail = [step, detail].filter(Boolean).join(' — ');
  const plain =
    `${label}  ${status.padEnd(STATUS_WIDTH)}  ` +
    (l.barWidth > 0 ? `${bar(row.done, row.total, l.barWidth)} ` : '') +
    `${counts}${tail ? ` ${tail}` : ''}`;
  const visible = truncate(plain, l.columns - 1).trimEnd();
  // Colour the status word only when it is there whole (the rest of the line has no codes).
  const at = l.labelWidth + 2;
  if (!l.color || visible.length < at + status.length) return visible;
  return visible.slice(0, at) + paint(status, status, true) + visible.slice(at + status.length);
}

/** One row as a plain line (no bar, no escape codes): `web-01: running 5/9 upload`. */
export function plainLine(row: ProgressRow): string {
  const step = sanitize(row.step);
  const detail = row.detail ? ` — ${sanitize(row.detail)}` : '';
  return `${sanitize(row.label)}: ${sanitize(row.status)} ${row.done}/${row.total}${step ? ` ${step}` : ''}${detail}`;
}

/** Rows shown first when the block is taller than the terminal. */
const PRIORITY: Record<string, number> = { running: 0, failed: 1, cancelled: 2, queued: 3 };

/**
 * The block's lines on a terminal: the header, then the rows. When they do not fit in `height`
 * lines, running and failed rows are kept (in their order) and the rest is one `… N more` line.
 */
export function frameLines(
  header: string | undefined,
  rows: readonly ProgressRow[],
  size: { columns: number; rows: number },
  color: boolean,
): string[] {
  const layout = layoutFor(rows, size.columns, color);
  const lines = header !== undefined ? [truncate(sanitize(header), size.columns - 1)] : [];
  const room = Math.max(1, size.rows - 1 - lines.length);
  let shown = rows;
  let hidden: ProgressRow[] = [];
  if (rows.length > room) {
    const keep = new Set(
      rows
        .map((r, i) => ({ r, i }))
        .sort((a, b) => (PRIORITY[a.r.status] ?? 9) - (PRIORITY[b.r.status] ?? 9) || a.i - b.i)
        .slice(0, room - 1)
        .map((x) => x.r),
    );
    shown = rows.filter((r) => keep.has(r));
    hidden = rows.filter((r) => !keep.has(r));
  }
  for (const r of shown) lines.push(formatRow(r, layout));
  if (hidden.length > 0) {
    const by = new Map<string, number>();
    for (const r of hidden) by.set(r.status, (by.get(r.status) ?? 0) + 1);
    const parts = [...by].map(([s, n]) => `${n} ${s}`).join(', ');
    lines.push(truncate(`… ${hidden.length} more: ${parts}`, size.columns - 1));
  }
  return lines;
}

/**
 * Keeps the block on screen (terminal) or prints the changes (plain). Not re-entrant; one per
 * watch.
 */
export class ProgressDisplay {
  /** Lines of the block currently on screen (terminal mode). */
  private drawn = 0;
  private header: string | undefined;
  private rows: readonly ProgressRow[] = [];
  /** Plain mode: the last line printed per row key. */
  private readonly printed = new Map<string, string>();

  constructor(private readonly target: ProgressTarget) {}

  get color(): boolean {
    return this.target.mode === 'tty' && this.target.color;
  }

  /** Shows the new state: redraws the block, or prints the rows that changed. */
  update(header: string | undefined, rows: readonly ProgressRow[]): void {
    this.header = header;
    this.rows = rows;
    const t = this.target;
    if (t.mode === 'plain') {
      for (const r of rows) {
        const line = plainLine(r);
        // Only a change of status, step or detail is news; the counts follow the step.
        const sig = `${r.status}\0${r.step}\0${r.detail ?? ''}`;
        if (this.printed.get(r.key) === sig) continue;
        this.printed.set(r.key, sig);
        t.line(line);
      }
    } else if (t.mode === 'tty') {
      t.write(this.cursorToTop() + this.block());
    }
  }

  /** Prints a line (e.g. a log line) above the block, which is then drawn again below it. */
  log(line: string): void {
    const t = this.target;
    if (t.mode === 'plain') t.line(sanitize(line));
    else if (t.mode === 'tty')
      t.write(`${this.cursorToTop()}${ESC}J${sanitizeKeepColor(line)}\n${this.block()}`);
  }

  /** Leaves the last frame where it is; whatever is written next goes below it. */
  finish(): void {
    this.drawn = 0;
  }

  private cursorToTop(): string {
    return this.drawn > 0 ? `${ESC}${this.drawn}A\r` : '\r';
  }

  private block(): string {
    if (this.target.mode !== 'tty') return '';
    const size = {
      columns: Math.max(20, this.target.columns?.() ?? 80),
      rows: Math.max(3, this.target.rows?.() ?? 24),
    };
    const lines = frameLines(this.header, this.rows, size, this.target.color);
    let s = lines.map((l) => `${ESC}2K${l}\n`).join('');
    if (lines.length < this.drawn) s += `${ESC}J`;
    this.drawn = lines.length;
    return s;
  }
}

/** Like sanitize, but keeps the SGR colour codes this module adds itself. */
function sanitizeKeepColor(s: string): string {
  return s.replace(CONTROL_BUT_COLOR, '');
}

// ---------------------------------------------------------------------------------------------
// Wire objects → rows and lines

const FINISHED_STEP = new Set(['succeeded', 'skipped']);

/** The step a deployment is at: the running one, else the failed one, else the next pending. */
export function currentStep(d: Pick<Deployment, 'steps' | 'status'>): string {
  const running = d.steps.find((s) => s.status === 'running');
  if (running) return running.name;
  const failed = d.steps.find((s) => s.status === 'failed');
  if (failed) return failed.name;
  if (d.status === 'succeeded' || d.status === 'cancelled') return '';
  return d.steps.find((s) => s.status === 'pending')?.name ?? '';
}

/**
 * Steps done: the succeeded ones, and the skipped ones before the step the deployment is at (or
 * failed at) — steps skipped because an earlier one failed are not progress.
 */
export function stepsDone(d: Pick<Deployment, 'steps' | 'status'>): number {
  const at = d.steps.findIndex((s) => !FINISHED_STEP.has(s.status));
  const frontier = d.status === 'succeeded' || at < 0 ? d.steps.length : at;
  return d.steps.filter((s, i) => s.status === 'succeeded' || (s.status === 'skipped' && i < frontier))
    .length;
}

export function deploymentRow(d: Deployment): ProgressRow {
  return {
    key: d.id,
    label: d.device_name,
    status: d.status,
    done: stepsDone(d),
    total: d.steps.length,
    step: currentStep(d),
    detail:
      d.status === 'failed' || d.status === 'cancelled'
        ? (d.error ?? undefined)
        : d.cancel_requested && (d.status === 'running' || d.status === 'queued')
          ? 'cancel requested'
          : undefined,
  };
}

/** `rollout 3f2a… install 1.4.0: 3/9 done (2 ok, 1 failed) · 2 running, 4 queued · running` */
export function rolloutHeader(r: Rollout): string {
  const c = r.counts;
  const finished = c.succeeded + c.failed + c.cancelled;
  const outcome = [
    `${c.succeeded} ok`,
    c.failed ? `${c.failed} failed` : '',
    c.cancelled ? `${c.cancelled} cancelled` : '',
  ]
    .filter(Boolean)
    .join(', ');
  return (
    `rollout ${r.id.slice(0, 8)} ${r.type}${r.version ? ` ${r.version}` : ''}: ${finished}/${c.total} done (${outcome})` +
    ` · ${c.running} running, ${c.queued} queued · ${r.status}`
  );
}

export function deploymentHeader(d: Deployment): string {
  return `deployment ${d.id.slice(0, 8)} ${d.type}${d.version ? ` ${d.version}` : ''} on ${d.device_name} (${d.area})`;
}

function clock(at: string): string {
  const d = new Date(at);
  return Number.isNaN(d.getTime()) ? '--:--:--' : d.toTimeString().slice(0, 8);
}

/** `12:00:03 warn  upload: retrying` (level coloured when `color`). */
export function formatLogLine(l: DeploymentLogLine, color: boolean): string {
  const level = paint(l.level.padEnd(5), l.level, color);
  const message = sanitize(l.message);
  const step = l.step ? sanitize(l.step) : '';
  // The server's messages often name their step already ("connect: started").
  const prefix = step && !message.startsWith(`${step}:`) ? `${step}: ` : '';
  return `${clock(l.at)} ${level} ${prefix}${message}`;
}
