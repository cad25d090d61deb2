/**
 * processManifests runs the decision over multi-document YAML, as at CREATE, for the render and
 * check commands. Pure: text in, text and reports out. Documents the policy leaves alone are
 * copied byte for byte; a changed document keeps its comments, with the new keys added in place.
 */
import type { Operation } from 'fast-json-patch';
import { isSeq, LineCounter, parseAllDocuments, type Document } from 'yaml';
import { decide, type Decision } from '../core/decide.js';
import { arrayAt, isObject, objectAt, stringAt } from '../core/json.js';
import { ErrorCode, WebhookError, yamlMessage } from '../errors.js';
import type { Policy } from '../policy/schema.js';

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

function parseSource(source: ManifestSource): { docs: Document[]; counter: LineCounter } {
  const counter = new LineCounter();
  const docs = parseAllDocuments(source.text, { lineCounter: counter, uniqueKeys: true });
  if (!Array.isArray(docs)) return { docs: [], counter }; // an empty stream
  const errors = docs.flatMap((d) => d.errors.map((e) => `${source.name}:${counter.linePos(e.pos[0]).line}: ${yamlMessage(e.message)}`));
  if (errors.length > 0) {
    throw new WebhookError(ErrorCode.MANIFEST_INVALID, `${source.name}: not valid YAML`, { details: errors });
  }
  return { docs, counter };
}

/**
 * processManifests decides every object in the sources (a `List` counts item by item) and renders
 * the result. It throws LBP_MANIFEST_INVALID, naming every YAML error with its line, before it
 * decides anything, so no partial output is ever produced.
 */
export function processManifests(sources: readonly ManifestSource[], policy: Policy): ProcessResult {
  const parsed = sources.map((source) => ({ source, ...parseSource(source) }));
  const reports: ObjectReport[] = [];
  let output = '';
  for (const { source, docs, counter } of parsed) {
    let rendered = '';
    docs.forEach((doc, i) => {
      const start = i === 0 ? 0 : (doc.range?.[0] ?? 0);
      const end = docs[i + 1]?.range?.[0] ?? source.text.length;
      const value: unknown = doc.toJS({ maxAliasCount: 100 });
      const line = counter.linePos(doc.contents?.range?.[0] ?? start).line;
      const items: { object: unknown; prefix: (string | number)[] }[] =
        isObject(value) && Array.isArray(value['items']) && stringAt(value, 'kind')?.endsWith('List')
          ? arrayAt(value, 'items').map((object, index) => ({ object, prefix: ['items', index] }))
          : [{ object: value, prefix: [] }];
      let changed = false;
      for (const { object, prefix } of items) {
        if (!isObject(object) || stringAt(object, 'kind') === undefined) continue;
        const decision = decide({ object, operation: 'CREATE', policy });
        reports.push({ source: source.name, line, ref: refOf(object), decision });
        if (decision.patch.length > 0) {
          applyToDocument(doc, decision.patch, prefix);
          changed = true;
        }
      }
      rendered += changed ? doc.toString() : source.text.slice(start, end);
    });
    if (output.length > 0 && rendered.length > 0) {
      if (!output.endsWith('\n')) output += '\n';
      if (!/^---(\s|$)/.test(rendered)) output += '---\n';
    }
    output += rendered;
  }
  return { output, reports };
}
