/**
 * processManifests runs the decision over multi-document YAML, as at CREATE, for the render and
 * check commands. Pure: text in, text and reports out. Documents the policy leaves alone are
 * copied byte for byte; a changed document keeps its comments, with the new keys added in place.
 */
import type { Operation } from 'fast-json-patch';
import { Composer, isScalar, isSeq, LineCounter, Parser, visit, type Document } from 'yaml';
import { decide, type Decision } from '../decision/decide.js';
import { arrayAt, isObject, objectAt, stringAt } from '../core/json.js';
import { ErrorCode, WebhookError, yamlMessage } from '../errors.js';
import type { Policy } from '../policy/schema.js';

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
  readonly decision: Decision;
}

/** ProcessResult is the rendered text and one report per Kubernetes object seen. */
export interface ProcessResult {
  readonly output: string;
  readonly reports: readonly ObjectReport[];
}

function unescapePointer(pointer: string): string[] {
  return pointer
    .split('/')
    .slice(1)
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
}

/** applyToDocument applies add/replace/remove operations to a yaml Document in place, keeping its comments. */
export function applyToDocument(doc: Document, patch: readonly Operation[], prefix: readonly (string | number)[] = []): void {
  for (const op of patch) {
    const segments = unescapePointer(op.path);
    const path: (string | number)[] = [...prefix];
    for (const segment of segments) {
      // JSON pointers carry sequence indexes as strings; a yaml Document wants numbers there.
      path.push(isSeq(doc.getIn(path, true)) && /^\d+$/.test(segment) ? Number(segment) : segment);
    }
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

/**
 * processManifests decides every object in the sources (a `List` counts item by item) and renders
 * the result. It throws LBP_MANIFEST_INVALID, naming every YAML error with its line, before it
 * decides anything, so no partial output is ever produced.
 */
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

function duplicateKeys(doc: Document): { offset: number; text: string }[] {
  // The yaml library's own uniqueKeys check compares every key with every other (quadratic in a map's size); a Set per map is linear.
  const problems: { offset: number; text: string }[] = [];
  visit(doc, {
    Map(_, map) {
      const seen = new Set<string>();
      for (const pair of map.items) {
        if (!isScalar(pair.key)) continue;
        const id = `${typeof pair.key.value}:${String(pair.key.value)}`;
        if (seen.has(id)) problems.push({ offset: pair.key.range?.[0] ?? 0, text: `Map keys must be unique (${JSON.stringify(String(pair.key.value))})` });
        seen.add(id);
      }
    },
  });
  return problems;
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

interface Pending {
  readonly start: number;
  readonly rendered: string | undefined;
}

/**
 * processManifests decides every object in the sources (a `List` counts item by item) and renders
 * the result. It parses one document at a time, so memory holds the text and one document's tree.
 * It throws LBP_MANIFEST_INVALID, naming every problem as `file:line: reason` (invalid YAML,
 * duplicate keys, an alias bomb, nesting too deep, a document over the size bound), so no partial
 * output is ever produced.
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
  const problems: string[] = [];
  const failed = new Set<string>();
  let output = '';
  for (const source of sources) {
    const problemsBefore = problems.length;
    const counter = new LineCounter();
    const at = (offset: number): string => `${source.name}:${counter.linePos(offset).line}`;
    const composer = new Composer({ uniqueKeys: false });
    let rendered = '';
    let pending: Pending | undefined;
    const flush = (end: number): void => {
      if (pending !== undefined) rendered += pending.rendered ?? source.text.slice(pending.start, end);
    };
    const handle = (doc: Document.Parsed): void => {
      const start = pending === undefined ? 0 : doc.range[0];
      flush(start);
      pending = { start, rendered: undefined };
      try {
        const located = [...doc.errors.map((e) => ({ offset: e.pos[0], text: describeFailure(e.message) })), ...duplicateKeys(doc)]
          .sort((a, b) => a.offset - b.offset)
          .map((p) => `${at(p.offset)}: ${p.text}`);
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
        let changed = false;
        for (const { object, prefix } of items) {
          if (!isObject(object) || stringAt(object, 'kind') === undefined) continue;
          const decision = decide({ object, operation: 'CREATE', policy });
          // The report keeps what check prints; the mutated copy of the object is dropped, so memory does not grow with the input.
          reports.push({ source: source.name, line, ref: refOf(object), decision: { ...decision, object: undefined } });
          if (decision.patch.length > 0) {
            applyToDocument(doc, decision.patch, prefix);
            changed = true;
          }
        }
        if (changed) pending = { start, rendered: doc.toString() };
      } catch (err: unknown) {
        problems.push(`${at(doc.range[0])}: ${describeFailure((err as Error).message)}`);
      }
    };
    try {
      for (const token of new Parser(counter.addNewLine).parse(source.text)) for (const doc of composer.next(token)) handle(doc);
      for (const doc of composer.end(false, source.text.length)) handle(doc);
    } catch (err: unknown) {
      problems.push(`${source.name}: ${describeFailure((err as Error).message)}`);
    }
    flush(source.text.length);
    if (problems.length > 0) {
      if (problems.length > problemsBefore) failed.add(source.name);
      continue;
    }
    if (output.length > 0 && rendered.length > 0) {
      if (!output.endsWith('\n')) output += '\n';
      if (!/^---(\s|$)/.test(rendered)) output += '---\n';
    }
    output += rendered;
  }
  if (problems.length > 0) {
    const unique = [...new Set(problems)];
    // A hostile file can hold a problem per line; the first MAX_PROBLEMS say enough.
    const details = unique.length > MAX_PROBLEMS ? [...unique.slice(0, MAX_PROBLEMS), `... and ${unique.length - MAX_PROBLEMS} more`] : unique;
    throw new WebhookError(ErrorCode.MANIFEST_INVALID, `${[...failed].join(', ')}: invalid input (${unique.length} ${unique.length === 1 ? 'problem' : 'problems'})`, { details });
  }
  return { output, reports };
}
