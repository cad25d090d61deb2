/** The render and check commands: the webhook's decision, offline, over manifest files or stdin. */
import { readFile } from 'node:fs/promises';
import type { Io } from './main.js';
import { ErrorCode, WebhookError } from '../errors.js';
import { processManifests, type ManifestSource, type ProcessResult } from '../manifests/process.js';
import { loadPolicyFile } from '../policy/load.js';
import { parseFlags, requireString } from './args.js';

async function readStream(stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : (chunk));
  return Buffer.concat(chunks).toString('utf8');
}

async function readSources(files: readonly string[], io: Io): Promise<ManifestSource[]> {
  if (files.length === 0) return [{ name: '<stdin>', text: await readStream(io.stdin) }];
  return Promise.all(
    files.map(async (name) => {
      if (name === '-') return { name: '<stdin>', text: await readStream(io.stdin) };
      try {
        return { name, text: await readFile(name, 'utf8') };
      } catch (err: unknown) {
        throw new WebhookError(ErrorCode.MANIFEST_INVALID, `cannot read ${name}: ${(err as Error).message}`, { cause: err });
      }
    }),
  );
}

async function run(argv: readonly string[], io: Io): Promise<ProcessResult> {
  const { values, positionals } = parseFlags(argv, { policy: { type: 'string' } }, true);
  const policy = await loadPolicyFile(requireString(values.policy, 'policy'));
  return processManifests(await readSources(positionals, io), policy);
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

/** runCheck prints one line per change the policy would make and returns 1 when there is any. */
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
  io.stdout.write(`${changes} ${changes === 1 ? 'change' : 'changes'} in ${changed} of ${objects} load-balanced ${objects === 1 ? 'object' : 'objects'}\n`);
  return changes > 0 ? 1 : 0;
}
