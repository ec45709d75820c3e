/**
 * A small YAML writer for the config files a fleet writes (controller.yaml, agent.yaml, the
 * sample packages' configs; `opsplane demo` also writes platform.yaml with it): block mappings
 * and sequences of plain values, strings quoted whenever YAML could read them as something
 * else. Readable files, with the comments the demo puts on top.
 */

export type YamlValue =
  string | number | boolean | null | YamlValue[] | { [key: string]: YamlValue | undefined };

function scalar(v: string | number | boolean | null): string {
  if (v === null) return 'null';
  if (typeof v !== 'string') return String(v);
  // Plain only when it cannot be mistaken for a number, bool, null, or YAML syntax.
  const plain =
    /^[A-Za-z_./][A-Za-z0-9_./@+-]*(?::[0-9]+)?$/.test(v) &&
    !/^(true|false|yes|no|on|off|null|~)$/i.test(v) &&
    !v.includes(': ');
  return plain ? v : JSON.stringify(v);
}

function emit(v: YamlValue, indent: string, out: string[], key?: string): void {
  const head = key === undefined ? indent : `${indent}${key}:`;
  if (Array.isArray(v)) {
    if (v.length === 0 || v.every((x) => x === null || typeof x !== 'object')) {
      out.push(`${head}${key === undefined ? '' : ' '}[${v.map((x) => scalar(x as string)).join(', ')}]`);
      return;
    }
    if (key !== undefined) out.push(head);
    for (const item of v) {
      if (item !== null && typeof item === 'object' && !Array.isArray(item)) {
        const sub: string[] = [];
        emit(item, `${indent}  `, sub);
        out.push(`${indent}- ${(sub[0] ?? '').trimStart()}`, ...sub.slice(1));
      } else {
        out.push(`${indent}- ${scalar(item as string)}`);
      }
    }
    return;
  }
  if (v !== null && typeof v === 'object') {
    const entries = Object.entries(v).filter(([, x]) => x !== undefined) as [string, YamlValue][];
    if (key !== undefined) {
      if (entries.length === 0) {
        out.push(`${head} {}`);
        return;
      }
      out.push(head);
    }
    const inner = key === undefined ? indent : `${indent}  `;
    for (const [k, x] of entries) emit(x, inner, out, scalar(k));
    return;
  }
  out.push(key === undefined ? `${indent}${scalar(v)}` : `${head} ${scalar(v)}`);
}

/**
 * YAML text for `doc`, preceded by `comment` lines (each prefixed with `# `). Values must be
 * what JSON can hold (undefined entries are left out).
 */
export function toYaml(doc: Readonly<Record<string, unknown>>, comment?: string): string {
  const out: string[] = [];
  if (comment) for (const l of comment.split('\n')) out.push(l ? `# ${l}` : '#');
  emit(doc as YamlValue, '', out);
  return out.join('\n') + '\n';
}
