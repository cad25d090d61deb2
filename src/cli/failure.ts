/**
 * The one place the CLI turns an error into what the user sees: one line naming the file or flag
 * (a policy or manifest error adds one indented line per problem), exit code 2, and the stack
 * only with LOG_LEVEL=debug or trace.
 */
import { readEnvironment } from '../config.js';
import { isWebhookError, systemMessage } from '../errors.js';
import type { Io } from './io.js';

/** EXIT_ERROR is the exit code of every CLI error: usage, policy, input, certificate, API. */
export const EXIT_ERROR = 2;

function isSystemError(err: unknown): err is NodeJS.ErrnoException & { code: string } {
  return err instanceof Error && typeof (err as NodeJS.ErrnoException).code === 'string' && typeof (err as NodeJS.ErrnoException).syscall === 'string';
}

/** systemErrorMessage renders a caught value as one line: a Node system error keeps its code and description (`ENOTDIR: not a directory`), without the path the caller names first. */
export function systemErrorMessage(err: unknown): string {
  return systemMessage(err);
}

function debugEnabled(): boolean {
  try {
    const level = readEnvironment().logLevel;
    return level === 'debug' || level === 'trace';
  } catch {
    return false;
  }
}

function stacks(err: unknown): string {
  const lines: string[] = [];
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) lines.push(`${depth === 0 ? '' : 'caused by: '}${e.stack ?? e.message}`);
  return lines.join('\n');
}

/**
 * errorLines renders any caught value for the user: a WebhookError as its message and detail
 * lines, a Node system error (a file the CLI did not expect to fail) as its one-line message, and
 * anything else as an internal error with a pointer to LOG_LEVEL=debug.
 */
export function errorLines(err: unknown, command: string | undefined): string[] {
  const prefix = `lb-probe-webhook${command === undefined ? '' : ` ${command}`}: `;
  if (isWebhookError(err)) {
    const hint = err.code === 'LBP_USAGE' && command !== undefined ? ` (\`lb-probe-webhook ${command} --help\` lists its flags)` : '';
    return [`${prefix}${err.message.split('\n').join(' ')}${hint}`, ...err.details.map((d) => `  ${d}`)];
  }
  if (isSystemError(err)) return [`${prefix}${err.message.split('\n')[0] ?? err.message}`];
  return [`${prefix}internal error: ${systemErrorMessage(err)} (LOG_LEVEL=debug prints the stack)`];
}

/** reportError writes errorLines to stderr, and the stack when LOG_LEVEL is debug or trace, and returns EXIT_ERROR. */
export function reportError(err: unknown, io: Io, command: string | undefined): number {
  io.stderr.write(`${errorLines(err, command).join('\n')}\n`);
  if (debugEnabled()) io.stderr.write(`${stacks(err)}\n`);
  return EXIT_ERROR;
}
