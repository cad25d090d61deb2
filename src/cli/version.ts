/**
 * The version command: the package's version, the Node.js running it, and the commit it was built
 * from. `npm run build` writes the commit to dist/commit (`git describe --always --dirty`); a build
 * without git (the container image's) has none, and the commit is then "unknown".
 */
import { readFileSync } from 'node:fs';
import type { ParsedArgs } from './args.js';
import type { Io } from './io.js';

/** BuildInfo is what `version` reports. */
export interface BuildInfo {
  readonly version: string;
  readonly commit: string;
  readonly node: string;
}

function readText(url: URL): string | undefined {
  try {
    return readFileSync(url, 'utf8');
  } catch {
    return undefined;
  }
}

/** buildInfo reads the version from package.json and the commit from dist/commit, beside the built code. */
export function buildInfo(): BuildInfo {
  // From dist/cli/version.js (or src/cli/version.ts under tsx): ../../package.json and ../commit.
  const pkg = readText(new URL('../../package.json', import.meta.url));
  const version = pkg === undefined ? 'unknown' : ((JSON.parse(pkg) as { version?: unknown }).version as string | undefined) ?? 'unknown';
  const commit = readText(new URL('../commit', import.meta.url))?.trim() || 'unknown';
  return { version, commit, node: process.version };
}

/** versionLine is the one line `version` and `--version` print. */
export function versionLine(info: BuildInfo = buildInfo()): string {
  return `lb-probe-webhook ${info.version} (commit ${info.commit}, node ${info.node})`;
}

/** runVersion prints the version line, or the same as JSON with -o json. */
export async function runVersion(args: ParsedArgs, io: Io): Promise<number> {
  const info = buildInfo();
  io.stdout.write(args.string('output') === 'json' ? `${JSON.stringify(info, null, 2)}\n` : `${versionLine(info)}\n`);
  return Promise.resolve(0);
}
