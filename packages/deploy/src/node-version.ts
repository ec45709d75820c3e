/**
 * Node.js versions on devices: the lowest version a bundle's range (`>=20.18`, `^20.18.0 || >=22`)
 * allows, and comparing what `node --version` printed against it — for both installers.
 */
/** The lowest Node.js version a range such as `>=20.18`, `^20.18.0 || >=22` allows; undefined if open. */
export function nodeMinimum(range: string): [number, number, number] | undefined {
  let best: [number, number, number] | undefined;
  for (const alt of range.split('||')) {
    const m = /(\d+)(?:\.(\d+|x|\*))?(?:\.(\d+|x|\*))?/.exec(alt);
    if (!m) return undefined; // `*` or empty alternative: anything goes
    const v: [number, number, number] = [Number(m[1]), Number(m[2]) || 0, Number(m[3]) || 0];
    if (!best || compareNodeVersions(v, best) < 0) best = v;
  }
  return best;
}

export function compareNodeVersions(a: readonly number[], b: readonly number[]): number {
  for (let i = 0; i < 3; i++) if ((a[i] ?? 0) !== (b[i] ?? 0)) return (a[i] ?? 0) - (b[i] ?? 0);
  return 0;
}

export function parseNodeVersion(v: string): [number, number, number] | undefined {
  const m = /^v?(\d+)\.(\d+)\.(\d+)/.exec(v.trim());
  return m ? [Number(m[1]), Number(m[2]), Number(m[3])] : undefined;
}
