/**
 * Minimal edits for render: a patch becomes text inserted into the document as it was written,
 * so every byte the patch does not concern stays as it was (spacing, comments, quoting, flow or
 * block style, line endings). In a block mapping the new keys are new lines at the mapping's
 * indentation; in a flow mapping (`{...}`, JSON) they are new entries before its closing brace; a
 * replaced value (overwrite: true) is the value's text replaced. Anything else (an alias, a tag,
 * an explicit null) is not planned here, and the caller renders the document whole instead.
 */
import type { Operation } from 'fast-json-patch';
import { isMap, isScalar, isSeq, stringify, type Document, type Node, type Pair, type YAMLMap } from 'yaml';

/** TextEdit replaces `remove` characters at `offset` with `insert`. */
export interface TextEdit {
  readonly offset: number;
  readonly remove: number;
  readonly insert: string;
}

/** PathOperation is a patch operation with its path already split (and prefixed for a List item). */
export interface PathOperation {
  readonly op: Operation['op'];
  readonly path: readonly (string | number)[];
  readonly value?: unknown;
}

/** BLOCK_STEP is the indentation of a nested block mapping this module writes, when none can be read from the document. */
const BLOCK_STEP = 2;

function lineStart(text: string, offset: number): number {
  return text.lastIndexOf('\n', offset - 1) + 1;
}

function columnOf(text: string, offset: number): number {
  return offset - lineStart(text, offset);
}

/** blockScalar writes a key or a string value for a block mapping: plain where YAML reads it back as the same string, quoted otherwise, always on one line. */
function blockScalar(value: unknown): string {
  const text = stringify(value, { lineWidth: 0, minContentWidth: 0 }).replace(/\n$/, '');
  return text.includes('\n') ? JSON.stringify(value) : text;
}

/** blockLines writes `key: value` (a nested map as indented lines) at indent, each line ending with eol. */
function blockLines(key: string, value: unknown, indent: number, eol: string): string {
  const pad = ' '.repeat(indent);
  if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
    const entries = Object.entries(value);
    if (entries.length === 0) return `${pad}${blockScalar(key)}: {}${eol}`;
    return `${pad}${blockScalar(key)}:${eol}${entries.map(([k, v]) => blockLines(k, v, indent + BLOCK_STEP, eol)).join('')}`;
  }
  return `${pad}${blockScalar(key)}: ${blockScalar(value)}${eol}`;
}

function pairOf(map: YAMLMap, key: string): Pair | undefined {
  return map.items.find((p): p is Pair => isScalar(p.key) && String(p.key.value) === key);
}

/** nodeAt walks the document's nodes along path, through mappings and sequences only. */
function nodeAt(doc: Document, path: readonly (string | number)[]): Node | undefined {
  let node: unknown = doc.contents;
  for (const segment of path) {
    if (isMap(node)) node = pairOf(node, String(segment))?.value;
    else if (isSeq(node) && /^\d+$/.test(String(segment))) node = node.items[Number(segment)];
    else return undefined;
  }
  return (node ?? undefined) as Node | undefined;
}

/** endOfLine is the offset just past the line break that ends the line holding offset (or the text's end). */
function endOfLine(text: string, offset: number): number {
  const newline = text.indexOf('\n', offset);
  return newline === -1 ? text.length : newline + 1;
}

/** blockInsertion adds a key to a block mapping: new lines after its last entry, at its indentation. */
function blockInsertion(text: string, map: YAMLMap, key: string, value: unknown, eol: string): TextEdit | undefined {
  const first = map.items[0]?.key as Node | undefined;
  const last = map.items.at(-1);
  if (first?.range === undefined || first.range === null || last === undefined) return undefined;
  const lastEnd = (last.value as Node | null)?.range?.[1] ?? (last.key as Node | null)?.range?.[1];
  if (lastEnd === undefined) return undefined;
  const offset = endOfLine(text, Math.max(lastEnd - 1, 0));
  const lines = blockLines(key, value, columnOf(text, first.range[0]), eol);
  // The text ends without a line break: the new lines start with one and end without.
  if (offset === text.length && !text.endsWith('\n')) return { offset, remove: 0, insert: eol + lines.slice(0, -eol.length) };
  return { offset, remove: 0, insert: lines };
}

/** emptyValueInsertion gives a key whose value is empty (`annotations:` and nothing after) its first entries, on the lines after it. */
function emptyValueInsertion(text: string, keyNode: Node, value: unknown, eol: string): TextEdit | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value) || keyNode.range === undefined || keyNode.range === null) return undefined;
  const entries = Object.entries(value);
  if (entries.length === 0) return undefined;
  const offset = endOfLine(text, keyNode.range[0]);
  const lines = entries.map(([k, v]) => blockLines(k, v, columnOf(text, keyNode.range![0]) + BLOCK_STEP, eol)).join('');
  if (offset === text.length && !text.endsWith('\n')) return { offset, remove: 0, insert: eol + lines.slice(0, -eol.length) };
  return { offset, remove: 0, insert: lines };
}

/** flowValue writes a value as JSON with a space after each colon and comma, as people write flow mappings. */
function flowValue(value: unknown): string {
  if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
    return `{${Object.entries(value).map(([k, v]) => `${JSON.stringify(k)}: ${flowValue(v)}`).join(', ')}}`;
  }
  return JSON.stringify(value);
}

/** flowInsertion adds a key to a flow mapping as a JSON entry before its closing brace, so a JSON document stays JSON. */
function flowInsertion(text: string, map: YAMLMap, key: string, value: unknown, grown: Set<YAMLMap>): TextEdit | undefined {
  const end = map.range?.[1];
  if (end === undefined || text[end - 1] !== '}') return undefined;
  const close = end - 1;
  let before = close - 1;
  while (before >= 0 && /\s/.test(text[before] as string)) before--;
  const separator = grown.has(map) ? ', ' : map.items.length === 0 || text[before] === ',' ? '' : ', ';
  grown.add(map);
  return { offset: close, remove: 0, insert: `${separator}${JSON.stringify(key)}: ${flowValue(value)}` };
}

/**
 * planEdits turns patch operations on the document into text edits of source, or returns
 * undefined when one cannot be written as an edit (the caller then renders the document whole).
 * Only `add` of a key to a mapping and `replace` of a string value are planned: what decide emits.
 */
export function planEdits(source: string, doc: Document, operations: readonly PathOperation[]): TextEdit[] | undefined {
  const eol = source.includes('\r\n') ? '\r\n' : '\n';
  const edits: TextEdit[] = [];
  const grown = new Set<YAMLMap>();
  for (const operation of operations) {
    const key = operation.path.at(-1);
    if (key === undefined) return undefined;
    const parent = nodeAt(doc, operation.path.slice(0, -1));
    if (!isMap(parent)) return undefined;
    const existing = pairOf(parent, String(key));
    if (operation.op === 'add' && existing === undefined) {
      const edit = parent.flow === true ? flowInsertion(source, parent, String(key), operation.value, grown) : blockInsertion(source, parent, String(key), operation.value, eol);
      if (edit === undefined) return undefined;
      edits.push(edit);
    } else if ((operation.op === 'replace' || operation.op === 'add') && existing !== undefined) {
      const node = existing.value as Node | null;
      if (isScalar(node) && node.value === null && node.source === '' && parent.flow !== true) {
        // `annotations:` with nothing after it: the new entries go on the lines below the key.
        const edit = emptyValueInsertion(source, existing.key as Node, operation.value, eol);
        if (edit === undefined) return undefined;
        edits.push(edit);
      } else if (isScalar(node) && typeof operation.value === 'string' && node.range !== undefined && node.range !== null) {
        const inFlow = parent.flow === true;
        edits.push({ offset: node.range[0], remove: node.range[1] - node.range[0], insert: inFlow ? JSON.stringify(operation.value) : blockScalar(operation.value) });
      } else return undefined;
    } else return undefined;
  }
  return edits;
}

/** applyEdits applies edits to text; edits at one offset keep their order. */
export function applyEdits(text: string, edits: readonly TextEdit[], base = 0): string {
  const ordered = edits.map((edit, index) => ({ edit, index })).sort((a, b) => a.edit.offset - b.edit.offset || a.index - b.index);
  let out = '';
  let at = base;
  for (const { edit } of ordered) {
    out += text.slice(at - base, edit.offset - base) + edit.insert;
    at = edit.offset + edit.remove;
  }
  return out + text.slice(at - base);
}
