/** The render and check commands: the webhook's decision, offline, over manifest files or stdin. */
import type { Io } from './io.js';
import { DEFAULT_MAX_DOCUMENT_BYTES, processManifests, type ProcessResult } from '../manifests/process.js';
import { loadPolicyFile } from '../policy/load.js';
import { parseFlags, requireString, sizeFlag } from './args.js';
import { DEFAULT_MAX_INPUT_BYTES, readInputs } from './input.js';

/** MAX_LIMIT is the most either size flag accepts: 1 GiB, past which Node's strings and memory give out anyway. */
const MAX_LIMIT = 1024 ** 3;

async function run(argv: readonly string[], io: Io): Promise<ProcessResult> {
  const { values, positionals } = parseFlags(
    argv,
    { policy: { type: 'string' }, 'max-input-bytes': { type: 'string' }, 'max-document-bytes': { type: 'string' } },
    true,
  );
  const maxInputBytes = sizeFlag(values['max-input-bytes'], 'max-input-bytes', 1, MAX_LIMIT, DEFAULT_MAX_INPUT_BYTES);
  const maxDocumentBytes = sizeFlag(values['max-document-bytes'], 'max-document-bytes', 1, MAX_LIMIT, DEFAULT_MAX_DOCUMENT_BYTES);
  const policy = await loadPolicyFile(requireString(values.policy, 'policy'));
  return processManifests(await readInputs(positionals, io, maxInputBytes), policy, { maxDocumentBytes });
}

function writeWarnings(result: ProcessResult, io: Io): void {
  for (const report of result.reports) {
    for (const warning of report.decision.warnings) {
      io.stderr.write(`${report.source}:${report.line}: ${report.ref}: ${warning}\n`);
    }
  }
}

/** runRender writes the rendered manifests to stdout in one piece, after every input was read and decided. */
export async function runRender(argv: readonly string[], io: Io): Promise<number> {
  const result = await run(argv, io);
  writeWarnings(result, io);
  io.stdout.write(result.output);
  return 0;
}

/**
 * runCheck prints one line per change the policy would make, then a summary counting the objects
 * the policy handles (every decision not skipped: LoadBalancer Services and Gateways, and with
 * aws.alb the Services of any type a profile recognizes), and returns 1 when there is any change.
 */
export async function runCheck(argv: readonly string[], io: Io): Promise<number> {
  const result = await run(argv, io);
  writeWarnings(result, io);
  let changes = 0;
  let objects = 0;
  for (const report of result.reports) {
    if (report.decision.outcome !== 'skipped') objects++;
    for (const change of report.decision.changes) {
      changes++;
      const verb = change.previous === undefined ? 'add' : `replace ${JSON.stringify(change.previous)} with`;
      io.stdout.write(
        `${report.source}:${report.line}: ${report.ref}: ${verb} ${change.location}[${change.key}]=${JSON.stringify(change.value)}: ${change.reason}\n`,
      );
    }
  }
  const changed = new Set(result.reports.filter((r) => r.decision.changes.length > 0)).size;
  io.stdout.write(`${changes} ${changes === 1 ? 'change' : 'changes'} in ${changed} of ${objects} ${objects === 1 ? 'object' : 'objects'} the policy handles\n`);
  return changes > 0 ? 1 : 0;
}
