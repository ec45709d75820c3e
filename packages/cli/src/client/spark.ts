/** Tiny text charts for terminals: a sparkline of a series, and byte sizes. */

const BARS = '▁▂▃▄▅▆▇█';

/** The last `width` values (averaged into buckets when there are more) as block characters. */
export function sparkline(values: readonly number[], width = 40): string {
  if (values.length === 0) return '';
  const buckets: number[] = [];
  const per = Math.max(1, Math.ceil(values.length / width));
  for (let i = 0; i < values.length; i += per) {
    const part = values.slice(i, i + per);
    buckets.push(part.reduce((a, b) => a + b, 0) / part.length);
  }
  const lo = Math.min(...buckets);
  const hi = Math.max(...buckets);
  return buckets
    .map(
      (x) =>
        BARS[hi === lo ? 0 : Math.min(BARS.length - 1, Math.floor(((x - lo) / (hi - lo)) * BARS.length))],
    )
    .join('');
}

export function fmtBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v < 10 && i > 0 ? v.toFixed(1) : Math.round(v)} ${units[i]}`;
}
