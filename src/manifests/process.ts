/**
 * processManifests runs the decision over multi-document YAML, as at CREATE, for the render and
 * check commands. Pure: text in, text and reports out. Documents the policy leaves alone are
 * copied byte for byte; in a changed document only the added annotation lines are new (edit.ts),
 * every other byte stays as written.
 */
import fastJsonPatch, { type Operation } from 'fast-json-patch';
import { Composer, isSeq, LineCounter, parseAllDocuments, Parser, type Document } from 'yaml';
import { decide, type Decision } from '../decision/decide.js';
import { arrayAt, isObject, objectAt, stringAt } from '../core/json.js';
import { binaryProblem, duplicateKeys, lineAt as clampedLine } from '../core/yaml.js';
import { ErrorCode, WebhookError, yamlMessage } from '../errors.js';
import type { Policy } from '../policy/schema.js';
import { applyEdits, planEdits, type PathOperation, type TextEdit } from './edit.js';


/**
 * MAX_ALIAS_COUNT bounds how far aliases may expand a document (the yaml library's own guard
 * against "billion laughs"; its default too). Manifests rarely use aliases at all.
 */
export const MAX_ALIAS_COUNT = 100;

/**
 * DEFAULT_MAX_DOCUMENT_BYTES is the default bound on one YAML document: 3 MiB, the API server's
 * own limit on a request body (MaxRequestBodyBytes in k8s.io/apiserver pkg/server/config.go), so
 * no object larger can be applied anyway. A document costs 90 to 140 times its size at peak while
 * it is parsed and changed (measured at 2.9 MiB: 260 MB for one map of keys, 400 MB for a List of
 * Services that all change); the tree is kept for one document at a time.
 */
export const DEFAULT_MAX_DOCUMENT_BYTES = 3 * 1024 * 1024;

/** ManifestLimits bounds the work processManifests accepts. */
export interface ManifestLimits {
  /** maxDocumentBytes is the largest YAML document, in UTF-16 code units of its text (bytes for ASCII). */
  readonly maxDocumentBytes: number;
}

/** ManifestSource is one input: a file name (or `-` for stdin) and its text. */
export interface ManifestSource {
  readonly name: string;
  readonly text: string;
}


/** ObjectReport is the decision for one object found in the input. */
export interface ObjectReport {
  readonly source: string;
  readonly line: number;
  /** ref reads `Kind namespace/name` (or `Kind name` without a namespace). */
  readonly ref: string;
  readonly kind: string;
  readonly namespace: string | undefined;
  readonly name: string | undefined;
  readonly decision: Decision;
}

/** RenderedSource is one input as rendered: its text with the mutation applied, and whether that differs from the input. */
export interface RenderedSource {
  readonly name: string;
  readonly text: string;
  readonly changed: boolean;
}

/** ProcessResult is the rendered text (every source, joined), each source as rendered, and one report per Kubernetes object seen. */
export interface ProcessResult {
  readonly output: string;
  readonly sources: readonly RenderedSource[];
  readonly reports: readonly ObjectReport[];
}

function unescapePointer(pointer: string): string[] {
  return pointer
    .split('/')
    .slice(1)
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
}

/** applyToDocument applies add/replace/remove operations to a yaml Document in place, keeping its comments. */
export function applyToDocument(doc: Document, operations: readonly PathOperation[]): void {
  for (const op of operations) {
    const path: (string | number)[] = [];
    // JSON pointers carry sequence indexes as strings; a yaml Document wants numbers there.
    for (const segment of op.path) path.push(isSeq(doc.getIn(path, true)) && /^\d+$/.test(String(segment)) ? Number(segment) : segment);
    if (op.op === 'add' || op.op === 'replace') doc.setIn(path, doc.createNode(op.value));
    else if (op.op === 'remove') doc.deleteIn(path);
    else throw new Error(`unexpected patch operation ${op.op}`);
  }
}

function refOf(object: unknown): string {
  const metadata = objectAt(object, 'metadata');
  const name = stringAt(metadata, 'name') ?? '(no name)';
  const namespace = stringAt(metadata, 'namespace');
  return `${stringAt(object, 'kind') ?? '(no kind)'} ${namespace === undefined ? name : `${namespace}/${name}`}`;
}

/** DOCUMENT_MARKER matches `---` or `...` at the start of a line: YAML ends a document there whatever the context. */
const DOCUMENT_MARKER = /^(?:---|\.\.\.)(?=[ \t\r\n]|$)/gm;

function lineAt(text: string, offset: number): number {
  let line = 1;
  for (let i = text.indexOf('\n'); i !== -1 && i < offset; i = text.indexOf('\n', i + 1)) line++;
  return line;
}

/**
 * largestDocument finds the longest stretch between document markers, an upper bound on each
 * document's size, in one pass and before any parsing.
 */
function largestDocument(text: string): { start: number; size: number } {
  let largest = { start: 0, size: 0 };
  let start = 0;
  for (const match of text.matchAll(DOCUMENT_MARKER)) {
    if (match.index - start > largest.size) largest = { start, size: match.index - start };
    start = match.index;
  }
  if (text.length - start > largest.size) largest = { start, size: text.length - start };
  return largest;
}


/** STACK_EXHAUSTED matches what V8 and the yaml library report when nesting outruns the stack. */
const STACK_EXHAUSTED = /Maximum call stack size exceeded|Stack overflow/;

function describeFailure(message: string): string {
  if (STACK_EXHAUSTED.test(message)) return 'nested too deeply';
  if (message.includes('Excessive alias count')) return `too many aliases (more than ${MAX_ALIAS_COUNT} expansions)`;
  return yamlMessage(message);
}

/** MAX_PROBLEMS is how many problem lines an error lists. */
const MAX_PROBLEMS = 50;


/** Pending is the document whose text is not yet written, because where it ends is known only when the next one starts. */
interface Pending {
  readonly start: number;
  /** change is the document's mutation, when it has one. */
  readonly change?: {
    readonly doc: Document.Parsed;
    readonly operations: readonly PathOperation[];
    readonly edits: readonly TextEdit[] | undefined;
  };
}

function pathOperations(patch: readonly Operation[], prefix: readonly (string | number)[]): PathOperation[] {
  return patch.map((op) => ({ op: op.op, path: [...prefix, ...unescapePointer(op.path)], ...('value' in op && { value: op.value as unknown }) }));
}

/**
 * renderChange writes a changed document: the input's text with only the new lines (or entries)
 * inserted, when that reads back as exactly the mutated document; else, for shapes edit.ts does
 * not plan (aliases, tags, explicit nulls), the whole document written anew, comments kept.
 */
function renderChange(region: string, base: number, change: NonNullable<Pending['change']>): string {
  const { doc, operations, edits } = change;
  applyToDocument(doc, operations);
  if (edits === undefined) return doc.toString();
  const edited = applyEdits(region, edits, base);
  const expected: unknown = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
  const reread = parseAllDocuments(edited, { uniqueKeys: false });
  const docs = Array.isArray(reread) ? reread.filter((d) => d.contents !== null) : [];
  if (docs.length === 1 && docs[0]?.errors.length === 0) {
    const actual: unknown = docs[0].toJS({ maxAliasCount: MAX_ALIAS_COUNT });
    if (isObject(actual) && isObject(expected) && fastJsonPatch.compare(expected, actual).length === 0) return edited;
  }
  return doc.toString();
}

/**
 * processManifests decides every object in the sources (a `List` counts item by item) and renders
 * the result. It parses one document at a time, so memory holds the text and a document's tree or
 * two. It throws LBP_MANIFEST_INVALID, naming every problem as `file:line: reason` (a file that is
 * not text, invalid YAML, duplicate keys, an alias bomb, nesting too deep, a document over the
 * size bound, an object the API server would refuse), so no partial output is ever produced.
 */
export function processManifests(sources: readonly ManifestSource[], policy: Policy, limits: ManifestLimits = { maxDocumentBytes: DEFAULT_MAX_DOCUMENT_BYTES }): ProcessResult {
  for (const source of sources) {
    const largest = largestDocument(source.text);
    if (largest.size > limits.maxDocumentBytes) {
      throw new WebhookError(
        ErrorCode.MANIFEST_INVALID,
        `${source.name}:${lineAt(source.text, largest.start)}: a YAML document of ${largest.size} bytes is over the ${limits.maxDocumentBytes}-byte limit (--max-document-bytes)`,
      );
    }
  }
  const reports: ObjectReport[] = [];
  const rendered: RenderedSource[] = [];
  const problems: string[] = [];
  const failed = new Set<string>();
  let output = '';
  for (const source of sources) {
    const problemsBefore = problems.length;
    const binary = binaryProblem(source.text);
    if (binary !== undefined) {
      problems.push(`${source.name}:${lineAt(source.text, binary.offset)}: ${binary.message}`);
      failed.add(source.name);
      continue;
    }
    const counter = new LineCounter();
    const at = (offset: number): string => `${source.name}:${clampedLine(counter, source.text, offset)}`;
    const composer = new Composer({ uniqueKeys: false });
    let text = '';
    let changed = false;
    let pending: Pending | undefined;
    const flush = (end: number): void => {
      if (pending === undefined) return;
      const region = source.text.slice(pending.start, end);
      text += pending.change === undefined ? region : renderChange(region, pending.start, pending.change);
    };
    const handle = (doc: Document.Parsed): void => {
      const start = pending === undefined ? 0 : doc.range[0];
      flush(start);
      pending = { start };
      try {
        const located = [...doc.errors.map((e) => ({ offset: e.pos[0], message: describeFailure(e.message) })), ...duplicateKeys(doc, counter)]
          .sort((a, b) => a.offset - b.offset)
          .map((p) => `${at(p.offset)}: ${p.message}`);
        if (located.length > 0 || problems.length > 0) {
          problems.push(...located);
          return;
        }
        const value: unknown = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
        const line = counter.linePos(doc.contents?.range[0] ?? start).line;
        const items: { object: unknown; prefix: (string | number)[] }[] =
          isObject(value) && Array.isArray(value['items']) && stringAt(value, 'kind')?.endsWith('List')
            ? arrayAt(value, 'items').map((object, index) => ({ object, prefix: ['items', index] }))
            : [{ object: value, prefix: [] }];
        const operations: PathOperation[] = [];
        for (const { object, prefix } of items) {
          if (!isObject(object) || stringAt(object, 'kind') === undefined) continue;
          const decision = decide({ object, operation: 'CREATE', policy });
          const ref = refOf(object);
          if (decision.invalid !== undefined) {
            problems.push(`${source.name}:${line}: ${ref}: ${decision.invalid}`);
            continue;
          }
          const metadata = objectAt(object, 'metadata');
          // The report keeps what check prints; the mutated copy of the object is dropped, so memory does not grow with the input.
          reports.push({
            source: source.name,
            line,
            ref,
            kind: stringAt(object, 'kind') ?? '',
            namespace: stringAt(metadata, 'namespace'),
            name: stringAt(metadata, 'name'),
            decision: { ...decision, object: undefined },
          });
          operations.push(...pathOperations(decision.patch, prefix));
        }
        if (operations.length > 0 && problems.length === 0) {
          pending = { start, change: { doc, operations, edits: planEdits(source.text, doc, operations) } };
          changed = true;
        }
      } catch (err: unknown) {
        problems.push(`${at(doc.range[0])}: ${describeFailure((err as Error).message)}`);
      }
    };
    try {
      for (const token of new Parser(counter.addNewLine).parse(source.text)) for (const doc of composer.next(token)) handle(doc);
      for (const doc of composer.end(false, source.text.length)) handle(doc);
      if (problems.length === 0) flush(source.text.length);
    } catch (err: unknown) {
      problems.push(`${source.name}: ${describeFailure((err as Error).message)}`);
    }
    if (problems.length > 0) {
      if (problems.length > problemsBefore) failed.add(source.name);
      continue;
    }
    rendered.push({ name: source.name, text, changed });
    if (output.length > 0 && text.length > 0) {
      if (!output.endsWith('\n')) output += '\n';
      if (!/^---(\s|$)/.test(text)) output += '---\n';
    }
    output += text;
  }
  if (problems.length > 0) {
    const unique = [...new Set(problems)];
    // A hostile file can hold a problem per line; the first MAX_PROBLEMS say enough.
    const details = unique.length > MAX_PROBLEMS ? [...unique.slice(0, MAX_PROBLEMS), `... and ${unique.length - MAX_PROBLEMS} more`] : unique;
    throw new WebhookError(ErrorCode.MANIFEST_INVALID, `${[...failed].join(', ')}: invalid input (${unique.length} ${unique.length === 1 ? 'problem' : 'problems'})`, { details });
  }
  return { output, sources: rendered, reports };
}
