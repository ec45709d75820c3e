/**
 * Just enough XML for WS-Management SOAP: escaping for the envelopes we build, and a small
 * non-validating parser for the envelopes WinRM returns (elements, attributes, text, CDATA;
 * comments, processing instructions and DOCTYPE skipped). Elements are matched by local name —
 * WinRM's responses use fixed, non-colliding names, so namespace resolution would add nothing.
 * No entity expansion beyond the five predefined ones and character references, so no XXE.
 */

export interface XmlElement {
  /** Qualified name as written, e.g. `rsp:Stream`. */
  name: string;
  /** Name without prefix, e.g. `Stream`. */
  local: string;
  /** Attributes by qualified name. */
  attrs: Record<string, string>;
  children: XmlElement[];
  /** Concatenated text content directly inside this element. */
  text: string;
}

export class XmlParseError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'XmlParseError';
  }
}

/** Escapes text or attribute content. */
export function xmlEscape(s: string): string {
  return s.replace(/[<>&"']/g, (c) =>
    c === '<' ? '&lt;' : c === '>' ? '&gt;' : c === '&' ? '&amp;' : c === '"' ? '&quot;' : '&apos;',
  );
}

export function xmlUnescape(s: string): string {
  return s.replace(/&(#x[0-9a-fA-F]+|#[0-9]+|lt|gt|amp|quot|apos);/g, (_m, e: string) => {
    if (e[0] === '#') {
      const cp = e[1] === 'x' ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10);
      return cp <= 0x10ffff ? String.fromCodePoint(cp) : '\uFFFD';
    }
    return { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" }[e] ?? '';
  });
}

const localName = (qname: string): string => qname.slice(qname.indexOf(':') + 1);
const ATTR = /([^\s=/>]+)\s*=\s*(?:"([^"]*)"|'([^']*)')/g;

/** Parses one XML document into its root element. */
export function parseXml(xml: string): XmlElement {
  const stack: XmlElement[] = [];
  let root: XmlElement | undefined;
  let i = 0;
  while (i < xml.length) {
    const lt = xml.indexOf('<', i);
    const textEnd = lt === -1 ? xml.length : lt;
    if (textEnd > i) {
      const top = stack[stack.length - 1];
      if (top) top.text += xmlUnescape(xml.slice(i, textEnd));
      else if (xml.slice(i, textEnd).trim()) throw new XmlParseError('text outside the root element');
    }
    if (lt === -1) break;
    if (xml.startsWith('<!--', lt)) {
      i = skipTo(xml, '-->', lt);
    } else if (xml.startsWith('<![CDATA[', lt)) {
      const end = xml.indexOf(']]>', lt);
      if (end === -1) throw new XmlParseError('unterminated CDATA');
      const top = stack[stack.length - 1];
      if (top) top.text += xml.slice(lt + 9, end);
      i = end + 3;
    } else if (xml.startsWith('<?', lt)) {
      i = skipTo(xml, '?>', lt);
    } else if (xml.startsWith('<!', lt)) {
      i = skipTo(xml, '>', lt);
    } else if (xml[lt + 1] === '/') {
      const gt = xml.indexOf('>', lt);
      if (gt === -1) throw new XmlParseError('unterminated end tag');
      const name = xml.slice(lt + 2, gt).trim();
      const open = stack.pop();
      if (!open || open.name !== name) throw new XmlParseError(`mismatched end tag </${name}>`);
      i = gt + 1;
    } else {
      const gt = findTagEnd(xml, lt);
      const selfClosing = xml[gt - 1] === '/';
      const inner = xml.slice(lt + 1, selfClosing ? gt - 1 : gt);
      const m = /^[^\s/>]+/.exec(inner);
      if (!m) throw new XmlParseError('malformed start tag');
      const el: XmlElement = { name: m[0], local: localName(m[0]), attrs: {}, children: [], text: '' };
      for (const a of inner.slice(m[0].length).matchAll(ATTR)) {
        el.attrs[a[1]!] = xmlUnescape(a[2] ?? a[3] ?? '');
      }
      const parent = stack[stack.length - 1];
      if (parent) parent.children.push(el);
      else if (root) throw new XmlParseError('more than one root element');
      else root = el;
      if (!selfClosing) stack.push(el);
      i = gt + 1;
    }
  }
  if (!root) throw new XmlParseError('no root element');
  if (stack.length) throw new XmlParseError(`unclosed element <${stack[stack.length - 1]!.name}>`);
  return root;
}

function skipTo(xml: string, end: string, from: number): number {
  const at = xml.indexOf(end, from);
  if (at === -1) throw new XmlParseError(`unterminated markup (expected ${end})`);
  return at + end.length;
}

/** Index of the `>` closing the start tag at `lt`, skipping `>` inside quoted attribute values. */
function findTagEnd(xml: string, lt: number): number {
  let quote = '';
  for (let j = lt + 1; j < xml.length; j++) {
    const c = xml[j]!;
    if (quote) {
      if (c === quote) quote = '';
    } else if (c === '"' || c === "'") quote = c;
    else if (c === '>') return j;
  }
  throw new XmlParseError('unterminated start tag');
}

/** Every descendant (depth-first, document order) with local name `local`. */
export function findAll(el: XmlElement, local: string, out: XmlElement[] = []): XmlElement[] {
  for (const c of el.children) {
    if (c.local === local) out.push(c);
    findAll(c, local, out);
  }
  return out;
}

/** The first descendant with local name `local`. */
export function find(el: XmlElement, local: string): XmlElement | undefined {
  for (const c of el.children) {
    if (c.local === local) return c;
    const d = find(c, local);
    if (d) return d;
  }
  return undefined;
}

/** Attribute by local name (`Name`, `xml:lang` → `lang`). */
export function attr(el: XmlElement, local: string): string | undefined {
  for (const [k, v] of Object.entries(el.attrs)) if (localName(k) === local) return v;
  return undefined;
}
