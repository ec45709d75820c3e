/**
 * Label selectors, as Kubernetes writes them: requirements separated by commas, all of which must
 * hold — equality (`env=prod`, `env==prod`, `role!=db`), sets (`env in (prod,staging)`,
 * `tier notin (cache)`) and existence (`canary`, `!canary`). Pure string work: the server
 * evaluates selectors (agent labels, device metadata), the CLI checks them before sending, and
 * the web UI sends them as typed (it imports types only).
 *
 * `role!=db` and `tier notin (cache)` also hold for objects without the label, as in Kubernetes.
 */
import { z } from 'zod';

export type SelectorOp = '=' | '!=' | 'in' | 'notin' | 'exists' | '!exists';

export interface SelectorRequirement {
  key: string;
  op: SelectorOp;
  /** `=`/`!=`: one value; `in`/`notin`: the set; existence: none. */
  values: string[];
}

/** A parsed selector: every requirement must hold (the empty selector matches everything). */
export type LabelSelector = SelectorRequirement[];

export const MAX_SELECTOR_LENGTH = 1000;
const KEY = /^[A-Za-z0-9]([A-Za-z0-9._/-]{0,251}[A-Za-z0-9])?$/;
const VALUE = /^[A-Za-z0-9._:@/-]{0,253}$/;

export class SelectorError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SelectorError';
  }
}

/** Splits on commas that are not inside parentheses. */
function splitTop(s: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let cur = '';
  for (const c of s) {
    if (c === '(') depth++;
    else if (c === ')') depth--;
    if (depth < 0) throw new SelectorError(`unbalanced ')' in '${s}'`);
    if (c === ',' && depth === 0) {
      out.push(cur);
      cur = '';
    } else cur += c;
  }
  if (depth !== 0) throw new SelectorError(`unbalanced '(' in '${s}'`);
  out.push(cur);
  return out;
}

function checkKey(key: string, part: string): string {
  if (!KEY.test(key))
    throw new SelectorError(
      `'${part}': label key '${key}' must be letters, digits, '.', '_', '/', '-', starting and ending with a letter or digit`,
    );
  return key;
}

function checkValue(v: string, part: string): string {
  if (!VALUE.test(v))
    throw new SelectorError(`'${part}': label value '${v}' may hold only letters, digits and . _ : @ / -`);
  return v;
}

function parseRequirement(raw: string): SelectorRequirement {
  const part = raw.trim();
  if (part === '') throw new SelectorError('empty requirement (two commas in a row, or a trailing comma)');
  const set = /^(\S+)\s+(in|notin)\s*\((.*)\)$/.exec(part);
  if (set) {
    const values = (set[3] ?? '')
      .split(',')
      .map((v) => v.trim())
      .filter((v) => v !== '');
    if (values.length === 0) throw new SelectorError(`'${part}': a set needs at least one value`);
    return {
      key: checkKey(set[1] ?? '', part),
      op: set[2] as 'in' | 'notin',
      values: values.map((v) => checkValue(v, part)),
    };
  }
  const eq = /^([^=!\s]+)\s*(==|=|!=)\s*(.*)$/.exec(part);
  if (eq) {
    const value = (eq[3] ?? '').trim();
    return {
      key: checkKey(eq[1] ?? '', part),
      op: eq[2] === '!=' ? '!=' : '=',
      values: [checkValue(value, part)],
    };
  }
  if (part.startsWith('!')) return { key: checkKey(part.slice(1).trim(), part), op: '!exists', values: [] };
  if (/\s/.test(part))
    throw new SelectorError(
      `'${part}': expected key=value, key!=value, key in (…), key notin (…), key or !key`,
    );
  return { key: checkKey(part, part), op: 'exists', values: [] };
}

/** Parses a selector; SelectorError (with a message naming the part) when it is not one. */
export function parseSelector(s: string): LabelSelector {
  if (s.length > MAX_SELECTOR_LENGTH)
    throw new SelectorError(`a selector may be at most ${MAX_SELECTOR_LENGTH} characters`);
  if (s.trim() === '') return [];
  return splitTop(s).map(parseRequirement);
}

/** True when every requirement holds for `labels`. */
export function matchesSelector(sel: LabelSelector, labels: Readonly<Record<string, string>>): boolean {
  for (const r of sel) {
    const has = Object.prototype.hasOwnProperty.call(labels, r.key);
    const v = has ? labels[r.key] : undefined;
    switch (r.op) {
      case '=':
        if (v !== r.values[0]) return false;
        break;
      case '!=':
        if (v === r.values[0]) return false;
        break;
      case 'in':
        if (v === undefined || !r.values.includes(v)) return false;
        break;
      case 'notin':
        if (v !== undefined && r.values.includes(v)) return false;
        break;
      case 'exists':
        if (!has) return false;
        break;
      case '!exists':
        if (has) return false;
        break;
    }
  }
  return true;
}

/** The canonical text of a selector (what the server records). */
export function formatSelector(sel: LabelSelector): string {
  return sel
    .map((r) => {
      switch (r.op) {
        case 'in':
        case 'notin':
          return `${r.key} ${r.op} (${r.values.join(',')})`;
        case 'exists':
          return r.key;
        case '!exists':
          return `!${r.key}`;
        default:
          return `${r.key}${r.op}${r.values[0] ?? ''}`;
      }
    })
    .join(',');
}

/**
 * A selector as a query parameter or body field: the text, checked (a bad selector is a 400
 * naming the part). It stays text on the wire; the server parses it where it evaluates it.
 */
export const LabelSelectorSchema = z
  .string()
  .max(MAX_SELECTOR_LENGTH)
  .superRefine((s, ctx) => {
    try {
      parseSelector(s);
    } catch (e) {
      ctx.addIssue({ code: 'custom', message: (e as Error).message });
    }
  })
  .describe(
    'label selector: env=prod,role!=db, tier in (web,api), tier notin (cache), canary, !canary (all must hold)',
  );
