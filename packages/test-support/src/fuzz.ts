/**
 * Input fuzzing from a route's JSON schema (OpenAPI or z.toJSONSchema): every place a string
 * can go in a body — properties, array items, record values, union branches, the body itself —
 * and a body that puts a hostile string exactly there. Used to check that NUL and lone
 * surrogates are refused (400) on every route of the server and the controller.
 */

/** Strings no route may accept: a NUL, a lone high and a lone low surrogate. */
export const HOSTILE_STRINGS: readonly { name: string; value: string }[] = [
  { name: 'NUL', value: 'a\u0000b' },
  { name: 'lone high surrogate', value: 'a\ud800b' },
  { name: 'lone low surrogate', value: '\udc00' },
];

/** The same for URLs (path and query values): NUL and the 3-byte encoding of U+D800 (not UTF-8). */
export const HOSTILE_URL_VALUES: readonly { name: string; value: string }[] = [
  { name: 'NUL', value: 'a%00b' },
  { name: 'encoded lone surrogate', value: 'a%ED%A0%80b' },
];

export type JsonPath = (string | number)[];

type JsonSchema = {
  type?: string | string[];
  enum?: unknown[];
  const?: unknown;
  properties?: Record<string, JsonSchema>;
  additionalProperties?: JsonSchema | boolean;
  items?: JsonSchema | JsonSchema[];
  anyOf?: JsonSchema[];
  oneOf?: JsonSchema[];
  allOf?: JsonSchema[];
  $ref?: string;
};

const hasType = (s: JsonSchema, t: string) => (Array.isArray(s.type) ? s.type.includes(t) : s.type === t);

/**
 * Every path at which `schema` admits a string (including enums; records get a key `fuzz-key`),
 * depth-first, without duplicates. `[]` means the body itself may be a string. `$ref`s are JSON
 * pointers into `root` (the schema itself, or a whole OpenAPI document).
 */
export function stringPaths(schema: unknown, root: unknown = schema): JsonPath[] {
  const out = new Map<string, JsonPath>();
  // `#/$defs/X`, `#/components/schemas/X`: a JSON pointer into `root`.
  const resolve = (ref: string): JsonSchema | undefined => {
    let v: unknown = root;
    for (const part of ref.replace(/^#\//, '').split('/'))
      v = (v as Record<string, unknown> | undefined)?.[part];
    return v as JsonSchema | undefined;
  };
  const walk = (s: JsonSchema | boolean | undefined, path: JsonPath, depth: number) => {
    if (!s || s === true || depth > 12) return;
    if (s.$ref) {
      walk(resolve(s.$ref), path, depth + 1);
      return;
    }
    for (const branch of [...(s.anyOf ?? []), ...(s.oneOf ?? []), ...(s.allOf ?? [])])
      walk(branch, path, depth + 1);
    const isString =
      hasType(s, 'string') ||
      (Array.isArray(s.enum) && s.enum.some((v) => typeof v === 'string')) ||
      typeof s.const === 'string';
    if (isString) out.set(JSON.stringify(path), path);
    if (hasType(s, 'object') || s.properties || s.additionalProperties) {
      for (const [k, p] of Object.entries(s.properties ?? {})) walk(p, [...path, k], depth + 1);
      if (s.additionalProperties && s.additionalProperties !== true) {
        walk(s.additionalProperties, [...path, 'fuzz-key'], depth + 1);
      }
    }
    if (hasType(s, 'array') || s.items) {
      const items = Array.isArray(s.items) ? s.items : [s.items];
      for (const it of items) walk(it, [...path, 0], depth + 1);
    }
  };
  walk(schema as JsonSchema, [], 0);
  return [...out.values()];
}

/** A value with `leaf` at `path` (objects and arrays created on the way). */
export function valueAt(path: JsonPath, leaf: unknown): unknown {
  let v: unknown = leaf;
  for (let i = path.length - 1; i >= 0; i--) {
    const k = path[i] as string | number;
    if (typeof k === 'number') {
      const arr: unknown[] = [];
      arr[k] = v;
      v = arr;
    } else v = { [k]: v };
  }
  return v;
}

/** `/devices/:id/x` with each `:name` replaced by `values[name]` or `fallback(name)`. */
export function fillPath(
  pattern: string,
  values: Record<string, string>,
  fallback: (name: string) => string,
): string {
  return pattern.replace(
    /:([A-Za-z_][A-Za-z0-9_]*)|\{([A-Za-z_][A-Za-z0-9_]*)\}/g,
    (_m, a?: string, b?: string) => {
      const name = (a ?? b) as string;
      return values[name] ?? fallback(name);
    },
  );
}

/** Parameter names of a path pattern (`:name` or `{name}`). */
export function pathParamNames(pattern: string): string[] {
  return [...pattern.matchAll(/:([A-Za-z_][A-Za-z0-9_]*)|\{([A-Za-z_][A-Za-z0-9_]*)\}/g)].map(
    (m) => (m[1] ?? m[2]) as string,
  );
}
