/** Plain-text output for terminals: aligned tables and short relative times. */

export function table(headers: readonly string[], rows: readonly (readonly string[])[]): string[] {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return [line(headers), ...rows.map(line)];
}

/** "3s ago", "5m ago", "2h ago", "4d ago"; '-' for missing or zero times. */
export function ago(ts: string | null | undefined, now = Date.now()): string {
  if (!ts) return '-';
  const t = Date.parse(ts);
  if (!Number.isFinite(t) || t <= 0 || ts.startsWith('0001-')) return '-';
  const s = Math.max(0, Math.round((now - t) / 1000));
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)}m ago`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ago`;
  return `${Math.floor(s / 86400)}d ago`;
}

export function json(v: unknown): string {
  return JSON.stringify(v, null, 2);
}
