/**
 * Device import files (CSV or JSON) → validated rows and a per-row report. File-level problems
 * (unparsable CSV, wrong header, wrong JSON shape) throw before anything is written; row-level
 * problems reject that row only. Rows are matched by name; a name repeated in the file is
 * rejected after its first occurrence.
 */
import { parse as parseCsvSync, type Info } from 'csv-parse/sync';
import { formatIssues, OpsplaneError, ValidationError } from '@opsplane/models';
import { DeviceCreateSchema, type DeviceCreate, type ImportRejection } from '@opsplane/api';

export const MAX_IMPORT_ROWS = 50_000;

export interface RawRow {
  /** 1-based position among the data rows. */
  row: number;
  /** CSV: the line the row starts on. */
  line?: number;
  /** The name as written, for the report even when invalid. */
  name?: string;
  value: unknown;
  /** A problem found while reading the row itself (CSV field count). */
  problem?: string;
}

/** CSV column → path in the device object. Aliases let `port` and `login_port` both work. */
const CSV_COLUMNS: Record<string, readonly string[]> = {
  name: ['name'],
  ip: ['ip'],
  function_area: ['function_area'],
  os: ['os'],
  arch: ['arch'],
  login_method: ['login_method'],
  port: ['login', 'port'],
  login_port: ['login', 'port'],
  username: ['login', 'username'],
  login_username: ['login', 'username'],
  password: ['login', 'password'],
  login_password: ['login', 'password'],
  private_key: ['login', 'private_key'],
  login_private_key: ['login', 'private_key'],
  passphrase: ['login', 'passphrase'],
  login_passphrase: ['login', 'passphrase'],
  agent_version: ['agent_version'],
  metadata: ['metadata'],
};
const REQUIRED_CSV = ['name', 'ip', 'function_area', 'os'] as const;
/** Secret cells are taken verbatim; every other cell is trimmed. */
const VERBATIM = new Set(['password', 'private_key', 'passphrase']);
const METADATA_PREFIX = 'metadata.';

class ImportFileError extends ValidationError {}

interface Column {
  header: string;
  path: readonly string[] | 'metadata-json' | { metadataKey: string };
}

function readHeader(header: readonly string[]): Column[] {
  const seen = new Map<string, string>();
  const cols: Column[] = [];
  const unknown: string[] = [];
  for (const raw of header) {
    const label = raw.trim();
    const h = label.toLowerCase();
    let col: Column;
    let field: string;
    if (h.startsWith(METADATA_PREFIX) && h.length > METADATA_PREFIX.length) {
      const metadataKey = label.slice(METADATA_PREFIX.length);
      col = { header: h, path: { metadataKey } };
      field = `metadata.${metadataKey}`;
    } else if (h === 'metadata') {
      col = { header: h, path: 'metadata-json' };
      field = 'metadata';
    } else if (CSV_COLUMNS[h]) {
      col = { header: h, path: CSV_COLUMNS[h] };
      field = CSV_COLUMNS[h].join('.');
    } else {
      unknown.push(label);
      continue;
    }
    // `port` and `login_port` are one field: both in a header is ambiguous.
    const prev = seen.get(field);
    if (prev !== undefined)
      throw new ImportFileError(`CSV header: columns '${prev}' and '${label}' set the same field`);
    seen.set(field, label);
    cols.push(col);
  }
  if (unknown.length > 0) {
    throw new ImportFileError(
      `CSV header: unknown column(s) ${unknown.map((u) => `'${u}'`).join(', ')}; known columns: ${Object.keys(CSV_COLUMNS).join(', ')}, metadata.<key>`,
    );
  }
  const fields = new Set(seen.keys());
  const missing: string[] = REQUIRED_CSV.filter((r) => !fields.has(r));
  if (!fields.has('login.username')) missing.push('username');
  if (missing.length > 0)
    throw new ImportFileError(`CSV header: missing required column(s) ${missing.join(', ')}`);
  return cols;
}

function setPath(obj: Record<string, unknown>, path: readonly string[], value: unknown): void {
  let cur = obj;
  for (const k of path.slice(0, -1)) cur = (cur[k] ??= {}) as Record<string, unknown>;
  cur[path.at(-1) as string] = value;
}

function cellsToObject(
  cols: readonly Column[],
  cells: readonly string[],
): { value: Record<string, unknown>; problem?: string } {
  const out: Record<string, unknown> = {};
  for (const [i, col] of cols.entries()) {
    const rawCell = cells[i] ?? '';
    const cell = VERBATIM.has(col.header.replace(/^login_/, '')) ? rawCell : rawCell.trim();
    if (cell === '') continue;
    if (col.path === 'metadata-json') {
      let parsed: unknown;
      try {
        parsed = JSON.parse(cell);
      } catch {
        parsed = undefined;
      }
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
        return { value: out, problem: 'metadata: must be a JSON object such as {"rack":"r1"}' };
      }
      out.metadata = {
        ...(parsed as Record<string, unknown>),
        ...((out.metadata as Record<string, unknown>) ?? {}),
      };
    } else if (!Array.isArray(col.path)) {
      const key = (col.path as { metadataKey: string }).metadataKey;
      out.metadata = { ...((out.metadata as Record<string, unknown>) ?? {}), [key]: cell };
    } else if (col.path[1] === 'port') {
      setPath(out, col.path, /^\d{1,5}$/.test(cell) ? Number(cell) : cell);
    } else {
      setPath(out, col.path, cell);
    }
  }
  return { value: out };
}

/** Parses CSV text into raw rows; throws a ValidationError for file-level problems. */
export function readCsv(text: string): RawRow[] {
  let records: { record: string[]; info: Info }[];
  try {
    records = parseCsvSync(text, {
      bom: true,
      skip_empty_lines: true,
      relax_column_count: true,
      info: true,
    }) as unknown as { record: string[]; info: Info }[];
  } catch (e) {
    throw new ImportFileError(`unparsable CSV: ${(e as Error).message}`);
  }
  const [head, ...data] = records;
  if (!head) throw new ImportFileError('empty file: expected a CSV header line');
  if (data.length > MAX_IMPORT_ROWS) {
    throw new OpsplaneError(
      'payload_too_large',
      `too many rows: ${data.length} (at most ${MAX_IMPORT_ROWS} per import)`,
    );
  }
  const cols = readHeader(head.record);
  // info.lines is where a record ends (quoted fields may span lines); report where it starts.
  let prev = head.info;
  return data.map(({ record, info }, i) => {
    const line = prev.lines + 1 + (info.empty_lines - prev.empty_lines);
    prev = info;
    const { value, problem } = cellsToObject(cols, record);
    const name = typeof value.name === 'string' ? value.name : undefined;
    const row: RawRow = { row: i + 1, line, value, ...(name ? { name } : {}) };
    if (record.length !== cols.length) row.problem = `expected ${cols.length} fields, got ${record.length}`;
    else if (problem) row.problem = problem;
    return row;
  });
}

/** JSON import bodies: an array of devices, or `{"devices": [...]}`. */
export function readJson(body: unknown): RawRow[] {
  const list = Array.isArray(body) ? body : (body as { devices?: unknown } | null)?.devices;
  if (!Array.isArray(list))
    throw new ImportFileError('expected a JSON array of devices or {"devices": [...]}');
  if (list.length > MAX_IMPORT_ROWS) {
    throw new OpsplaneError(
      'payload_too_large',
      `too many rows: ${list.length} (at most ${MAX_IMPORT_ROWS} per import)`,
    );
  }
  return list.map((value: unknown, i) => {
    const name = (value as { name?: unknown } | null)?.name;
    return { row: i + 1, value, ...(typeof name === 'string' ? { name } : {}) };
  });
}

/** CSV users know columns, not object paths: `login.port` is reported as `port`. */
function csvIssuePath(path: readonly PropertyKey[]): PropertyKey[] {
  return path[0] === 'login' && path.length > 1 ? path.slice(1) : [...path];
}

/** Validates every row; later duplicates of a name are rejected. */
export function validateRows(
  raw: readonly RawRow[],
  csv: boolean,
): { valid: DeviceCreate[]; rejected: ImportRejection[] } {
  const valid: DeviceCreate[] = [];
  const rejected: ImportRejection[] = [];
  const firstRow = new Map<string, number>();
  for (const r of raw) {
    const reject = (reason: string) =>
      rejected.push({
        row: r.row,
        ...(r.line !== undefined ? { line: r.line } : {}),
        ...(r.name ? { name: r.name.slice(0, 128) } : {}),
        reason,
      });
    if (r.problem) {
      reject(r.problem);
      continue;
    }
    if (typeof r.value !== 'object' || r.value === null || Array.isArray(r.value)) {
      reject('row must be an object');
      continue;
    }
    const parsed = DeviceCreateSchema.safeParse(r.value);
    if (!parsed.success) {
      const issues = csv
        ? parsed.error.issues.map((i) => ({ ...i, path: csvIssuePath(i.path) }))
        : parsed.error.issues;
      reject(formatIssues(issues));
      continue;
    }
    const first = firstRow.get(parsed.data.name);
    if (first !== undefined) {
      reject(`duplicate name '${parsed.data.name}' (first at row ${first})`);
      continue;
    }
    firstRow.set(parsed.data.name, r.row);
    valid.push(parsed.data);
  }
  return { valid, rejected };
}
