/** The render and check commands: the webhook's decision, offline, over manifest files, directories or stdin. */
import { parseAllDocuments } from 'yaml';
import { userMessages, WARNING_PREFIX } from '../decision/decide.js';
import { ErrorCode, WebhookError } from '../errors.js';
import { processManifests, type ObjectReport, type ProcessResult } from '../manifests/process.js';
import { loadPolicyFile, STDIN } from '../policy/load.js';
import { sizeFlag, usageError, type ParsedArgs } from './args.js';
import { writeFilesAtomically } from './files.js';
import { readInputs } from './input.js';
import type { Io } from './io.js';

/** MAX_LIMIT is the most either size flag accepts: 1 GiB, past which Node's strings and memory give out anyway. */
const MAX_LIMIT = 1024 ** 3;

/** EXIT_FOUND is the exit code of a check that found something (or, with --strict, a render or check that warned). */
const EXIT_FOUND = 1;

async function run(command: 'render' | 'check', args: ParsedArgs, io: Io): Promise<ProcessResult> {
  const maxInputBytes = sizeFlag(args.string('max-input-bytes'), 'max-input-bytes', 1, MAX_LIMIT, 0);
  const maxDocumentBytes = sizeFlag(args.string('max-document-bytes'), 'max-document-bytes', 1, MAX_LIMIT, 0);
  const policyPath = args.required('policy');
  const inputs = args.positionals;
  const readsStdin = inputs.length === 0 || inputs.includes(STDIN);
  if (policyPath === STDIN && readsStdin) throw usageError('--policy - reads the policy from stdin, so the manifests must be files or directories');
  if (command === 'render' && args.boolean('in-place')) {
    if (readsStdin) throw usageError('--in-place rewrites files; give files or directories, not stdin');
    if (args.string('output') !== 'yaml') throw usageError('--in-place writes YAML as it was; it cannot be combined with -o json');
  }
  const policy = await loadPolicyFile(policyPath, io.stdin);
  return processManifests(await readInputs(inputs, io, maxInputBytes), policy, { maxDocumentBytes });
}

/** at is where a report's object is, as `file:line`. */
function at(report: ObjectReport): string {
  return `${report.source}:${report.line}`;
}

/** writeMessages writes each decision's messages to stderr as `lb-probe-webhook COMMAND: file:line: Kind ns/name: message`. */
function writeMessages(command: string, result: ProcessResult, io: Io, messages: (report: ObjectReport) => readonly string[]): void {
  for (const report of result.reports) {
    for (const message of messages(report)) io.stderr.write(`lb-probe-webhook ${command}: ${at(report)}: ${report.ref}: ${message.replace(WARNING_PREFIX, '')}\n`);
  }
}

function warningCount(result: ProcessResult): number {
  return result.reports.reduce((n, r) => n + r.decision.warnings.length, 0);
}

/** asJson turns rendered YAML into JSON the way kubectl prints objects: one object as itself, several as a v1 List. */
function asJson(result: ProcessResult): string {
  const objects: unknown[] = [];
  for (const source of result.sources) {
    const docs = parseAllDocuments(source.text, { uniqueKeys: false });
    for (const doc of Array.isArray(docs) ? docs : []) {
      const value: unknown = doc.toJS({ maxAliasCount: 100 });
      if (value !== null && value !== undefined) objects.push(value);
    }
  }
  const out = objects.length === 1 ? objects[0] : { apiVersion: 'v1', kind: 'List', items: objects };
  return `${JSON.stringify(out, null, 2)}\n`;
}

/**
 * runRender writes the rendered manifests to stdout in one piece (or, with --in-place, each
 * changed file atomically), after every input was read and decided. Warnings go to stderr; in
 * mode: warn nothing changes and stderr says what would. Exit 1 with --strict when anything warned.
 */
export async function runRender(args: ParsedArgs, io: Io): Promise<number> {
  const result = await run('render', args, io);
  writeMessages('render', result, io, (report) => userMessages(report.decision).filter((m) => report.decision.outcome === 'warned' || report.decision.warnings.includes(m)));
  if (args.boolean('in-place')) {
    const changed = result.sources.filter((s) => s.changed);
    try {
      await writeFilesAtomically(changed.map((s) => ({ path: s.name, content: s.text, mode: 'keep' })));
    } catch (err: unknown) {
      throw new WebhookError(ErrorCode.MANIFEST_INVALID, `cannot write the rendered files, none written: ${(err as Error).message}`, { cause: err });
    }
    io.stderr.write(`lb-probe-webhook render: ${changed.length === 0 ? 'nothing to change' : `rewrote ${changed.map((s) => s.name).join(', ')}`}\n`);
  } else {
    io.stdout.write(args.string('output') === 'json' ? asJson(result) : result.output);
  }
  return args.boolean('strict') && warningCount(result) > 0 ? EXIT_FOUND : 0;
}

/** CheckReport is what `check -o json` prints: the stable shape docs/cli.md documents. */
export interface CheckReport {
  readonly apiVersion: 'lb-probe-webhook/v1';
  readonly kind: 'CheckReport';
  readonly summary: { readonly objects: number; readonly changed: number; readonly changes: number; readonly warnings: number; readonly failed: boolean };
  readonly objects: readonly {
    readonly file: string;
    readonly line: number;
    readonly kind: string;
    readonly namespace: string | null;
    readonly name: string | null;
    readonly decision: string;
    readonly probe: string | null;
    readonly profile: string | null;
    readonly changes: readonly { readonly location: string; readonly key: string; readonly value: string; readonly previous: string | null; readonly reason: string }[];
    readonly warnings: readonly string[];
    readonly notes: readonly string[];
  }[];
}

function checkReport(handled: readonly ObjectReport[], failed: boolean): CheckReport {
  const objects = handled.map((r) => {
    const d = r.decision;
    return {
      file: r.source,
      line: r.line,
      kind: r.kind,
      namespace: r.namespace ?? null,
      name: r.name ?? null,
      decision: d.outcome,
      probe: d.probe ?? null,
      profile: d.profile ?? null,
      changes: d.changes.map((c) => ({ location: c.location, key: c.key, value: c.value, previous: c.previous ?? null, reason: c.reason })),
      warnings: d.warnings.map((w) => w.replace(WARNING_PREFIX, '')),
      notes: [...d.notes],
    };
  });
  const changes = objects.reduce((n, o) => n + o.changes.length, 0);
  return {
    apiVersion: 'lb-probe-webhook/v1',
    kind: 'CheckReport',
    summary: { objects: objects.length, changed: objects.filter((o) => o.changes.length > 0).length, changes, warnings: objects.reduce((n, o) => n + o.warnings.length, 0), failed },
    objects,
  };
}

/**
 * runCheck prints one line per change the policy would make, then a summary counting the objects
 * the policy handles (every decision not skipped: LoadBalancer Services and Gateways, and with
 * aws.alb the Services of any type a profile recognizes), or with -o json one CheckReport. It
 * returns 1 when there is any change (or, with --strict, any warning), and 2 when the input held
 * no object the policy handles, unless --allow-empty.
 */
export async function runCheck(args: ParsedArgs, io: Io): Promise<number> {
  const result = await run('check', args, io);
  writeMessages('check', result, io, (report) => report.decision.warnings);
  const handled = result.reports.filter((r) => r.decision.outcome !== 'skipped');
  if (handled.length === 0 && !args.boolean('allow-empty')) {
    const seen = result.reports.length;
    throw new WebhookError(
      ErrorCode.MANIFEST_INVALID,
      `nothing checked: ${seen === 0 ? 'no Kubernetes object in the input' : `none of the ${seen} ${seen === 1 ? 'object' : 'objects'} read is one the policy handles (a LoadBalancer Service with an http or https port, or a Gateway with an HTTP or HTTPS listener)`}; --allow-empty accepts that`,
    );
  }
  const changes = handled.reduce((n, r) => n + r.decision.changes.length, 0);
  const warnings = warningCount(result);
  const failed = changes > 0 || (args.boolean('strict') && warnings > 0);
  if (args.string('output') === 'json') {
    io.stdout.write(`${JSON.stringify(checkReport(handled, failed), null, 2)}\n`);
    return failed ? EXIT_FOUND : 0;
  }
  for (const report of handled) {
    for (const change of report.decision.changes) {
      const verb = change.previous === undefined ? 'add' : `replace ${JSON.stringify(change.previous)} with`;
      io.stdout.write(`${at(report)}: ${report.ref}: ${verb} ${change.location}[${change.key}]=${JSON.stringify(change.value)}: ${change.reason}\n`);
    }
  }
  const changed = handled.filter((r) => r.decision.changes.length > 0).length;
  const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;
  const warned = warnings === 0 ? '' : `, ${plural(warnings, 'warning')}${args.boolean('strict') ? ' (--strict: failing)' : ''}`;
  io.stdout.write(`${plural(changes, 'change')} in ${changed} of ${plural(handled.length, 'object')} the policy handles${warned}\n`);
  return failed ? EXIT_FOUND : 0;
}
